#include "metering/ledger_writer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"

namespace keystore::metering {
namespace {

class LedgerWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("ledger-writer-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto opened = store::openSqliteStore((directory_ / "keystore.db").string());
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

  static store::LedgerRow row(int i) {
    store::LedgerRow row;
    row.time = 1'000 + i;
    row.request_id = "req_" + std::to_string(i);
    row.project_id = "prj_1";
    row.agent_id = "agt_1";
    row.token_id = "tok_1";
    row.provider = "openai";
    row.mode = "byok";
    row.method = "POST";
    row.path = "/v1/chat/completions";
    row.upstream_status = 200;
    row.outcome = "ok";
    return row;
  }

  size_t storedRows() {
    store::LedgerQuery query;
    query.limit = 100'000;
    auto rows = store_->queryLedger(query);
    EXPECT_TRUE(rows.has_value());
    return rows ? rows->size() : 0;
  }

  std::filesystem::path directory_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(LedgerWriterTest, RowsCommittedWithinFlushWindow) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(20));
  for (int i = 0; i < 10; ++i) {
    writer.append(row(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(storedRows(), 10u);
}

TEST_F(LedgerWriterTest, FlushCommitsEverythingQueued) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(100));
  for (int i = 0; i < 500; ++i) {
    writer.append(row(i));
  }
  writer.flush();
  EXPECT_EQ(storedRows(), 500u);
}

TEST_F(LedgerWriterTest, DurableAppendVisibleOnReturn) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(100));
  writer.appendDurable(row(1));
  EXPECT_EQ(storedRows(), 1u);
}

TEST_F(LedgerWriterTest, DestructorFlushesQueue) {
  {
    LedgerWriter writer(*store_, std::chrono::milliseconds(100));
    for (int i = 0; i < 7; ++i) {
      writer.append(row(i));
    }
  }
  EXPECT_EQ(storedRows(), 7u);
}

TEST_F(LedgerWriterTest, ConcurrentAppendsAllStored) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(10));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < 250; ++i) {
        writer.append(row(t * 1000 + i));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  writer.flush();
  EXPECT_EQ(storedRows(), 1000u);
  EXPECT_EQ(writer.failedRows(), 0u);
}

// A caller that reuses one row gets it back cleared with its strings' capacity kept, and every
// stored row keeps its own values.
TEST_F(LedgerWriterTest, ReusedRowReturnedCleared) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(10));
  store::LedgerRow reused;
  const std::string long_path = "/v1/chat/completions/" + std::string(100, 'p');
  for (int i = 0; i < 3; ++i) {
    reused = row(i);
    reused.path = long_path;
    reused.model = "gpt-4o-mini";
    reused.units.input_tokens = 10 + i;
    reused.cost_micros = 7;
    reused.billable = true;
    writer.append(reused);
    EXPECT_TRUE(reused.request_id.empty());
    EXPECT_TRUE(reused.path.empty());
    EXPECT_TRUE(reused.model.empty());
    EXPECT_EQ(reused.time, 0);
    EXPECT_EQ(reused.upstream_status, 0);
    EXPECT_EQ(reused.units.input_tokens, 0);
    EXPECT_EQ(reused.cost_micros, 0);
    EXPECT_FALSE(reused.billable);
  }
  writer.flush();

  writer.append(reused);
  EXPECT_GE(reused.path.capacity(), long_path.size());
  EXPECT_TRUE(reused.path.empty());

  reused.time = 2'000;
  reused.request_id = "req_last";
  reused.project_id = "prj_1";
  reused.path = "/v1/embeddings";
  reused.outcome = "ok";
  writer.append(reused);
  writer.flush();

  store::LedgerQuery query;
  query.limit = 100;
  auto rows = store_->queryLedger(query);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 5u);
  std::map<std::string, store::LedgerRow> by_request;
  for (const auto& stored : *rows) {
    by_request[stored.request_id] = stored;
  }
  for (int i = 0; i < 3; ++i) {
    const auto& stored = by_request.at("req_" + std::to_string(i));
    EXPECT_EQ(stored.path, long_path);
    EXPECT_EQ(stored.units.input_tokens, 10 + i);
    EXPECT_EQ(stored.cost_micros, 7);
    EXPECT_TRUE(stored.billable);
  }
  const auto& last = by_request.at("req_last");
  EXPECT_EQ(last.path, "/v1/embeddings");
  EXPECT_EQ(last.model, "");
  EXPECT_EQ(last.units.input_tokens, 0);
  EXPECT_EQ(last.cost_micros, 0);
  EXPECT_FALSE(last.billable);
  // The row appended cleared, between the two batches, is stored as such.
  EXPECT_EQ(by_request.count(""), 1u);
}

// A row that once carried a long path does not keep that capacity when it is cleared.
TEST_F(LedgerWriterTest, RecycledRowDropsLargeCapacity) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(10));
  const std::string long_path = "/v1/" + std::string(4000, 'p');
  store::LedgerRow reused;
  for (int i = 0; i < 4; ++i) {
    reused = row(i);
    reused.path = long_path;
    writer.append(reused);
  }
  writer.flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  reused = row(10);
  writer.append(reused);
  EXPECT_TRUE(reused.path.empty());
  EXPECT_LT(reused.path.capacity(), long_path.size());
  writer.flush();
  EXPECT_EQ(storedRows(), 5u);
}

