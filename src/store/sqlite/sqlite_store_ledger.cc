// The usage ledger of SqliteStore.
#include <string>

#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::collectRows;
using sqlite::Statement;

constexpr std::string_view kLedgerColumns =
    "time, request_id, project_id, agent_id, token_id, provider, mode, method, path, "
    "upstream_status, outcome, bytes_in, bytes_out, latency_ms, credential_id, model, "
    "input_tokens, cached_input_tokens, output_tokens, requests, emails, messages, read_units, "
    "write_units, usage_reported, prices, cost_micros, billable";

LedgerRow readLedgerRow(const Statement& row) {
  return LedgerRow{.time = row.int64(0),
                   .request_id = row.text(1),
                   .project_id = row.text(2),
                   .agent_id = row.text(3),
                   .token_id = row.text(4),
                   .provider = row.text(5),
                   .mode = row.text(6),
                   .credential_id = row.text(14),
                   .method = row.text(7),
                   .path = row.text(8),
                   .upstream_status = static_cast<int>(row.int64(9)),
                   .outcome = row.text(10),
                   .bytes_in = row.int64(11),
                   .bytes_out = row.int64(12),
                   .latency_ms = row.int64(13),
                   .model = row.text(15),
                   .units = {.input_tokens = row.int64(16),
                             .cached_input_tokens = row.int64(17),
                             .output_tokens = row.int64(18),
                             .requests = row.int64(19),
                             .emails = row.int64(20),
                             .messages = row.int64(21),
                             .read_units = row.int64(22),
                             .write_units = row.int64(23)},
                   .usage_reported = row.int64(24) != 0,
                   .prices = row.text(25),
                   .cost_micros = row.int64(26),
                   .billable = row.int64(27) != 0};
}

// Builds the query text from the filters in use, rather than "(? = '' OR column = ?)", so
// SQLite can use the (project_id, time) index. At most eight texts, each cached once.
std::string ledgerQuerySql(const LedgerQuery& query) {
  std::string sql = "SELECT " + std::string(kLedgerColumns) + " FROM ledger WHERE time >= ?";
  if (!query.project_id.empty()) {
    sql += " AND project_id = ?";
  }
  if (!query.agent_id.empty()) {
    sql += " AND agent_id = ?";
  }
  if (query.until != 0) {
    sql += " AND time < ?";
  }
  return sql + " ORDER BY time DESC, id DESC LIMIT ?";
}

}  // namespace

Result<void> SqliteStore::appendLedger(const std::vector<LedgerRow>& rows) {
  if (rows.empty()) {
    return {};
  }
  // The ledger is not part of the proxy's snapshot, so the config generation stays put.
  return write([&]() -> Result<void> {
    for (size_t i = 0; i < rows.size(); ++i) {
      const LedgerRow& row = rows[i];
      const UnitCounts& units = row.units;
      auto inserted = connection_->run(
          "INSERT INTO ledger (" + std::string(kLedgerColumns) +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
              "?, ?, ?, ?)",
          row.time, row.request_id, row.project_id, row.agent_id, row.token_id, row.provider,
          row.mode, row.method, row.path, row.upstream_status, row.outcome, row.bytes_in,
          row.bytes_out, row.latency_ms, row.credential_id, row.model, units.input_tokens,
          units.cached_input_tokens, units.output_tokens, units.requests, units.emails,
          units.messages, units.read_units, units.write_units, int64_t{row.usage_reported},
          row.prices, row.cost_micros, int64_t{row.billable});
      if (!inserted) {
        Error error = inserted.error();
        error.message = "ledger row " + std::to_string(i + 1) + " of " +
                        std::to_string(rows.size()) + " (request '" + row.request_id +
                        "'): " + error.message;
        return std::unexpected(std::move(error));
      }
    }
    return {};
  });
}

Result<std::vector<LedgerRow>> SqliteStore::queryLedger(const LedgerQuery& query) {
  if (query.limit < 1) {
    return fail(ErrorCode::kInvalidRequest,
                "ledger query limit must be at least 1, got " + std::to_string(query.limit));
  }

  return read([&]() -> Result<std::vector<LedgerRow>> {
    auto statement = connection_->query(ledgerQuerySql(query), query.since);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    if (!query.project_id.empty()) {
      statement->bind(query.project_id);
    }
    if (!query.agent_id.empty()) {
      statement->bind(query.agent_id);
    }
    if (query.until != 0) {
      statement->bind(query.until);
    }
    statement->bind(query.limit);
    return collectRows(std::move(statement), readLedgerRow);
  });
}

}  // namespace keystore::store
