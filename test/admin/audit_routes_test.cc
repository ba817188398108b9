// The audit trail through the management API: one entry per successful change with the right
// action, actor, target and request, nothing for reads and failures, no secrets, atomic
// rollback, and the list and verify routes.
#include <sqlite3.h>

#include <set>

#include "admin/audit_actions.h"
#include "admin_fixture.h"

namespace keystore::admin {
namespace {

constexpr std::string_view kByokKey = "sk-test-AUDIT-BYOK-0001";
constexpr std::string_view kPoolKey = "sk-test-AUDIT-POOL-0002";

class AuditRoutesTest : public AdminApiTest {
 protected:
  std::vector<store::AuditEntry> chain() {
    auto entries = store_->readAuditChain(0, 10000);
    EXPECT_TRUE(entries.has_value());
    return entries ? *entries : std::vector<store::AuditEntry>{};
  }

  std::string keyId(const std::string& key) {
    auto found = store_->findAdminKeyByHash(tokens::hashToken(key));
    EXPECT_TRUE(found.has_value());
    EXPECT_TRUE(found && found->has_value()) << "the key was stored";
    return found && *found ? (*found)->id : "";
  }

  // Makes one call and returns the single entry it wrote; fails the test unless exactly one
  // was written.
  store::AuditEntry expectOneEntry(const CallResult& result, int expected_status) {
    EXPECT_EQ(result.response.status, expected_status) << result.response.body;
    std::vector<store::AuditEntry> entries = chain();
    EXPECT_EQ(entries.size(), entries_before_ + 1) << result.response.body;
    entries_before_ = entries.size();
    return entries.empty() ? store::AuditEntry{} : entries.back();
  }

  void expectNoEntry() { EXPECT_EQ(chain().size(), entries_before_); }

  // Adds a trigger that makes every audit append fail, as a full or broken audit table would.
  void breakAuditTable() {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((directory_ / "keystore.db").c_str(), &db), SQLITE_OK);
    int rc = sqlite3_exec(db,
                          "CREATE TRIGGER audit_test_fail BEFORE INSERT ON audit_entries "
                          "BEGIN SELECT RAISE(ABORT, 'audit table unavailable'); END;",
                          nullptr, nullptr, nullptr);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK);
  }

  size_t entries_before_ = 0;
};

TEST_F(AuditRoutesTest, EveryMutatingRouteHasAction) {
  std::set<std::pair<std::string, std::string>> mutating;
  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    // Sign-in and sign-out need no key; their handlers write their own entries.
    if (route.method == "GET" || route.method == "HEAD" || !route.needs_key) {
      continue;
    }
    mutating.emplace(route.method, route.path);
    EXPECT_NE(findAuditAction(route.method, route.path), nullptr)
        << route.method << " " << route.path << " has no audit action";
  }
  // Every action names a mutating route, so a renamed route cannot leave a dead entry.
  for (const AuditAction& action : auditActions()) {
    EXPECT_EQ(mutating.count({std::string(action.method), std::string(action.path)}), 1u)
        << action.method << " " << action.path;
    EXPECT_EQ(action.detail_fields.find("token,"), std::string_view::npos);
    for (std::string_view secret_field : {"key", "token", "api_key", "credential"}) {
      std::string list = "," + std::string(action.detail_fields) + ",";
      EXPECT_EQ(list.find("," + std::string(secret_field) + ","), std::string::npos)
          << action.path << " copies " << secret_field;
    }
  }
}

