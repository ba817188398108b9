// The SQLite store's audit trail: appending under concurrency, transactions that join
// inTransaction(), and tampering with the database file behind the store's back.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_chain.h"
#include "audit/audit_log.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

class AuditStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "audit-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    path_ = (directory_ / "keystore.db").string();
    store_ = openStore();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  std::unique_ptr<Store> openStore() {
    auto opened = openSqliteStore(path_);
    EXPECT_TRUE(opened.has_value()) << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }

  static AuditEntry entryFor(const std::string& action, const std::string& target) {
    AuditEntry entry;
    entry.organization_id = "org_test";
    entry.actor = "ksak_test";
    entry.actor_kind = "admin_key";
    entry.action = action;
    entry.target = target;
    entry.source_address = "127.0.0.1";
    entry.request_id = "req_" + target;
    entry.details = R"({"status":"paused"})";
    return entry;
  }

  void appendEntries(int count) {
    for (int i = 1; i <= count; ++i) {
      auto appended = store_->appendAudit(entryFor("agent.status", "agt_" + std::to_string(i)));
      ASSERT_TRUE(appended.has_value()) << appended.error().message;
    }
  }

  // Runs `sql` on a separate connection, as someone editing the file would; returns
  // SQLite's result code.
  int rawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
  }

  // Drops the append-only triggers first, as anyone with write access to the file can.
  void tamper(const std::string& sql) {
    ASSERT_EQ(rawExec("DROP TRIGGER audit_entries_no_update; "
                      "DROP TRIGGER audit_entries_no_delete; " +
                      sql),
              SQLITE_OK);
  }

  audit::ChainReport verify() {
    auto report = audit::verifyStoredChain(*store_, 2);
    EXPECT_TRUE(report.has_value()) << report.error().message;
    return report ? *report : audit::ChainReport{};
  }

  std::filesystem::path directory_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditStoreTest, AppendFillsChainFields) {
  auto first = store_->appendAudit(entryFor("token.mint", "tok_1"));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto second = store_->appendAudit(entryFor("token.revoke", "tok_1"));
  ASSERT_TRUE(second.has_value()) << second.error().message;

  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(second->seq, 2);
  EXPECT_TRUE(first->id.starts_with("aud_"));
  EXPECT_GT(first->time, 0);
  EXPECT_EQ(first->prev_hash, audit::kGenesisHash);
  EXPECT_EQ(first->hash, audit::entryHash(*first, audit::kGenesisHash));
  EXPECT_EQ(second->prev_hash, first->hash);
  EXPECT_EQ(second->hash, audit::entryHash(*second, first->hash));
}

TEST_F(AuditStoreTest, AppendRejectsMissingFields) {
  AuditEntry no_action = entryFor("", "tok_1");
  EXPECT_EQ(store_->appendAudit(no_action).error().code, ErrorCode::kInvalidRequest);
  AuditEntry no_organization = entryFor("token.mint", "tok_1");
  no_organization.organization_id = "";
  EXPECT_EQ(store_->appendAudit(no_organization).error().code, ErrorCode::kInvalidRequest);
  AuditEntry bad_details = entryFor("token.mint", "tok_1");
  bad_details.details = "[1]";
  EXPECT_EQ(store_->appendAudit(bad_details).error().code, ErrorCode::kInvalidRequest);

  auto chain = store_->readAuditChain(0, 10);
  ASSERT_TRUE(chain.has_value());
  EXPECT_TRUE(chain->empty());
}

