// SqliteStore's batched ledger insert (multi-row statements with a row-by-row fallback) and
// its incremental month spend (spendSince), against a database file in a temporary folder.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "store/sqlite/ledger_statements.h"
#include "store/sqlite/sqlite_store.h"

// Records are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::store {
namespace {

class LedgerAppendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ledger-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    path_ = (directory_ / "keystore.db").string();
    auto opened = openSqliteStore(path_);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  // A row whose every field depends on `i`, so a field bound to the wrong parameter or row
  // reads back different.
  static LedgerRow distinctRow(int i) {
    const std::string n = std::to_string(i);
    return LedgerRow{.time = 10'000 + i,
                     .request_id = "req-" + n,
                     .project_id = "prj-" + std::to_string(i % 3),
                     .agent_id = "agt-" + n,
                     .token_id = "tok-" + n,
                     .provider = "provider-" + n,
                     .mode = i % 2 == 0 ? "byok" : "marketplace",
                     .credential_id = i % 4 == 0 ? "" : "cred-" + n,
                     .method = "M" + n,
                     .path = "/v1/caf\u00e9/" + n,
                     .upstream_status = 100 + i % 900,
                     .outcome = "outcome-" + n,
                     .bytes_in = 1'000 + i,
                     .bytes_out = 2'000 + i,
                     .latency_ms = 3'000 + i,
                     .model = "model-" + n,
                     .units = {.input_tokens = 4'000 + i,
                               .cached_input_tokens = 5'000 + i,
                               .output_tokens = 6'000 + i,
                               .requests = 7'000 + i,
                               .emails = 8'000 + i,
                               .messages = 9'000 + i,
                               .read_units = 11'000 + i,
                               .write_units = 12'000 + i},
                     .usage_reported = i % 3 == 0,
                     .prices = "{\"input_tokens\":" + n + "}",
                     .cost_micros = 13'000 + i,
                     .billable = i % 5 == 0};
  }

  static std::vector<LedgerRow> distinctRows(int count, int first = 0) {
    std::vector<LedgerRow> rows;
    for (int i = first; i < first + count; ++i) {
      rows.push_back(distinctRow(i));
    }
    return rows;
  }

  // Every stored row, oldest first.
  std::vector<LedgerRow> storedRows() {
    auto rows = store_->queryLedger(LedgerQuery{.limit = 100'000});
    EXPECT_TRUE(rows.has_value()) << rows.error().message;
    if (!rows) {
      return {};
    }
    return std::vector<LedgerRow>(rows->rbegin(), rows->rend());
  }

  // Column 3 of EXPLAIN QUERY PLAN (each step's description) for `sql`, one step per line.
  std::string queryPlan(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    std::string explain = "EXPLAIN QUERY PLAN " + sql;
    EXPECT_EQ(sqlite3_prepare_v2(db, explain.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string plan;
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      plan += "\n";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return plan;
  }

  // The first column of the first row of `sql`, as text.
  std::string scalar(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    std::string value;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }

  std::filesystem::path directory_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

void expectSameRow(const LedgerRow& stored, const LedgerRow& expected) {
  SCOPED_TRACE("request " + expected.request_id);
  EXPECT_EQ(stored.time, expected.time);
  EXPECT_EQ(stored.request_id, expected.request_id);
  EXPECT_EQ(stored.project_id, expected.project_id);
  EXPECT_EQ(stored.agent_id, expected.agent_id);
  EXPECT_EQ(stored.token_id, expected.token_id);
  EXPECT_EQ(stored.provider, expected.provider);
  EXPECT_EQ(stored.mode, expected.mode);
  EXPECT_EQ(stored.credential_id, expected.credential_id);
  EXPECT_EQ(stored.method, expected.method);
  EXPECT_EQ(stored.path, expected.path);
  EXPECT_EQ(stored.upstream_status, expected.upstream_status);
  EXPECT_EQ(stored.outcome, expected.outcome);
  EXPECT_EQ(stored.bytes_in, expected.bytes_in);
  EXPECT_EQ(stored.bytes_out, expected.bytes_out);
  EXPECT_EQ(stored.latency_ms, expected.latency_ms);
  EXPECT_EQ(stored.model, expected.model);
  EXPECT_EQ(stored.units.input_tokens, expected.units.input_tokens);
  EXPECT_EQ(stored.units.cached_input_tokens, expected.units.cached_input_tokens);
  EXPECT_EQ(stored.units.output_tokens, expected.units.output_tokens);
  EXPECT_EQ(stored.units.requests, expected.units.requests);
  EXPECT_EQ(stored.units.emails, expected.units.emails);
  EXPECT_EQ(stored.units.messages, expected.units.messages);
  EXPECT_EQ(stored.units.read_units, expected.units.read_units);
  EXPECT_EQ(stored.units.write_units, expected.units.write_units);
  EXPECT_EQ(stored.usage_reported, expected.usage_reported);
  EXPECT_EQ(stored.prices, expected.prices);
  EXPECT_EQ(stored.cost_micros, expected.cost_micros);
  EXPECT_EQ(stored.billable, expected.billable);
}

TEST_F(LedgerAppendTest, BatchSizesStoreEveryField) {
  // Around the 8, 32 and 128 rows of the multi-row statements: none, only one-row statements,
  // one statement of each size, and several sizes plus a remainder.
  std::vector<LedgerRow> expected;
  int next = 0;
  for (int count : {0, 1, 7, 8, 9, 31, 32, 33, 127, 128, 129, 300}) {
    SCOPED_TRACE("batch of " + std::to_string(count));
    std::vector<LedgerRow> batch = distinctRows(count, next);
    next += count;
    auto appended = store_->appendLedger(batch);
    ASSERT_TRUE(appended.has_value()) << appended.error().message;
    expected.insert(expected.end(), batch.begin(), batch.end());

    std::vector<LedgerRow> stored = storedRows();
    ASSERT_EQ(stored.size(), expected.size());
    for (size_t i = 0; i < stored.size(); ++i) {
      expectSameRow(stored[i], expected[i]);
    }
  }
}

// A multi-row insert changes more 16 KiB pages than SQLite's default threshold for moving a
// statement journal to a file (64 KiB). The journal stays in memory, so no batch creates a file.
TEST_F(LedgerAppendTest, BatchCreatesNoTemporaryFile) {
  // Rows already stored make the next statements change pages that existed before them, which
  // is what the statement journal keeps copies of.
  auto filled = store_->appendLedger(distinctRows(2000));
  ASSERT_TRUE(filled.has_value()) << filled.error().message;
  std::filesystem::path temp_directory = directory_ / "sqlite-temp";
  ASSERT_TRUE(std::filesystem::create_directory(temp_directory));
  int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  struct CloseWatch {
    int fd;
    ~CloseWatch() { ::close(fd); }
  } close_watch{watch};
  ASSERT_GE(inotify_add_watch(watch, temp_directory.c_str(), IN_CREATE), 0);

  // SQLite reads this directory each time it creates a temporary file.
  char* previous_directory = sqlite3_temp_directory;
  sqlite3_temp_directory = sqlite3_mprintf("%s", temp_directory.c_str());
  auto appended = store_->appendLedger(distinctRows(1000, 2000));
  sqlite3_free(sqlite3_temp_directory);
  sqlite3_temp_directory = previous_directory;
  ASSERT_TRUE(appended.has_value()) << appended.error().message;

  char events[4096];
  ssize_t read_bytes = ::read(watch, events, sizeof events);
  EXPECT_EQ(read_bytes, -1) << "the batch created a file in " << temp_directory;
  if (read_bytes == -1) {
    EXPECT_EQ(errno, EAGAIN);
  }
  EXPECT_EQ(storedRows().size(), 3000u);
}

// A row with no unit other than tokens and the request count, and no price, is inserted without
// its other columns, which then keep their defaults. Such rows read back as appended, alone in a
// statement or mixed with rows of every column.
TEST_F(LedgerAppendTest, CommonShapeRowsStoredAsAppended) {
  std::vector<LedgerRow> batch = distinctRows(300);
  for (size_t i = 0; i < batch.size(); ++i) {
    // Rows 0-127 and 160-191 all have the common shape, and the rest mix both shapes.
    bool common = i < 128 || (i >= 160 && i < 192) || i % 3 == 0;
    if (common) {
      batch[i].units.requests = 1 + static_cast<int64_t>(i % 2);
      batch[i].units.emails = 0;
      batch[i].units.messages = 0;
      batch[i].units.read_units = 0;
      batch[i].units.write_units = 0;
      batch[i].prices.clear();
      batch[i].cost_micros = 0;
      batch[i].billable = false;
    }
  }
  // A row that differs from the common shape in one column only.
  batch[200].prices.clear();
  batch[200].cost_micros = 0;
  batch[200].billable = false;
  batch[200].units = {.input_tokens = 1, .requests = 1, .write_units = 2};

  auto appended = store_->appendLedger(batch);
  ASSERT_TRUE(appended.has_value()) << appended.error().message;
  std::vector<LedgerRow> stored = storedRows();
  ASSERT_EQ(stored.size(), batch.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    expectSameRow(stored[i], batch[i]);
  }
}

// A metered LLM row without a price has the common shape, and any of the columns that the common
// statement leaves out makes a row full.
TEST(LedgerStatementsTest, RowShapeFollowsColumns) {
  LedgerRowView llm_call{.units = {.input_tokens = 350, .output_tokens = 210, .requests = 1},
                         .usage_reported = true};
  EXPECT_EQ(sqlite::ledgerRowShape(llm_call), sqlite::LedgerRowShape::kCommon);
  EXPECT_EQ(sqlite::ledgerRowShape(LedgerRowView{}), sqlite::LedgerRowShape::kCommon);

  auto shape_with = [&llm_call](auto change) {
    LedgerRowView row = llm_call;
    change(row);
    return sqlite::ledgerRowShape(row);
  };
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.units.emails = 1; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.units.messages = 1; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.units.read_units = 1; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.units.write_units = 1; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.prices = R"({"input_tokens":150000})"; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.cost_micros = 1; }),
            sqlite::LedgerRowShape::kFull);
  EXPECT_EQ(shape_with([](LedgerRowView& row) { row.billable = true; }),
            sqlite::LedgerRowShape::kFull);
}

// A statement size is used only when its parameters fit in the connection's limit, so a
// SQLite built with the old limit of 999 gets 32 and 8-row statements.
TEST(LedgerStatementsTest, SizesFitParameterLimit) {
  auto sizes = [](int limit) {
    auto fitting = sqlite::ledgerRowsPerInsert(limit);
    return std::vector<size_t>(fitting.begin(), fitting.end());
  };
  EXPECT_EQ(sizes(32'766), (std::vector<size_t>{128, 32, 8}));
  EXPECT_EQ(sizes(3'584), (std::vector<size_t>{128, 32, 8}));
  EXPECT_EQ(sizes(3'583), (std::vector<size_t>{32, 8}));
  EXPECT_EQ(sizes(999), (std::vector<size_t>{32, 8}));
  EXPECT_EQ(sizes(224), (std::vector<size_t>{8}));
  EXPECT_EQ(sizes(223), std::vector<size_t>{});
  EXPECT_EQ(sizes(0), std::vector<size_t>{});
}

TEST_F(LedgerAppendTest, InvalidRowStoresNoneOfBatch) {
  ASSERT_TRUE(store_->appendLedger(distinctRows(5, 1'000)));

  // 171 rows are statements of 128, 32 and 8 rows and 3 single rows: a bad row in each.
  for (int bad : {0, 130, 163, 169}) {
    SCOPED_TRACE("invalid row index " + std::to_string(bad));
    std::vector<LedgerRow> batch = distinctRows(171);
    batch[bad].upstream_status = 1000;

    auto appended = store_->appendLedger(batch);
    ASSERT_FALSE(appended.has_value());
    EXPECT_EQ(appended.error().code, ErrorCode::kInvalidRequest);
    const std::string named = "ledger row " + std::to_string(bad + 1) + " of 171 (request 'req-" +
                              std::to_string(bad) + "')";
    EXPECT_NE(appended.error().message.find(named), std::string::npos) << appended.error().message;
    EXPECT_NE(appended.error().message.find("upstream_status"), std::string::npos)
        << appended.error().message;
    EXPECT_EQ(storedRows().size(), 5u);
  }
}

TEST_F(LedgerAppendTest, BatchAfterFailedBatchStored) {
  std::vector<LedgerRow> bad_batch = distinctRows(40);
  bad_batch[35].cost_micros = -1;
  ASSERT_FALSE(store_->appendLedger(bad_batch).has_value());

  std::vector<LedgerRow> batch = distinctRows(40, 100);
  auto appended = store_->appendLedger(batch);
  ASSERT_TRUE(appended.has_value()) << appended.error().message;

  std::vector<LedgerRow> stored = storedRows();
  ASSERT_EQ(stored.size(), 40u);
  for (size_t i = 0; i < stored.size(); ++i) {
    expectSameRow(stored[i], batch[i]);
  }
}

LedgerRow spendRow(int64_t time, const std::string& project_id, const std::string& agent_id,
                   int64_t cost_micros) {
  return LedgerRow{.time = time,
                   .request_id = "req",
                   .project_id = project_id,
                   .agent_id = agent_id,
                   .upstream_status = 200,
                   .cost_micros = cost_micros};
}

using Spend = std::map<std::string, int64_t>;

TEST_F(LedgerAppendTest, SpendSinceFromZeroSumsWindow) {
  ASSERT_TRUE(store_->appendLedger({
      spendRow(999, "p1", "a1", 1),
      spendRow(1'000, "p1", "a1", 10),
      spendRow(1'500, "p1", "a2", 20),
      spendRow(1'999, "p2", "a3", 30),
      spendRow(2'000, "p1", "a1", 40),
  }));

  auto delta = store_->spendSince(0, 1'000, 2'000);
  ASSERT_TRUE(delta.has_value()) << delta.error().message;
  EXPECT_EQ(delta->spend.by_agent, (Spend{{"a1", 10}, {"a2", 20}, {"a3", 30}}));
  EXPECT_EQ(delta->spend.by_project, (Spend{{"p1", 30}, {"p2", 30}}));
  // The cursor covers the rows outside the window too.
  EXPECT_EQ(delta->cursor, 5);
}

TEST_F(LedgerAppendTest, SpendSinceCountsOnlyRowsAfterCursor) {
  ASSERT_TRUE(store_->appendLedger({spendRow(1'000, "p1", "a1", 10)}));
  auto first = store_->spendSince(0, 1'000, 2'000);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->cursor, 1);

  ASSERT_TRUE(store_->appendLedger({
      spendRow(1'100, "p1", "a1", 5),
      spendRow(2'500, "p1", "a1", 700),  // next month
      spendRow(1'200, "p2", "a2", 3),
  }));
  auto second = store_->spendSince(first->cursor, 1'000, 2'000);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->spend.by_agent, (Spend{{"a1", 5}, {"a2", 3}}));
  EXPECT_EQ(second->spend.by_project, (Spend{{"p1", 5}, {"p2", 3}}));
  EXPECT_EQ(second->cursor, 4);

  auto unchanged = store_->spendSince(second->cursor, 1'000, 2'000);
  ASSERT_TRUE(unchanged.has_value()) << unchanged.error().message;
  EXPECT_TRUE(unchanged->spend.by_agent.empty());
  EXPECT_TRUE(unchanged->spend.by_project.empty());
  EXPECT_EQ(unchanged->cursor, 4);
}

TEST_F(LedgerAppendTest, SpendSinceSkipsZeroCostRows) {
  ASSERT_TRUE(store_->appendLedger({
      spendRow(1'000, "p1", "a1", 0),
      spendRow(1'100, "p1", "a2", 7),
      spendRow(1'200, "p2", "a3", 0),
  }));
  for (int64_t cursor : {0, 1}) {
    auto delta = store_->spendSince(cursor, 1'000, 2'000);
    ASSERT_TRUE(delta.has_value()) << delta.error().message;
    EXPECT_EQ(delta->spend.by_agent, (Spend{{"a2", 7}})) << "from cursor " << cursor;
    EXPECT_EQ(delta->spend.by_project, (Spend{{"p1", 7}})) << "from cursor " << cursor;
    EXPECT_EQ(delta->cursor, 3) << "from cursor " << cursor;
  }
  auto month = store_->monthSpend(1'000, 2'000);
  ASSERT_TRUE(month.has_value()) << month.error().message;
  EXPECT_EQ(month->by_agent, (Spend{{"a2", 7}}));
  EXPECT_EQ(month->by_project, (Spend{{"p1", 7}}));
}

TEST_F(LedgerAppendTest, SpendSinceEmptyLedgerKeepsCursor) {
  auto from_zero = store_->spendSince(0, 1'000, 2'000);
  ASSERT_TRUE(from_zero.has_value()) << from_zero.error().message;
  EXPECT_EQ(from_zero->cursor, 0);

  // A cursor from another database (or past deleted rows) is never moved backwards.
  auto ahead = store_->spendSince(50, 1'000, 2'000);
  ASSERT_TRUE(ahead.has_value()) << ahead.error().message;
  EXPECT_EQ(ahead->cursor, 50);
}

TEST_F(LedgerAppendTest, SpendSinceInvalidArgumentsRejected) {
  auto inverted = store_->spendSince(0, 2'000, 1'000);
  ASSERT_FALSE(inverted.has_value());
  EXPECT_EQ(inverted.error().code, ErrorCode::kInvalidRequest);

  auto negative = store_->spendSince(-1, 1'000, 2'000);
  ASSERT_FALSE(negative.has_value());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidRequest);
}

TEST_F(LedgerAppendTest, SpendSinceReadsCostedIdRangeNotMonth) {
  // The query text that spendSince runs past a cursor, in the form SQLite plans it: it must
  // search the id range of the partial index of costed rows, not walk the month through
  // ledger_time or every row through the primary key.
  std::string plan = queryPlan(
      "SELECT project_id, agent_id, sum(cost_micros) FROM ledger INDEXED BY ledger_costed "
      "WHERE id > 5 AND time >= 0 AND time < 10 AND cost_micros > 0 "
      "GROUP BY project_id, agent_id");
  EXPECT_NE(plan.find("USING INDEX ledger_costed (id>?)"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("ledger_time"), std::string::npos) << plan;
}

TEST_F(LedgerAppendTest, CostedIndexListsOnlyRowsWithCost) {
  ASSERT_TRUE(store_->appendLedger({
      spendRow(1'000, "p1", "a1", 0),
      spendRow(1'100, "p1", "a2", 9),
      spendRow(1'200, "p2", "a3", 0),
  }));
  EXPECT_EQ(scalar("SELECT group_concat(id) FROM ledger INDEXED BY ledger_costed "
                   "WHERE id > 0 AND cost_micros > 0"),
            "2");
}

}  // namespace
}  // namespace keystore::store
