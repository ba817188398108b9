// SQLite-specific behaviour of the store: pragmas, file permissions, schema migrations and
// concurrent use of one store. The behaviour shared with other implementations is tested in
// store_contract_test.cc.
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/migrations.h"

// Records are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::store {
namespace {

using sqlite::Connection;
using sqlite::Migration;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sqlite-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    path_ = (directory_ / "keystore.db").string();
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  std::unique_ptr<Store> openStore() {
    auto opened = openSqliteStore(path_);
    EXPECT_TRUE(opened.has_value()) << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }

  // Runs `sql` on a separate raw connection and returns column `column` of each row.
  std::vector<std::string> rawQuery(const std::string& sql, int column = 0) {
    sqlite3* db = nullptr;
    std::vector<std::string> values;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, column);
      values.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return values;
  }

  std::unique_ptr<Connection> openConnection() {
    auto connection = Connection::open(path_);
    EXPECT_TRUE(connection.has_value()) << connection.error().message;
    return connection ? std::move(*connection) : nullptr;
  }

  std::filesystem::path directory_;
  std::string path_;
};

TEST_F(SqliteStoreTest, OpenEnablesWalMode) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);

  EXPECT_EQ(rawQuery("PRAGMA journal_mode"), (std::vector<std::string>{"wal"}));
}

TEST_F(SqliteStoreTest, NewDatabaseUsesLargePages) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);

  EXPECT_EQ(rawQuery("PRAGMA page_size"), (std::vector<std::string>{"16384"}));
}

TEST_F(SqliteStoreTest, ExistingDatabaseKeepsItsPageSize) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE earlier (id INTEGER)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_EQ(rawQuery("PRAGMA page_size"), (std::vector<std::string>{"4096"}));

  auto store = openStore();
  ASSERT_NE(store, nullptr);

  EXPECT_EQ(rawQuery("PRAGMA page_size"), (std::vector<std::string>{"4096"}));
  EXPECT_EQ(rawQuery("PRAGMA journal_mode"), (std::vector<std::string>{"wal"}));
}

TEST_F(SqliteStoreTest, DatabaseFileIsPrivate) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);

  // The -wal file exists while the store is open because the migrations wrote to it.
  for (const std::string& file : {path_, path_ + "-wal"}) {
    struct stat info {};
    ASSERT_EQ(::stat(file.c_str(), &info), 0) << file;
    EXPECT_EQ(info.st_mode & 0777, 0600u) << file;
  }
}

TEST_F(SqliteStoreTest, InMemoryDatabaseOpens) {
  auto opened = openSqliteStore(":memory:");
  ASSERT_TRUE(opened.has_value()) << opened.error().message;

  auto organization = (*opened)->createOrganization(Organization{.id = "org", .name = "Acme"});
  EXPECT_TRUE(organization.has_value()) << organization.error().message;
}

TEST_F(SqliteStoreTest, MigrationsAppliedOnceAcrossReopen) {
  const size_t latest = sqlite::sqliteMigrations().size();
  ASSERT_GE(latest, 1u);

  openStore().reset();
  std::vector<std::string> first = rawQuery(
      "SELECT version || ':' || applied_at "
      "FROM schema_migrations ORDER BY version");
  ASSERT_EQ(first.size(), latest);
  EXPECT_EQ(first.front().substr(0, 2), "1:");

  openStore().reset();
  openStore().reset();
  EXPECT_EQ(rawQuery("SELECT version || ':' || applied_at "
                     "FROM schema_migrations ORDER BY version"),
            first);
}

TEST_F(SqliteStoreTest, NewerSchemaVersionRejected) {
  openStore().reset();
  const int newer = static_cast<int>(sqlite::sqliteMigrations().size()) + 1;
  rawQuery("INSERT INTO schema_migrations (version, applied_at) VALUES (" + std::to_string(newer) +
           ", 0)");

  auto opened = openSqliteStore(path_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kInternal);
  EXPECT_NE(
      opened.error().message.find("schema version " + std::to_string(newer) + " is newer than"),
      std::string::npos)
      << opened.error().message;
}

