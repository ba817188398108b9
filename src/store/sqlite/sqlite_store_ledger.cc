// The usage ledger of SqliteStore.
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite/ledger_statements.h"
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

// Columns bound for a row of LedgerRowShape::kCommon. Leaving seven columns to their defaults
// saves SQLite seven parameters per row.
constexpr std::string_view kCommonLedgerColumns =
    "time, request_id, project_id, agent_id, token_id, provider, mode, method, path, "
    "upstream_status, outcome, bytes_in, bytes_out, latency_ms, credential_id, model, "
    "input_tokens, cached_input_tokens, output_tokens, requests, usage_reported";

using sqlite::LedgerRowShape;
using sqlite::ledgerRowShape;

constexpr const auto& kRowsPerInsert = sqlite::kLedgerRowsPerInsert;
static_assert(std::ranges::count(kLedgerColumns, ',') + 1 == sqlite::kLedgerParametersPerRow);

// "INSERT INTO ledger (...) VALUES (?, ...), (?, ...)" with `row_count` rows of parameters.
std::string ledgerInsertSql(LedgerRowShape shape, size_t row_count) {
  std::string_view columns = shape == LedgerRowShape::kFull ? kLedgerColumns : kCommonLedgerColumns;
  std::string row = "(?";
  for (char c : columns) {
    if (c == ',') {
      row += ", ?";
    }
  }
  row += ")";

  std::string sql = "INSERT INTO ledger (" + std::string(columns) + ") VALUES " + row;
  for (size_t i = 1; i < row_count; ++i) {
    sql += ", " + row;
  }
  return sql;
}

// The statement texts, by shape and then row count: 1, then each of kRowsPerInsert.
constexpr size_t kRowCountsPerShape = 1 + kRowsPerInsert.size();

size_t rowCountIndex(size_t row_count) {
  for (size_t i = 0; i < kRowsPerInsert.size(); ++i) {
    if (row_count == kRowsPerInsert[i]) {
      return i + 1;
    }
  }
  return 0;
}

const std::string& insertSql(LedgerRowShape shape, size_t row_count) {
  static const auto texts = [] {
    std::array<std::array<std::string, kRowCountsPerShape>, 2> all;
    for (LedgerRowShape each : {LedgerRowShape::kFull, LedgerRowShape::kCommon}) {
      all[static_cast<size_t>(each)][0] = ledgerInsertSql(each, 1);
      for (size_t count : kRowsPerInsert) {
        all[static_cast<size_t>(each)][rowCountIndex(count)] = ledgerInsertSql(each, count);
      }
    }
    return all;
  }();
  return texts[static_cast<size_t>(shape)][rowCountIndex(row_count)];
}

// The prepared statements of one batch, one per shape and row count. Each is reset for its next
// chunk rather than returned to the connection's cache, which would clear all its bindings:
// several thousand parameters for a 128-row statement.
class InsertStatements {
 public:
  explicit InsertStatements(Connection& connection) : connection_(connection) {}

  Result<Statement*> get(LedgerRowShape shape, size_t row_count) {
    auto& slot = slots_[static_cast<size_t>(shape) * kRowCountsPerShape + rowCountIndex(row_count)];
    if (slot) {
      slot->reset();
      return &*slot;
    }
    auto prepared = connection_.prepare(insertSql(shape, row_count));
    if (!prepared) {
      return std::unexpected(prepared.error());
    }
    slot.emplace(std::move(*prepared));
    return &*slot;
  }

 private:
  Connection& connection_;
  std::array<std::optional<Statement>, 2 * kRowCountsPerShape> slots_;
};

// Binds the columns of `row` for `shape`, in the order of its column list. Text is borrowed, so
// the bytes `row` views must outlive the statement's next step().
void bindLedgerRow(Statement& statement, const LedgerRowView& row, LedgerRowShape shape) {
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
      .bind(units.requests);
  if (shape == LedgerRowShape::kCommon) {
    statement.bind(int64_t{row.usage_reported});
    return;
  }
  statement.bind(units.emails)
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
Result<void> insertOneByOne(InsertStatements& statements, std::span<const LedgerRowView> rows,
                            size_t first, size_t last) {
  for (size_t i = first; i < last; ++i) {
    LedgerRowShape shape = ledgerRowShape(rows[i]);
    auto statement = statements.get(shape, 1);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    bindLedgerRow(**statement, rows[i], shape);
    if (auto inserted = (*statement)->run(); !inserted) {
      return std::unexpected(rowError(inserted.error(), rows, i));
    }
  }
  return {};
}

// Inserts rows[first, first + count) with one multi-row statement, of the common shape when
// every row has it. When the statement fails, SQLite has undone that statement alone (a
// constraint violation aborts the statement, not the transaction), so its rows are inserted
// again one by one to find and name the failing row. If SQLite has ended the transaction
// instead (an I/O or full-disk error), retrying would commit rows on their own, so the error is
// returned with the range of rows it covers.
Result<void> insertChunk(Connection& connection, InsertStatements& statements,
                         std::span<const LedgerRowView> rows, size_t first, size_t count) {
  LedgerRowShape shape = LedgerRowShape::kCommon;
  for (size_t i = first; i < first + count; ++i) {
    if (ledgerRowShape(rows[i]) == LedgerRowShape::kFull) {
      shape = LedgerRowShape::kFull;
      break;
    }
  }
  auto statement = statements.get(shape, count);
  if (!statement) {
    return std::unexpected(statement.error());
  }
  for (size_t i = first; i < first + count; ++i) {
    bindLedgerRow(**statement, rows[i], shape);
  }
  auto inserted = (*statement)->run();
  if (inserted) {
    return {};
  }
  if (sqlite3_get_autocommit(connection.handle()) != 0) {
    Error error = inserted.error();
    error.message = "ledger rows " + std::to_string(first + 1) + " to " +
                    std::to_string(first + count) + " of " + std::to_string(rows.size()) + ": " +
                    error.message;
    return std::unexpected(std::move(error));
  }
  return insertOneByOne(statements, rows, first, first + count);
}

// Inserts every row inside the caller's open transaction, in the largest statements that fit.
Result<void> insertLedgerRows(Connection& connection, std::span<const LedgerRowView> rows) {
  InsertStatements statements(connection);
  const int variable_limit = sqlite3_limit(connection.handle(), SQLITE_LIMIT_VARIABLE_NUMBER, -1);
  size_t next = 0;
  for (size_t chunk : sqlite::ledgerRowsPerInsert(variable_limit)) {
    while (rows.size() - next >= chunk) {
      KS_RETURN_IF_ERROR(insertChunk(connection, statements, rows, next, chunk));
      next += chunk;
    }
  }
  return insertOneByOne(statements, rows, next, rows.size());
}

}  // namespace

sqlite::LedgerRowShape sqlite::ledgerRowShape(const LedgerRowView& row) {
  const UnitCounts& units = row.units;
  bool common = units.emails == 0 && units.messages == 0 && units.read_units == 0 &&
                units.write_units == 0 && row.prices.empty() && row.cost_micros == 0 &&
                !row.billable;
  return common ? LedgerRowShape::kCommon : LedgerRowShape::kFull;
}

std::span<const size_t> sqlite::ledgerRowsPerInsert(int variable_limit) {
  size_t first_fitting = 0;
  while (first_fitting < kRowsPerInsert.size() &&
         kRowsPerInsert[first_fitting] * sqlite::kLedgerParametersPerRow >
             static_cast<size_t>(std::max(variable_limit, 0))) {
    ++first_fitting;
  }
  return std::span<const size_t>(sqlite::kLedgerRowsPerInsert).subspan(first_fitting);
}

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