TEST_F(AuditRoutesTest, EachChangeWritesOneEntry) {
  const std::string actor = keyId(key_a_);
  const std::string operator_actor = keyId(operator_key_);

  store::AuditEntry created =
      expectOneEntry(call("POST", "/api/v1/projects", R"({"name":"demo"})"), 201);
  std::string project = created.target;
  EXPECT_TRUE(project.starts_with("prj_")) << project;
  EXPECT_EQ(created.action, "project.create");
  EXPECT_EQ(created.project_id, project);
  EXPECT_EQ(created.organization_id, org_a_);
  EXPECT_EQ(created.actor, actor);
  EXPECT_EQ(created.actor_kind, "admin_key");
  EXPECT_EQ(created.request_id, "req_test");
  EXPECT_EQ(created.source_address, "127.0.0.1");
  EXPECT_EQ(created.details, R"({"request_fields":["name"],"name":"demo"})");

  store::AuditEntry key_write =
      expectOneEntry(call("PUT", "/api/v1/projects/demo/providers/openai/key",
                          boost::json::serialize(boost::json::object{{"api_key", kByokKey}})),
                     200);
  EXPECT_EQ(key_write.action, "credential.write");
  EXPECT_EQ(key_write.target, "openai");
  EXPECT_EQ(key_write.project_id, project);
  auto key_details = boost::json::parse(key_write.details).as_object();
  EXPECT_EQ(key_details.at("request_fields").as_array(), boost::json::array{"api_key"});
  EXPECT_EQ(key_details.at("key_fingerprint").as_string().size() > 0, true);
  EXPECT_FALSE(key_details.contains("key"));

  store::AuditEntry switched = expectOneEntry(
      call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"mode":"marketplace"})"), 200);
  EXPECT_EQ(switched.action, "provider.mode_switch");
  EXPECT_EQ(boost::json::parse(switched.details).at("mode").as_string(), "marketplace");

  store::AuditEntry rekeyed = expectOneEntry(
      call("PATCH", "/api/v1/projects/demo/providers/openai",
           boost::json::serialize(boost::json::object{{"api_key", kByokKey}, {"mode", "byok"}})),
      200);
  EXPECT_EQ(rekeyed.action, "credential.write");

  store::AuditEntry agent =
      expectOneEntry(call("POST", "/api/v1/projects/demo/agents", R"({"name":"bot"})"), 201);
  EXPECT_EQ(agent.action, "agent.create");
  EXPECT_TRUE(agent.target.starts_with("agt_"));
  EXPECT_EQ(agent.project_id, project);

  store::AuditEntry paused = expectOneEntry(
      call("PATCH", "/api/v1/agents/" + agent.target, R"({"status":"paused"})"), 200);
  EXPECT_EQ(paused.action, "agent.status");
  EXPECT_EQ(paused.target, agent.target);
  EXPECT_EQ(boost::json::parse(paused.details).at("status").as_string(), "paused");

  CallResult minted = call("POST", "/api/v1/agents/" + agent.target + "/tokens", "");
  std::string token_plaintext = minted.str("/token");
  ASSERT_TRUE(token_plaintext.starts_with("ks_"));
  store::AuditEntry mint = expectOneEntry(minted, 201);
  EXPECT_EQ(mint.action, "token.mint");
  EXPECT_EQ(mint.target, minted.str("/id"));
  EXPECT_EQ(mint.project_id, project);

  store::AuditEntry revoke = expectOneEntry(call("DELETE", "/api/v1/tokens/" + mint.target), 200);
  EXPECT_EQ(revoke.action, "token.revoke");
  EXPECT_EQ(revoke.target, mint.target);

  store::AuditEntry pool = expectOneEntry(
      callAsOperator(
          "POST", "/api/v1/pools/openai/credentials",
          boost::json::serialize(boost::json::object{{"api_key", kPoolKey}, {"scope", "shared"}})),
      201);
  EXPECT_EQ(pool.action, "pool.credential_add");
  EXPECT_EQ(pool.actor, operator_actor);
  EXPECT_EQ(pool.project_id, "");
  EXPECT_EQ(pool.organization_id, org_a_);

  store::AuditEntry price = expectOneEntry(
      callAsOperator("POST", "/api/v1/prices",
                     R"({"provider":"openai","unit":"input_tokens","usd_per_million":"0.15"})"),
      201);
  EXPECT_EQ(price.action, "price.set");
  EXPECT_FALSE(price.target.empty());

  CallResult new_key = call("POST", "/api/v1/admin-keys", R"({"name":"ci","role":"viewer"})");
  std::string admin_plaintext = new_key.str("/key");
  ASSERT_TRUE(admin_plaintext.starts_with("ksa_"));
  store::AuditEntry key_created = expectOneEntry(new_key, 201);
  EXPECT_EQ(key_created.action, "admin_key.create");
  EXPECT_EQ(boost::json::parse(key_created.details).at("role").as_string(), "viewer");

  store::AuditEntry key_revoked =
      expectOneEntry(call("DELETE", "/api/v1/admin-keys/" + key_created.target), 200);
  EXPECT_EQ(key_revoked.action, "admin_key.revoke");

  // No entry carries any secret that was sent or returned.
  for (const store::AuditEntry& entry : chain()) {
    std::string all = entry.details + entry.target + entry.action;
    for (std::string_view secret :
         {std::string_view(kByokKey), std::string_view(kPoolKey), std::string_view(token_plaintext),
          std::string_view(admin_plaintext)}) {
      EXPECT_EQ(all.find(secret), std::string::npos) << entry.action << " " << entry.details;
    }
  }
  auto verified = callAsOperator("GET", "/api/v1/audit/verify");
  EXPECT_EQ(verified.response.body,
            R"({"ok":true,"entries":)" + std::to_string(chain().size()) + "}");
}