TEST_F(SqliteStoreTest, FailedMigrationKeepsEarlierOnes) {
  const std::array broken = {
      Migration{1, "CREATE TABLE first (id INTEGER);"},
      Migration{2, "CREATE TABLE second (id INTEGER); INSERT INTO missing VALUES (1);"},
  };
  auto connection = openConnection();
  ASSERT_NE(connection, nullptr);

  auto applied = sqlite::applyMigrations(*connection, broken);
  ASSERT_FALSE(applied.has_value());
  EXPECT_EQ(applied.error().code, ErrorCode::kInternal);
  EXPECT_NE(applied.error().message.find("schema migration 2 failed"), std::string::npos)
      << applied.error().message;
  EXPECT_EQ(rawQuery("SELECT version FROM schema_migrations"), (std::vector<std::string>{"1"}));
  EXPECT_EQ(rawQuery("SELECT name FROM sqlite_schema WHERE name IN ('first', 'second')"),
            (std::vector<std::string>{"first"}));

  const std::array fixed = {
      Migration{1, "CREATE TABLE first (id INTEGER);"},
      Migration{2, "CREATE TABLE second (id INTEGER);"},
  };
  auto repaired = sqlite::applyMigrations(*connection, fixed);
  ASSERT_TRUE(repaired.has_value()) << repaired.error().message;
  EXPECT_EQ(*repaired, 2);
  EXPECT_EQ(rawQuery("SELECT version FROM schema_migrations ORDER BY version"),
            (std::vector<std::string>{"1", "2"}));
}

TEST_F(SqliteStoreTest, MigrationListWithGapRejected) {
  const std::array gapped = {
      Migration{1, "CREATE TABLE first (id INTEGER);"},
      Migration{3, "CREATE TABLE third (id INTEGER);"},
  };
  auto connection = openConnection();
  ASSERT_NE(connection, nullptr);

  auto applied = sqlite::applyMigrations(*connection, gapped);
  ASSERT_FALSE(applied.has_value());
  EXPECT_EQ(applied.error().code, ErrorCode::kInternal);
  EXPECT_TRUE(rawQuery("SELECT name FROM sqlite_schema WHERE name = 'first'").empty());
}

TEST_F(SqliteStoreTest, MigrationFromVersionOneKeepsTokens) {
  // A database as a keystore release with only the initial schema left it, with one token.
  {
    auto connection = openConnection();
    ASSERT_NE(connection, nullptr);
    auto applied = sqlite::applyMigrations(*connection, sqlite::sqliteMigrations().first(1));
    ASSERT_TRUE(applied.has_value()) << applied.error().message;
    ASSERT_EQ(*applied, 1);
    auto inserted = connection->exec(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org', 'Acme', 1);"
        "INSERT INTO projects (id, organization_id, name, created_at) "
        "VALUES ('p1', 'org', 'alpha', 1);"
        "INSERT INTO agents (id, project_id, name, status, created_at) "
        "VALUES ('a1', 'p1', 'bot', 'active', 1);"
        "INSERT INTO agent_tokens (id, agent_id, project_id, token_hash, scopes, created_at) "
        "VALUES ('old', 'a1', 'p1', '" +
        std::string(64, 'a') + "', '[\"provider:openai:*\"]', 1);");
    ASSERT_TRUE(inserted.has_value()) << inserted.error().message;
  }

  auto store = openStore();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> every_version;
  for (const Migration& migration : sqlite::sqliteMigrations()) {
    every_version.push_back(std::to_string(migration.version));
  }
  ASSERT_EQ(every_version.size(), 9u);
  EXPECT_EQ(rawQuery("SELECT version FROM schema_migrations ORDER BY version"), every_version);

  auto old_token = store->getToken("old");
  ASSERT_TRUE(old_token.has_value()) << old_token.error().message;
  EXPECT_EQ(old_token->scopes, (std::vector<std::string>{"provider:openai:*"}));
  EXPECT_TRUE(old_token->models.empty());
  EXPECT_EQ(rawQuery("SELECT models FROM agent_tokens WHERE id = 'old'"),
            (std::vector<std::string>{"[]"}));

  auto created = store->createToken(AgentToken{.id = "new",
                                               .agent_id = "a1",
                                               .token_hash = std::string(64, 'b'),
                                               .models = {"gpt-4o-mini"}});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(rawQuery("SELECT models FROM agent_tokens WHERE id = 'new'"),
            (std::vector<std::string>{R"(["gpt-4o-mini"])"}));
}