TEST_F(AuditStoreTest, ConcurrentAppendsStayLinear) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  // Two stores on one file stand for two instances sharing a database.
  std::unique_ptr<Store> second_store = openStore();
  ASSERT_NE(second_store, nullptr);

  std::vector<std::thread> threads;
  std::atomic<int> failures = 0;
  for (int t = 0; t < kThreads; ++t) {
    Store& store = t % 2 == 0 ? *store_ : *second_store;
    threads.emplace_back([&store, &failures, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string target = "agt_" + std::to_string(t) + "_" + std::to_string(i);
        if (!store.appendAudit(entryFor("agent.status", target))) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  ASSERT_EQ(failures.load(), 0);

  auto chain = store_->readAuditChain(0, 1000);
  ASSERT_TRUE(chain.has_value());
  ASSERT_EQ(chain->size(), static_cast<size_t>(kThreads * kPerThread));
  std::string prev(audit::kGenesisHash);
  for (size_t i = 0; i < chain->size(); ++i) {
    EXPECT_EQ((*chain)[i].seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ((*chain)[i].prev_hash, prev) << "seq " << (*chain)[i].seq;
    prev = (*chain)[i].hash;
  }
  audit::ChainReport report = verify();
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.entries, kThreads * kPerThread);
}

TEST_F(AuditStoreTest, TransactionCommitsJoinedWrites) {
  auto committed = store_->inTransaction([&]() -> Result<void> {
    if (auto put = store_->putSetting("audit_test", "kept"); !put) {
      return put;
    }
    auto appended = store_->appendAudit(entryFor("setting.change", "audit_test"));
    if (!appended) {
      return std::unexpected(appended.error());
    }
    return {};
  });
  ASSERT_TRUE(committed.has_value()) << committed.error().message;

  auto setting = store_->getSetting("audit_test");
  ASSERT_TRUE(setting.has_value());
  EXPECT_EQ(setting->value_or(""), "kept");
  auto chain = store_->readAuditChain(0, 10);
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(chain->size(), 1u);
}

TEST_F(AuditStoreTest, FailedAuditAppendRollsBackChange) {
  auto result = store_->inTransaction([&]() -> Result<void> {
    if (auto put = store_->putSetting("audit_test", "lost"); !put) {
      return put;
    }
    auto appended = store_->appendAudit(entryFor("", "audit_test"));
    if (!appended) {
      return std::unexpected(appended.error());
    }
    return {};
  });
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest);

  auto setting = store_->getSetting("audit_test");
  ASSERT_TRUE(setting.has_value());
  EXPECT_FALSE(setting->has_value());
  auto chain = store_->readAuditChain(0, 10);
  ASSERT_TRUE(chain.has_value());
  EXPECT_TRUE(chain->empty());
}

TEST_F(AuditStoreTest, FailedNestedCallKeepsOtherWrites) {
  auto committed = store_->inTransaction([&]() -> Result<void> {
    if (auto put = store_->putSetting("audit_test", "kept"); !put) {
      return put;
    }
    // A failed call inside the transaction undoes only itself; the body decides the rest.
    EXPECT_FALSE(store_->appendAudit(entryFor("", "x")).has_value());
    auto appended = store_->appendAudit(entryFor("setting.change", "audit_test"));
    if (!appended) {
      return std::unexpected(appended.error());
    }
    return {};
  });
  ASSERT_TRUE(committed.has_value()) << committed.error().message;
  auto setting = store_->getSetting("audit_test");
  ASSERT_TRUE(setting.has_value());
  EXPECT_EQ(setting->value_or(""), "kept");
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditStoreTest, OtherThreadWaitsForTransaction) {
  std::atomic<bool> other_done = false;
  std::thread other;
  auto committed = store_->inTransaction([&]() -> Result<void> {
    other = std::thread([&] {
      (void)store_->appendAudit(entryFor("agent.status", "agt_other"));
      other_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(other_done.load());
    auto appended = store_->appendAudit(entryFor("agent.status", "agt_first"));
    return appended ? Result<void>{} : std::unexpected(appended.error());
  });
  other.join();
  ASSERT_TRUE(committed.has_value());

  auto chain = store_->readAuditChain(0, 10);
  ASSERT_TRUE(chain.has_value());
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[0].target, "agt_first");
  EXPECT_EQ((*chain)[1].target, "agt_other");
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditStoreTest, TriggersRejectUpdateAndDelete) {
  appendEntries(2);
  EXPECT_NE(rawExec("UPDATE audit_entries SET details = '{}' WHERE seq = 1"), SQLITE_OK);
  EXPECT_NE(rawExec("DELETE FROM audit_entries WHERE seq = 1"), SQLITE_OK);
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditStoreTest, TamperEditedDetailsDetected) {
  appendEntries(5);
  tamper(R"(UPDATE audit_entries SET details = '{"status":"active"}' WHERE seq = 3)");
  audit::ChainReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_EQ(report.problem, "edited");
}

TEST_F(AuditStoreTest, TamperRemovedEntryDetected) {
  appendEntries(5);
  tamper("DELETE FROM audit_entries WHERE seq = 3");
  audit::ChainReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.entries, 4);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_EQ(report.problem, "removed");
}

TEST_F(AuditStoreTest, TamperSwappedEntriesDetected) {
  appendEntries(5);
  // Moves entry 2 to seq 3 and entry 3 to seq 2, through a free seq.
  tamper(
      "UPDATE audit_entries SET seq = 100 WHERE seq = 2; "
      "UPDATE audit_entries SET seq = 2 WHERE seq = 3; "
      "UPDATE audit_entries SET seq = 3 WHERE seq = 100;");
  audit::ChainReport report = verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 2);
  EXPECT_EQ(report.problem, "reordered");
}

TEST_F(AuditStoreTest, ListFiltersAndPages) {
  AuditEntry other_org = entryFor("token.mint", "tok_other");
  other_org.organization_id = "org_other";
  ASSERT_TRUE(store_->appendAudit(other_org).has_value());
  appendEntries(3);
  AuditEntry revoke = entryFor("token.revoke", "tok_9");
  revoke.project_id = "prj_9";
  ASSERT_TRUE(store_->appendAudit(revoke).has_value());

  AuditQuery query;
  query.organization_id = "org_test";
  query.limit = 3;
  auto page = store_->listAudit(query);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].seq, 5);
  EXPECT_EQ((*page)[2].seq, 3);

  query.before_seq = (*page)[2].seq;
  auto next = store_->listAudit(query);
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].seq, 2);

  AuditQuery by_action;
  by_action.organization_id = "org_test";
  by_action.action = "token.revoke";
  auto revokes = store_->listAudit(by_action);
  ASSERT_TRUE(revokes.has_value());
  ASSERT_EQ(revokes->size(), 1u);
  EXPECT_EQ((*revokes)[0].target, "tok_9");

  AuditQuery by_project;
  by_project.organization_id = "org_test";
  by_project.project_id = "prj_9";
  auto in_project = store_->listAudit(by_project);
  ASSERT_TRUE(in_project.has_value());
  EXPECT_EQ(in_project->size(), 1u);

  AuditQuery zero_limit;
  zero_limit.limit = 0;
  EXPECT_EQ(store_->listAudit(zero_limit).error().code, ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace keystore::store
