// Micro-benchmark of the ledger writer's database work. It appends a batch of 64 proxy-like
// rows in one transaction through SqliteStore::appendLedger, which uses multi-row INSERT
// statements and binds text without a copy. The reference inserts the same rows the way
// appendLedger did before: one INSERT per row, its SQL text rebuilt and looked up in a
// statement cache for every row, and every text column copied by SQLite (SQLITE_TRANSIENT).
//
// A second pair appends batches of the size the ledger writer commits under load, 3,200 rows
// of two I/O threads, in time order and thread by thread, to show what the order costs.
//
// Each writes to its own database file in a temporary folder, with the schema and pragmas
// of a real store (WAL, synchronous NORMAL). The tables grow during the run, alike in each pair.
// After the benchmarks the program prints CPU time per row and the ratio to the reference,
// both measured in this run.
//
// Usage: ledger_bench [Google Benchmark flags], e.g. --benchmark_repetitions=5 to compare
// medians.

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "support/ratio_reporter.h"

namespace {

using keystore::store::LedgerRow;

constexpr int kBatchRows = 64;

constexpr std::string_view kColumns =
    "time, request_id, project_id, agent_id, token_id, provider, mode, method, path, "
    "upstream_status, outcome, bytes_in, bytes_out, latency_ms, credential_id, model, "
    "input_tokens, cached_input_tokens, output_tokens, requests, emails, messages, read_units, "
    "write_units, usage_reported, prices, cost_micros, billable";

// A metered chat completion as the proxy records it, with ids of production length.
LedgerRow realisticRow(int i) {
  const std::string n = std::to_string(100'000 + i);
  LedgerRow row;
  row.time = 1'764'900'000'000 + i;
  row.request_id = "req_01JEXAMPLE" + n + "ABCDEFGH";
  row.project_id = "prj_01JEXAMPLEPROJECT000001";
  row.agent_id = "agt_01JEXAMPLEAGENT0000" + std::to_string(i % 8);
  row.token_id = "tok_01JEXAMPLETOKEN0000" + std::to_string(i % 8);
  row.provider = "openai";
  row.mode = "byok";
  row.method = "POST";
  row.path = "/v1/chat/completions";
  row.upstream_status = 200;
  row.outcome = "ok";
  row.bytes_in = 1'480 + i;
  row.bytes_out = 3'912 + i;
  row.latency_ms = 640 + i % 100;
  row.model = "gpt-4o-mini-2024-07-18";
  row.units.input_tokens = 350 + i;
  row.units.cached_input_tokens = 128;
  row.units.output_tokens = 210 + i;
  row.usage_reported = true;
  row.prices = R"({"cached_input_tokens":75000,"input_tokens":150000,"output_tokens":600000})";
  row.cost_micros = 178 + i;
  row.billable = false;
  return row;
}

std::vector<LedgerRow> realisticBatch() {
  std::vector<LedgerRow> rows;
  for (int i = 0; i < kBatchRows; ++i) {
    rows.push_back(realisticRow(i));
  }
  return rows;
}

// Moves the batch's times past the previous batch's, as the proxy's rows arrive. Appending
// the same times again would insert into the middle of the time indexes and dirty far more
// pages per commit than a real ledger does.
void advanceTimes(std::vector<LedgerRow>& batch) {
  for (LedgerRow& row : batch) {
    row.time += kBatchRows;
  }
}

// A temporary folder, removed with everything in it when the benchmark ends.
class TemporaryFolder {
 public:
  TemporaryFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ledger-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~TemporaryFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  bool created() const { return !path_.empty(); }

 private:
  std::filesystem::path path_;
};

void BM_AppendLedgerBatch(benchmark::State& state) {
  TemporaryFolder folder;
  auto store = keystore::store::openSqliteStore(folder.file("keystore.db"));
  if (!folder.created() || !store) {
    state.SkipWithError("cannot create the store");
    return;
  }
  std::vector<LedgerRow> batch = realisticBatch();
  for (auto _ : state) {
    advanceTimes(batch);
    auto appended = (*store)->appendLedger(batch);
    if (!appended) {
      state.SkipWithError(appended.error().message.c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatchRows);
}
BENCHMARK(BM_AppendLedgerBatch);

// The ledger writer's batch under load: 50 ms of two I/O threads at 64,000 requests/s. Each
// thread's rows are in time order, and the two threads' times overlap.
constexpr int kWriterBatchRows = 3'200;
constexpr int kWriterBatchMillis = 50;

// The rows of one writer batch: thread by thread, as the writer takes them, or merged by time.
std::vector<LedgerRow> writerBatch(bool in_time_order) {
  std::vector<LedgerRow> rows;
  for (int i = 0; i < kWriterBatchRows; ++i) {
    const int thread = in_time_order ? i % 2 : i / (kWriterBatchRows / 2);
    const int position = in_time_order ? i / 2 : i % (kWriterBatchRows / 2);
    LedgerRow row = realisticRow(i);
    row.time = 1'764'900'000'000 + position * kWriterBatchMillis / (kWriterBatchRows / 2);
    row.agent_id.back() = static_cast<char>('0' + thread);
    rows.push_back(std::move(row));
  }
  return rows;
}

void appendWriterBatches(benchmark::State& state, bool in_time_order) {
  TemporaryFolder folder;
  auto store = keystore::store::openSqliteStore(folder.file("keystore.db"));
  if (!folder.created() || !store) {
    state.SkipWithError("cannot create the store");
    return;
  }
  std::vector<LedgerRow> batch = writerBatch(in_time_order);
  for (auto _ : state) {
    for (LedgerRow& row : batch) {
      row.time += kWriterBatchMillis;
    }
    auto appended = (*store)->appendLedger(batch);
    if (!appended) {
      state.SkipWithError(appended.error().message.c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kWriterBatchRows);
}

void BM_AppendWriterBatchInTimeOrder(benchmark::State& state) {
  appendWriterBatches(state, true);
}
BENCHMARK(BM_AppendWriterBatchInTimeOrder);

void BM_AppendWriterBatchByThread(benchmark::State& state) {
  appendWriterBatches(state, false);
}
BENCHMARK(BM_AppendWriterBatchByThread);

// Binds a text column as SQLite copies it (SQLITE_TRANSIENT), as the store did before.
void bindCopied(sqlite3_stmt* stmt, int index, const std::string& text) {
  sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void BM_ReferenceStatementPerRow(benchmark::State& state) {
  TemporaryFolder folder;
  const std::string path = folder.file("keystore.db");
  // SqliteStore creates the schema, and the reference writes through its own connection.
  if (!folder.created() || !keystore::store::openSqliteStore(path)) {
    state.SkipWithError("cannot create the store");
    return;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    state.SkipWithError("cannot open the database");
    sqlite3_close(db);
    return;
  }

  std::vector<LedgerRow> batch = realisticBatch();
  std::map<std::string, sqlite3_stmt*, std::less<>> cache;
  bool failed = false;
  for (auto _ : state) {
    advanceTimes(batch);
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (const LedgerRow& row : batch) {
      std::string sql = "INSERT INTO ledger (" + std::string(kColumns) +
                        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                        "?, ?, ?, ?, ?, ?, ?)";
      auto found = cache.find(sql);
      if (found == cache.end()) {
        sqlite3_stmt* prepared = nullptr;
        sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &prepared, nullptr);
        found = cache.emplace(sql, prepared).first;
      }
      sqlite3_stmt* stmt = found->second;
      sqlite3_bind_int64(stmt, 1, row.time);
      bindCopied(stmt, 2, row.request_id);
      bindCopied(stmt, 3, row.project_id);
      bindCopied(stmt, 4, row.agent_id);
      bindCopied(stmt, 5, row.token_id);
      bindCopied(stmt, 6, row.provider);
      bindCopied(stmt, 7, row.mode);
      bindCopied(stmt, 8, row.method);
      bindCopied(stmt, 9, row.path);
      sqlite3_bind_int64(stmt, 10, row.upstream_status);
      bindCopied(stmt, 11, row.outcome);
      sqlite3_bind_int64(stmt, 12, row.bytes_in);
      sqlite3_bind_int64(stmt, 13, row.bytes_out);
      sqlite3_bind_int64(stmt, 14, row.latency_ms);
      bindCopied(stmt, 15, row.credential_id);
      bindCopied(stmt, 16, row.model);
      sqlite3_bind_int64(stmt, 17, row.units.input_tokens);
      sqlite3_bind_int64(stmt, 18, row.units.cached_input_tokens);
      sqlite3_bind_int64(stmt, 19, row.units.output_tokens);
      sqlite3_bind_int64(stmt, 20, row.units.requests);
      sqlite3_bind_int64(stmt, 21, row.units.emails);
      sqlite3_bind_int64(stmt, 22, row.units.messages);
      sqlite3_bind_int64(stmt, 23, row.units.read_units);
      sqlite3_bind_int64(stmt, 24, row.units.write_units);
      sqlite3_bind_int64(stmt, 25, row.usage_reported ? 1 : 0);
      bindCopied(stmt, 26, row.prices);
      sqlite3_bind_int64(stmt, 27, row.cost_micros);
      sqlite3_bind_int64(stmt, 28, row.billable ? 1 : 0);
      failed = failed || sqlite3_step(stmt) != SQLITE_DONE;
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
    }
    failed = failed || sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK;
    if (failed) {
      state.SkipWithError(sqlite3_errmsg(db));
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatchRows);

  for (auto& [sql, stmt] : cache) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
}
BENCHMARK(BM_ReferenceStatementPerRow);

}  // namespace

int main(int argc, char** argv) {
  return keystore::bench::runWithRatios(
      argc, argv, [](const keystore::bench::RatioReporter& reporter) {
        reporter.printRatio("append 64-row batch", "BM_AppendLedgerBatch",
                            "BM_ReferenceStatementPerRow", kBatchRows, " per row");
        reporter.printRatio("3,200 rows in time order", "BM_AppendWriterBatchInTimeOrder",
                            "BM_AppendWriterBatchByThread", kWriterBatchRows, " per row");
      });
}