TEST_F(SqliteStoreTest, MigrationToPoolsKeepsKeysAndCredentials) {
  // A database as a release with schema version 2 left it: a project with its data key and
  // a BYOK credential, and two owner keys of which the older one was created first.
  {
    auto connection = openConnection();
    ASSERT_NE(connection, nullptr);
    auto applied = sqlite::applyMigrations(*connection, sqlite::sqliteMigrations().first(2));
    ASSERT_TRUE(applied.has_value()) << applied.error().message;
    auto inserted = connection->exec(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org', 'Acme', 1);"
        "INSERT INTO projects (id, organization_id, name, created_at) "
        "VALUES ('p1', 'org', 'alpha', 1);"
        "INSERT INTO data_keys (key_id, project_id, master_key_id, wrapped, created_at) "
        "VALUES ('k1', 'p1', 'mk', x'0102', 1);"
        "INSERT INTO credentials (id, project_id, provider, scope, status, label, mask, "
        "fingerprint, data_key_id, ciphertext, created_at) "
        "VALUES ('c1', 'p1', 'openai', 'byok', 'active', '', 'sk-...1234', 'ab', 'k1', x'03', 2);"
        "INSERT INTO admin_keys (id, key_hash, name, role, organization_id, created_at) VALUES "
        "('second', '" +
        std::string(64, 'b') + "', 'later', 'owner', 'org', 5), ('first', '" +
        std::string(64, 'a') + "', 'bootstrap', 'owner', 'org', 3);");
    ASSERT_TRUE(inserted.has_value()) << inserted.error().message;
  }

  auto store = openStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(rawQuery("SELECT key_id || ':' || project_id FROM data_keys"),
            (std::vector<std::string>{"k1:p1"}));
  auto credentials = store->listCredentials("p1");
  ASSERT_TRUE(credentials.has_value()) << credentials.error().message;
  ASSERT_EQ(credentials->size(), 1u);
  EXPECT_EQ((*credentials)[0].data_key_id, "k1");
  EXPECT_EQ((*credentials)[0].rpm_limit, 0);
  EXPECT_EQ(rawQuery("SELECT id || ':' || operator FROM admin_keys ORDER BY id"),
            (std::vector<std::string>{"first:1", "second:0"}));
  // The rebuilt data_keys table is what credentials reference, with nothing dangling.
  EXPECT_TRUE(rawQuery("PRAGMA foreign_key_check").empty());
  auto project_keys = rawQuery("SELECT \"table\" FROM pragma_foreign_key_list('credentials')");
  EXPECT_NE(std::find(project_keys.begin(), project_keys.end(), "data_keys"), project_keys.end());
}

TEST_F(SqliteStoreTest, MigrationToMeteringKeepsOldRowsReadable) {
  // A database as schema version 3 left it: an agent with a rate limit and a ledger row.
  {
    auto connection = openConnection();
    ASSERT_NE(connection, nullptr);
    auto applied = sqlite::applyMigrations(*connection, sqlite::sqliteMigrations().first(3));
    ASSERT_TRUE(applied.has_value()) << applied.error().message;
    auto inserted = connection->exec(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org', 'Acme', 1);"
        "INSERT INTO projects (id, organization_id, name, created_at) "
        "VALUES ('p1', 'org', 'alpha', 1);"
        "INSERT INTO agents (id, project_id, name, status, rpm_limit, created_at) "
        "VALUES ('a1', 'p1', 'bot', 'active', 7, 1);"
        "INSERT INTO ledger (time, request_id, project_id, agent_id, token_id, provider, mode, "
        "method, path, upstream_status, outcome, bytes_in, bytes_out, latency_ms, "
        "credential_id) VALUES (5, 'old', 'p1', 'a1', 't1', 'openai', 'marketplace', 'POST', "
        "'/v1/chat/completions', 200, 'ok', 1, 2, 3, 'c1');");
    ASSERT_TRUE(inserted.has_value()) << inserted.error().message;
  }

  auto store = openStore();
  ASSERT_NE(store, nullptr);
  auto rows = store->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  const LedgerRow& row = rows->front();
  EXPECT_EQ(row.request_id, "old");
  EXPECT_EQ(row.credential_id, "c1");
  EXPECT_EQ(row.model, "");
  EXPECT_EQ(row.units, UnitCounts{});
  EXPECT_FALSE(row.usage_reported);
  EXPECT_EQ(row.prices, "");
  EXPECT_EQ(row.cost_micros, 0);
  EXPECT_FALSE(row.billable);

  auto agent = store->findAgent("p1", "a1");
  ASSERT_TRUE(agent.has_value()) << agent.error().message;
  EXPECT_EQ(agent->rpm_limit, std::optional<int64_t>(7));
  EXPECT_EQ(agent->tpm_limit, std::nullopt);
  EXPECT_EQ(agent->budget_cents, std::nullopt);
  auto limits = store->getProjectLimits("p1");
  ASSERT_TRUE(limits.has_value()) << limits.error().message;
  EXPECT_EQ(*limits, ProjectLimits{.project_id = "p1"});

  // Rows written before metering cost nothing, so they add no spend entry.
  auto spend = store->monthSpend(0, 10);
  ASSERT_TRUE(spend.has_value()) << spend.error().message;
  EXPECT_EQ(spend->by_project.count("p1"), 0u);
}