// Every field of a row, each set to a value of its own, is stored as appended: the batch buffer
// encodes and decodes each member in order.
TEST_F(LedgerWriterTest, EveryFieldStoredAsAppended) {
  store::LedgerRow full;
  full.time = 1'234'567;
  full.request_id = "req_full";
  full.project_id = "prj_full";
  full.agent_id = "agt_full";
  full.token_id = "tok_full";
  full.provider = "anthropic";
  full.mode = "marketplace";
  full.credential_id = "cred_full";
  full.method = "POST";
  full.path = "/v1/messages?beta=true";
  full.upstream_status = 429;
  full.outcome = "upstream_error";
  full.bytes_in = 1'001;
  full.bytes_out = 2'002;
  full.latency_ms = 3'003;
  full.model = "claude-sonnet";
  full.units = {.input_tokens = 11,
                .cached_input_tokens = 12,
                .output_tokens = 13,
                .requests = 14,
                .emails = 15,
                .messages = 16,
                .read_units = 17,
                .write_units = 18};
  full.usage_reported = true;
  full.prices = R"({"input_tokens":3000000})";
  full.cost_micros = 19;
  full.billable = true;
  // An empty string between non-empty ones, and text with a zero byte, keep their lengths.
  store::LedgerRow sparse = row(2);
  sparse.mode = "";
  sparse.path = std::string("/v1/a\0b", 7);

  LedgerWriter writer(*store_, std::chrono::milliseconds(1'000));
  store::LedgerRow appended = full;
  writer.append(appended);
  appended = sparse;
  writer.append(appended);
  writer.flush();

  store::LedgerQuery query;
  query.limit = 10;
  auto rows = store_->queryLedger(query);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 2u);
  // Newest first: full has the later time.
  EXPECT_EQ((*rows)[0], full);
  EXPECT_EQ((*rows)[1], sparse);
  EXPECT_EQ((*rows)[1].path.size(), 7u);
}

// Rows appended from one thread to two writers in turn reach each writer's store only.
TEST_F(LedgerWriterTest, TwoWritersKeepRowsApart) {
  auto other_directory = directory_ / "other";
  std::filesystem::create_directories(other_directory);
  auto other = store::openSqliteStore((other_directory / "keystore.db").string());
  ASSERT_TRUE(other.has_value()) << other.error().message;

  LedgerWriter first(*store_, std::chrono::milliseconds(1'000));
  LedgerWriter second(**other, std::chrono::milliseconds(1'000));
  for (int i = 0; i < 6; ++i) {
    (i % 2 == 0 ? first : second).append(row(i));
  }
  first.flush();
  second.flush();
  EXPECT_EQ(storedRows(), 3u);
  store::LedgerQuery query;
  query.limit = 10;
  auto in_other = (*other)->queryLedger(query);
  ASSERT_TRUE(in_other.has_value());
  ASSERT_EQ(in_other->size(), 3u);
  for (const auto& stored : *in_other) {
    int index = std::stoi(stored.request_id.substr(4));
    EXPECT_EQ(index % 2, 1) << stored.request_id;
  }
}

// A writer created after another one was destroyed, possibly at the same address, gets the rows
// a thread appends to it, although that thread's cache still names the destroyed writer.
TEST_F(LedgerWriterTest, WriterCreatedAfterAnotherGetsItsRows) {
  {
    LedgerWriter earlier(*store_, std::chrono::milliseconds(1'000));
    earlier.append(row(1));
  }
  EXPECT_EQ(storedRows(), 1u);
  {
    LedgerWriter later(*store_, std::chrono::milliseconds(1'000));
    later.append(row(2));
    later.append(row(3));
    later.flush();
    EXPECT_EQ(storedRows(), 3u);
  }
  EXPECT_EQ(storedRows(), 3u);
}

// flush() waits for rows appended from other threads before the call, not only its own.
TEST_F(LedgerWriterTest, FlushCommitsRowsOfOtherThreads) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(10'000));
  std::thread appender([&writer] {
    for (int i = 0; i < 100; ++i) {
      writer.append(row(i));
    }
  });
  appender.join();
  writer.flush();
  EXPECT_EQ(storedRows(), 100u);
}

// Rows of two threads whose times interleave are committed in time order, so the ids that SQLite
// gives them follow time.
TEST_F(LedgerWriterTest, RowsCommittedInTimeOrder) {
  LedgerWriter writer(*store_, std::chrono::milliseconds(10'000));
  auto append_every_other = [&writer](int first) {
    for (int i = first; i < 400; i += 2) {
      writer.append(row(i));
    }
  };
  std::thread even(append_every_other, 0);
  even.join();
  std::thread odd(append_every_other, 1);
  odd.join();
  writer.flush();

  sqlite3* database = nullptr;
  ASSERT_EQ(sqlite3_open_v2((directory_ / "keystore.db").c_str(), &database,
                            SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(database, "SELECT time, request_id FROM ledger ORDER BY id", -1,
                               &statement, nullptr),
            SQLITE_OK);
  std::vector<int64_t> times;
  std::vector<std::string> request_ids;
  while (sqlite3_step(statement) == SQLITE_ROW) {
    times.push_back(sqlite3_column_int64(statement, 0));
    request_ids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(statement, 1)));
  }
  sqlite3_finalize(statement);
  sqlite3_close(database);

  std::vector<int64_t> expected_times;
  std::vector<std::string> expected_ids;
  for (int i = 0; i < 400; ++i) {
    expected_times.push_back(row(i).time);
    expected_ids.push_back(row(i).request_id);
  }
  EXPECT_EQ(times, expected_times);
  EXPECT_EQ(request_ids, expected_ids);
}

}  // namespace
}  // namespace keystore::metering