TEST_F(AuditRoutesTest, ConciergeFulfilBelongsToProjectOrganization) {
  CallResult project = callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"tenant-b"})");
  ASSERT_EQ(project.response.status, 201);
  CallResult filed =
      callWithKey(key_b_, "POST", "/api/v1/projects/tenant-b/concierge", R"({"provider":"groq"})");
  ASSERT_EQ(filed.response.status, 201) << filed.response.body;
  entries_before_ = chain().size();

  store::AuditEntry fulfilled =
      expectOneEntry(callAsOperator("POST", "/api/v1/concierge/" + filed.str("/id") + "/fulfill",
                                    R"({"api_key":"gsk-test-AUDIT-0003"})"),
                     200);
  EXPECT_EQ(fulfilled.action, "concierge.fulfill");
  EXPECT_EQ(fulfilled.organization_id, org_b_);
  EXPECT_EQ(fulfilled.project_id, project.str("/id"));
  EXPECT_EQ(fulfilled.actor, keyId(operator_key_));
  EXPECT_EQ(fulfilled.details.find("gsk-test-AUDIT-0003"), std::string::npos);
}

TEST_F(AuditRoutesTest, ReadsAndFailuresWriteNothing) {
  createProject("demo");
  entries_before_ = chain().size();

  EXPECT_EQ(call("GET", "/api/v1/projects").response.status, 200);
  EXPECT_EQ(call("GET", "/api/v1/projects/demo/providers").response.status, 200);
  EXPECT_EQ(call("GET", "/api/v1/audit").response.status, 200);
  expectNoEntry();

  EXPECT_EQ(call("POST", "/api/v1/projects", R"({"name":"demo"})").response.status, 409);
  EXPECT_EQ(call("POST", "/api/v1/projects/demo/agents", R"({"name":""})").response.status, 400);
  EXPECT_EQ(call("DELETE", "/api/v1/tokens/tok_missing").response.status, 404);
  EXPECT_EQ(callWithKey(key_a_, "POST", "/api/v1/prices", "{}").response.status, 403);
  expectNoEntry();
}

TEST_F(AuditRoutesTest, FailedAppendRollsBackChange) {
  createProject("demo");
  int changes_before = config_changes_;
  breakAuditTable();

  CallResult result = call("POST", "/api/v1/projects/demo/agents", R"({"name":"bot"})");
  EXPECT_EQ(result.response.status, 500);
  EXPECT_EQ(result.errorCode(), "internal_error");
  EXPECT_NE(result.errorMessage().find("req_test"), std::string::npos) << result.errorMessage();

  auto projects = store_->listProjects(org_a_);
  ASSERT_TRUE(projects.has_value());
  ASSERT_EQ(projects->size(), 1u);
  auto agents = store_->listAgents(projects->front().id);
  ASSERT_TRUE(agents.has_value());
  EXPECT_TRUE(agents->empty());
  EXPECT_EQ(config_changes_, changes_before);
}