TEST_F(SqliteStoreTest, ReportsUseProjectTimeIndex) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);

  // The query texts that usageReport and invoice run, in the form SQLite plans them.
  for (const std::string& sql :
       {std::string("SELECT provider, count(*), sum(cost_micros) FROM ledger "
                    "WHERE time >= 0 AND project_id = 'p1' AND time < 10 GROUP BY provider"),
        std::string("SELECT provider, model, billable, prices, sum(input_tokens) FROM ledger "
                    "WHERE project_id = 'p1' AND time >= 0 AND time < 10 AND prices <> '' "
                    "GROUP BY provider, model, billable, prices")}) {
    // Column 3 of EXPLAIN QUERY PLAN is the step's description.
    std::vector<std::string> plan = rawQuery("EXPLAIN QUERY PLAN " + sql, 3);
    std::string joined;
    for (const std::string& step : plan) {
      joined += step + "\n";
    }
    EXPECT_NE(joined.find("ledger_project_time"), std::string::npos) << joined;
  }
}

TEST_F(SqliteStoreTest, MalformedStoredModelsRejected) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->createOrganization(Organization{.id = "org", .name = "Acme"}));
  ASSERT_TRUE(store->createProject(Project{.id = "p1", .organization_id = "org", .name = "alpha"},
                                   DataKey{.key_id = "k1", .master_key_id = "mk", .wrapped = "w"}));
  ASSERT_TRUE(store->createAgent(Agent{.id = "a1", .project_id = "p1", .name = "bot"}));
  ASSERT_TRUE(store->createToken(
      AgentToken{.id = "t1", .agent_id = "a1", .token_hash = std::string(64, 'c')}));

  // A token whose restriction cannot be read must not load as an unrestricted one.
  rawQuery("UPDATE agent_tokens SET models = '{\"model\": 1}' WHERE id = 't1'");
  auto token = store->getToken("t1");
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kInternal);
  EXPECT_EQ(token.error().message, "token 't1' has malformed models in the database");
}

TEST_F(SqliteStoreTest, ForeignKeysEnforced) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);

  // The store checks parents itself; insert directly to see that SQLite enforces them too.
  auto connection = openConnection();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->exec("PRAGMA foreign_keys = ON"));
  auto inserted = connection->run(
      "INSERT INTO projects (id, organization_id, name, created_at) VALUES ('p', 'none', 'n', 1)");
  ASSERT_FALSE(inserted.has_value());
  EXPECT_EQ(inserted.error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, ConcurrentWritersAllSucceed) {
  auto store = openStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->createOrganization(Organization{.id = "org", .name = "Acme"}));
  ASSERT_TRUE(store->createProject(Project{.id = "p1", .organization_id = "org", .name = "alpha"},
                                   DataKey{.key_id = "k1", .master_key_id = "mk", .wrapped = "w"}));

  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        std::string suffix = std::to_string(t) + "-" + std::to_string(i);
        auto agent = store->createAgent(
            Agent{.id = "a" + suffix, .project_id = "p1", .name = "bot" + suffix});
        auto ledger = store->appendLedger(
            {LedgerRow{.time = i, .request_id = "r" + suffix, .project_id = "p1"}});
        auto generation = store->configGeneration();
        failures[t] += !agent.has_value() + !ledger.has_value() + !generation.has_value();
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
  auto agents = store->listAgents("p1");
  ASSERT_TRUE(agents.has_value()) << agents.error().message;
  EXPECT_EQ(agents->size(), static_cast<size_t>(kThreads * kWritesPerThread));
  auto rows = store->queryLedger(LedgerQuery{.project_id = "p1", .limit = 10'000});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_EQ(rows->size(), static_cast<size_t>(kThreads * kWritesPerThread));
}

}  // namespace
}  // namespace keystore::store
