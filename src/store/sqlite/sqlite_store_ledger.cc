// The usage ledger of SqliteStore.
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::BorrowedText;
using sqlite::collectRows;
using sqlite::Connection;
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

// Rows per multi-row INSERT. One 32-row statement starts and resets SQLite's program once
// instead of 32 times. Its 896 parameters stay far below SQLITE_MAX_VARIABLE_NUMBER, whose
// default has been 32766 since SQLite 3.32.
constexpr size_t kRowsPerInsert = 32;
constexpr int kLedgerColumnCount = 28;

// "INSERT INTO ledger (...) VALUES (?, ...), (?, ...)" with `row_count` rows of parameters.
std::string ledgerInsertSql(size_t row_count) {
  std::string row = "(?";
  for (int column = 1; column < kLedgerColumnCount; ++column) {
    row += ", ?";
  }
  row += ")";

  std::string sql = "INSERT INTO ledger (" + std::string(kLedgerColumns) + ") VALUES " + row;
  for (size_t i = 1; i < row_count; ++i) {
    sql += ", " + row;
  }
  return sql;
}

const std::string& singleRowInsertSql() {
  static const std::string sql = ledgerInsertSql(1);
  return sql;
}

const std::string& multiRowInsertSql() {
  static const std::string sql = ledgerInsertSql(kRowsPerInsert);
  return sql;
}

// Binds the columns of `row` in kLedgerColumns order. Text is borrowed, so `row` must outlive
// the statement's next step().
void bindLedgerRow(Statement& statement, const LedgerRowView& row) {
  const UnitCounts& units = row.units;
  statement.bind(row.time)
      .bind(BorrowedText{row.request_id})
      .bind(BorrowedText{row.project_id})
      .bind(BorrowedText{row.agent_id})
      .bind(BorrowedText{row.token_id})
      .bind(BorrowedText{row.provider})
      .bind(BorrowedText{row.mode})
      .bind(BorrowedText{row.method})
      .bind(BorrowedText{row.path})
      .bind(row.upstream_status)
      .bind(BorrowedText{row.outcome})
      .bind(row.bytes_in)
      .bind(row.bytes_out)
      .bind(row.latency_ms)
      .bind(BorrowedText{row.credential_id})
      .bind(BorrowedText{row.model})
      .bind(units.input_tokens)
      .bind(units.cached_input_tokens)
      .bind(units.output_tokens)
      .bind(units.requests)
      .bind(units.emails)
      .bind(units.messages)
      .bind(units.read_units)
      .bind(units.write_units)
      .bind(int64_t{row.usage_reported})
      .bind(BorrowedText{row.prices})
      .bind(row.cost_micros)
      .bind(int64_t{row.billable});
}

Error rowError(Error error, std::span<const LedgerRowView> rows, size_t index) {
  error.message = "ledger row " + std::to_string(index + 1) + " of " + std::to_string(rows.size()) +
                  " (request '" + std::string(rows[index].request_id) + "'): " + error.message;
  return error;
}

// Inserts rows[first, last) one statement per row, so a failure names its row.
Result<void> insertOneByOne(Connection& connection, std::span<const LedgerRowView> rows,
                            size_t first, size_t last) {
  if (first == last) {
    return {};
  }
  auto statement = connection.prepare(singleRowInsertSql());
  if (!statement) {
    return std::unexpected(statement.error());
  }
  for (size_t i = first; i < last; ++i) {
    statement->reset();
    bindLedgerRow(*statement, rows[i]);
    if (auto inserted = statement->run(); !inserted) {
      return std::unexpected(rowError(inserted.error(), rows, i));
    }
  }
  return {};
}

// Inserts every row inside the caller's open transaction: kRowsPerInsert rows per statement,
// the remainder one by one. When a multi-row statement fails, SQLite has undone that statement
// alone (a constraint violation aborts the statement, not the transaction), so its rows are
// inserted again one by one to find and name the failing row. If SQLite has ended the
// transaction instead (an I/O or full-disk error), retrying would commit rows on their own, so
// the error is returned with the range of rows it covers.
Result<void> insertLedgerRows(Connection& connection, std::span<const LedgerRowView> rows) {
  const size_t full_chunks = rows.size() / kRowsPerInsert;
  if (full_chunks > 0) {
    auto statement = connection.prepare(multiRowInsertSql());
    if (!statement) {
      return std::unexpected(statement.error());
    }
    for (size_t chunk = 0; chunk < full_chunks; ++chunk) {
      const size_t first = chunk * kRowsPerInsert;
      statement->reset();
      for (size_t i = first; i < first + kRowsPerInsert; ++i) {
        bindLedgerRow(*statement, rows[i]);
      }
      auto inserted = statement->run();
      if (inserted) {
        continue;
      }
      if (sqlite3_get_autocommit(connection.handle()) != 0) {
        Error error = inserted.error();
        error.message = "ledger rows " + std::to_string(first + 1) + " to " +
                        std::to_string(first + kRowsPerInsert) + " of " +
                        std::to_string(rows.size()) + ": " + error.message;
        return std::unexpected(std::move(error));
      }
      KS_RETURN_IF_ERROR(insertOneByOne(connection, rows, first, first + kRowsPerInsert));
    }
  }
  return insertOneByOne(connection, rows, full_chunks * kRowsPerInsert, rows.size());
}

}  // namespace

Result<void> SqliteStore::appendLedger(std::span<const LedgerRowView> rows) {
  if (rows.empty()) {
    return {};
  }
  // The ledger is not part of the proxy's snapshot, so the config generation stays put.
  return write([&]() -> Result<void> { return insertLedgerRows(*connection_, rows); });
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