TEST_F(AuditRoutesTest, FailedAppendRollsBackTokenMint) {
  createProject("demo");
  std::string agent = createAgent("demo", "bot");
  breakAuditTable();

  CallResult result = call("POST", "/api/v1/agents/" + agent + "/tokens", "");
  EXPECT_EQ(result.response.status, 500);
  EXPECT_EQ(result.str("/token"), "");
  auto tokens = store_->listTokens(agent);
  ASSERT_TRUE(tokens.has_value());
  EXPECT_TRUE(tokens->empty());
}

TEST_F(AuditRoutesTest, ConfigChangeNotifiedAfterCommit) {
  createProject("demo");
  int before = config_changes_;
  createAgent("demo", "bot");
  EXPECT_EQ(config_changes_, before + 1);
}

TEST_F(AuditRoutesTest, ListIsOrganizationScoped) {
  createProject("demo");
  callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"tenant-b"})");

  CallResult own = call("GET", "/api/v1/audit");
  ASSERT_EQ(own.response.status, 200) << own.response.body;
  const auto& data = own.json.at("data").as_array();
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].at("action").as_string(), "project.create");
  EXPECT_EQ(data[0].at("organization_id").as_string(), org_a_);
  EXPECT_TRUE(own.json.at("next_cursor").is_null());

  CallResult other = callWithKey(key_b_, "GET", "/api/v1/audit");
  ASSERT_EQ(other.json.at("data").as_array().size(), 1u);
  EXPECT_EQ(other.json.at("data").as_array()[0].at("organization_id").as_string(), org_b_);
}

TEST_F(AuditRoutesTest, ListFiltersAndPaginates) {
  createProject("demo");
  createProject("other");
  std::string agent = createAgent("demo", "bot");
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(call("POST", "/api/v1/agents/" + agent + "/tokens", "").response.status, 201);
  }

  CallResult mints = call("GET", "/api/v1/audit?action=token.mint&limit=2");
  ASSERT_EQ(mints.response.status, 200) << mints.response.body;
  const auto& first_page = mints.json.at("data").as_array();
  ASSERT_EQ(first_page.size(), 2u);
  EXPECT_GT(first_page[0].at("seq").as_int64(), first_page[1].at("seq").as_int64());
  std::string cursor = mints.str("/next_cursor");
  ASSERT_EQ(cursor, std::to_string(first_page[1].at("seq").as_int64()));

  CallResult rest = call("GET", "/api/v1/audit?action=token.mint&limit=2&cursor=" + cursor);
  ASSERT_EQ(rest.json.at("data").as_array().size(), 1u);

  CallResult other = call("GET", "/api/v1/audit?project=other");
  ASSERT_EQ(other.json.at("data").as_array().size(), 1u);
  EXPECT_EQ(other.json.at("data").as_array()[0].at("action").as_string(), "project.create");

  CallResult future = call("GET", "/api/v1/audit?since=2999-01-01T00:00:00Z");
  EXPECT_TRUE(future.json.at("data").as_array().empty());

  EXPECT_EQ(call("GET", "/api/v1/audit?limit=0").response.status, 400);
  EXPECT_EQ(call("GET", "/api/v1/audit?cursor=abc").response.status, 400);
  EXPECT_EQ(callWithKey(key_b_, "GET", "/api/v1/audit?project=demo").response.status, 404);
}

TEST_F(AuditRoutesTest, VerifyDetailOnlyForOperators) {
  createProject("demo");
  CallResult full = callAsOperator("GET", "/api/v1/audit/verify");
  EXPECT_EQ(full.response.body, R"({"ok":true,"entries":1})");
  CallResult summary = callWithKey(key_b_, "GET", "/api/v1/audit/verify");
  EXPECT_EQ(summary.response.body, R"({"ok":true})");

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((directory_ / "keystore.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TRIGGER audit_entries_no_update; "
                         "UPDATE audit_entries SET actor = 'ksak_nobody' WHERE seq = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  CallResult broken = callAsOperator("GET", "/api/v1/audit/verify");
  EXPECT_EQ(broken.response.body,
            R"({"ok":false,"entries":1,"first_bad_seq":1,"problem":"edited"})");
  EXPECT_EQ(callWithKey(key_b_, "GET", "/api/v1/audit/verify").response.body, R"({"ok":false})");
}

}  // namespace
}  // namespace keystore::admin
