// Routing, authentication, tenant isolation, error bodies and projects.
#include <unistd.h>

#include "admin_fixture.h"

namespace keystore::admin {
namespace {

TEST_F(AdminApiTest, HealthzNeedsNoKey) {
  for (const char* path : {"/healthz", "/readyz"}) {
    CallResult result = callWithKey("", "GET", path);
    EXPECT_EQ(result.response.status, 200) << path;
    EXPECT_EQ(result.response.body, R"({"status":"ok"})") << path;
  }
}

TEST_F(AdminApiTest, UnknownRouteNotFound) {
  CallResult result = call("GET", "/api/v1/nothing");
  EXPECT_EQ(result.response.status, 404);
  EXPECT_EQ(result.errorCode(), "not_found");

  CallResult outside = call("GET", "/api/v2/projects");
  EXPECT_EQ(outside.response.status, 404);
}

TEST_F(AdminApiTest, WrongMethodListsAllow) {
  CallResult projects = call("DELETE", "/api/v1/projects");
  EXPECT_EQ(projects.response.status, 405);
  EXPECT_EQ(projects.errorCode(), "method_not_allowed");
  EXPECT_EQ(projects.header("Allow"), "GET, POST");

  CallResult key = call("GET", "/api/v1/projects/demo/providers/openai/key");
  EXPECT_EQ(key.response.status, 405);
  EXPECT_EQ(key.header("Allow"), "PUT, POST");

  CallResult token = call("PUT", "/api/v1/tokens/tok_x");
  EXPECT_EQ(token.response.status, 405);
  EXPECT_EQ(token.header("Allow"), "GET, PATCH, DELETE");
}

TEST_F(AdminApiTest, MissingKeyRejected) {
  CallResult result = callWithKey("", "GET", "/api/v1/projects");
  EXPECT_EQ(result.response.status, 401);
  EXPECT_EQ(result.errorCode(), "unauthenticated");
  EXPECT_EQ(result.header("WWW-Authenticate"), "Bearer");
}

TEST_F(AdminApiTest, WrongKeyRejected) {
  std::string unknown(tokens::generateAdminKey().reveal());
  CallResult result = callWithKey(unknown, "GET", "/api/v1/projects");
  EXPECT_EQ(result.response.status, 401);
  EXPECT_EQ(result.errorCode(), "unauthenticated");
  EXPECT_EQ(result.response.body.find(unknown), std::string::npos);

  CallResult agent_token =
      callWithKey(std::string(tokens::generateAgentToken().reveal()), "GET", "/api/v1/projects");
  EXPECT_EQ(agent_token.response.status, 401);
}

TEST_F(AdminApiTest, NonBearerSchemeRejected) {
  ApiRequest request;
  request.method = "GET";
  request.target = "/api/v1/projects";
  request.authorization = "Basic " + key_a_;
  request.request_id = "req_basic";
  ApiResponse response = api_->handle(request);
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.body.find(key_a_), std::string::npos);
}

TEST_F(AdminApiTest, BearerSchemeCaseInsensitive) {
  ApiRequest request;
  request.method = "GET";
  request.target = "/api/v1/projects";
  request.authorization = "bearer " + key_a_;
  EXPECT_EQ(api_->handle(request).status, 200);
}

TEST_F(AdminApiTest, RevokedKeyRejected) {
  std::string revoked = createAdminKey(org_a_, "owner", 0, nowUnixMillis() - 1000);
  CallResult result = callWithKey(revoked, "GET", "/api/v1/projects");
  EXPECT_EQ(result.response.status, 401);
  EXPECT_EQ(result.errorCode(), "unauthenticated");
  EXPECT_NE(result.errorMessage().find("revoked"), std::string::npos) << result.errorMessage();
}

TEST_F(AdminApiTest, ExpiredKeyRejected) {
  std::string expired = createAdminKey(org_a_, "owner", nowUnixMillis() - 1000);
  CallResult result = callWithKey(expired, "GET", "/api/v1/projects");
  EXPECT_EQ(result.response.status, 401);
  EXPECT_NE(result.errorMessage().find("expired"), std::string::npos) << result.errorMessage();
}

TEST_F(AdminApiTest, ViewerKeyCannotWrite) {
  std::string viewer = createAdminKey(org_a_, "viewer");
  CallResult write = callWithKey(viewer, "POST", "/api/v1/projects", R"({"name":"demo"})");
  EXPECT_EQ(write.response.status, 403);
  EXPECT_EQ(write.errorCode(), "forbidden");

  CallResult read = callWithKey(viewer, "GET", "/api/v1/projects");
  EXPECT_EQ(read.response.status, 200);
}

TEST_F(AdminApiTest, ErrorBodyShape) {
  CallResult result = call("GET", "/api/v1/projects/missing");
  ASSERT_EQ(result.response.status, 404);
  EXPECT_EQ(result.response.content_type, "application/json");
  ASSERT_TRUE(result.json.is_object());
  const boost::json::object& body = result.json.as_object();
  EXPECT_EQ(body.size(), 1u);
  ASSERT_TRUE(body.contains("error"));
  const boost::json::object& error = body.at("error").as_object();
  EXPECT_EQ(error.size(), 4u);
  EXPECT_EQ(error.at("type").as_string(), "keystore_error");
  EXPECT_EQ(error.at("code").as_string(), "not_found");
  EXPECT_EQ(error.at("message").as_string(), "project missing not found");
  EXPECT_EQ(error.at("request_id").as_string(), "req_test");
}

TEST_F(AdminApiTest, InvalidJsonRejected) {
  CallResult broken = call("POST", "/api/v1/projects", "{\"name\":");
  EXPECT_EQ(broken.response.status, 400);
  EXPECT_EQ(broken.errorCode(), "invalid_json");

  CallResult array = call("POST", "/api/v1/projects", "[]");
  EXPECT_EQ(array.response.status, 400);
  EXPECT_EQ(array.errorCode(), "invalid_request");
}

TEST_F(AdminApiTest, MissingOrIllTypedFieldNamed) {
  CallResult missing = call("POST", "/api/v1/projects", "{}");
  EXPECT_EQ(missing.response.status, 400);
  EXPECT_EQ(missing.errorCode(), "invalid_request");
  EXPECT_EQ(missing.errorMessage(), "\"name\" is required");

  CallResult number = call("POST", "/api/v1/projects", R"({"name":42})");
  EXPECT_EQ(number.response.status, 400);
  EXPECT_EQ(number.errorMessage(), "\"name\" must be a string");

  CallResult unknown = call("POST", "/api/v1/projects", R"({"name":"demo","color":"red"})");
  EXPECT_EQ(unknown.response.status, 400);
  EXPECT_NE(unknown.errorMessage().find("\"color\""), std::string::npos);
}

TEST_F(AdminApiTest, InvalidProjectNamesRejected) {
  for (const char* name : {"", "has space", "-leading", "prj_lookalike", "a/b"}) {
    CallResult result = call("POST", "/api/v1/projects",
                             boost::json::serialize(boost::json::object{{"name", name}}));
    EXPECT_EQ(result.response.status, 400) << name;
    EXPECT_EQ(result.errorCode(), "invalid_request") << name;
  }
  CallResult too_long =
      call("POST", "/api/v1/projects",
           boost::json::serialize(boost::json::object{{"name", std::string(65, 'a')}}));
  EXPECT_EQ(too_long.response.status, 400);
}

TEST_F(AdminApiTest, CreateProjectReturnsProject) {
  int64_t before = nowUnixMillis();
  CallResult result = call("POST", "/api/v1/projects", R"({"name":"demo"})");
  ASSERT_EQ(result.response.status, 201) << result.response.body;

  std::string id = result.str("/id");
  EXPECT_TRUE(id.starts_with("prj_")) << id;
  EXPECT_EQ(result.str("/name"), "demo");
  EXPECT_EQ(result.str("/organization_id"), org_a_);
  std::optional<int64_t> created_at = parseRfc3339(result.str("/created_at"));
  ASSERT_TRUE(created_at.has_value()) << result.str("/created_at");
  EXPECT_GE(*created_at, before);
}

TEST_F(AdminApiTest, CreateProjectStoresDataKey) {
  std::string id = createProject("demo");
  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value());
  ASSERT_EQ(keys->size(), 1u);
  const store::DataKey& key = keys->front();
  EXPECT_EQ(key.project_id, id);
  EXPECT_TRUE(key.key_id.starts_with("dk_")) << key.key_id;
  EXPECT_EQ(key.master_key_id, vault_->masterKeyId());
  auto unwrapped = vault_->unwrapDataKey(id, key.key_id, key.wrapped);
  ASSERT_TRUE(unwrapped.has_value()) << unwrapped.error().message;
  EXPECT_EQ(unwrapped->size(), 32u);
}

TEST_F(AdminApiTest, DuplicateProjectNameConflicts) {
  createProject("demo");
  CallResult again = call("POST", "/api/v1/projects", R"({"name":"demo"})");
  EXPECT_EQ(again.response.status, 409);
  EXPECT_EQ(again.errorCode(), "conflict");

  // Names are unique per organization only.
  CallResult other = callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"demo"})");
  EXPECT_EQ(other.response.status, 201) << other.response.body;
}

TEST_F(AdminApiTest, ProjectFoundByIdOrName) {
  std::string id = createProject("demo");
  CallResult by_id = call("GET", "/api/v1/projects/" + id);
  EXPECT_EQ(by_id.response.status, 200);
  EXPECT_EQ(by_id.str("/name"), "demo");

  CallResult by_name = call("GET", "/api/v1/projects/demo");
  EXPECT_EQ(by_name.response.status, 200);
  EXPECT_EQ(by_name.str("/id"), id);

  CallResult trailing_slash = call("GET", "/api/v1/projects/demo/");
  EXPECT_EQ(trailing_slash.response.status, 200);
}

TEST_F(AdminApiTest, ListProjectsReturnsDataArray) {
  createProject("one");
  createProject("two");
  CallResult result = call("GET", "/api/v1/projects");
  ASSERT_EQ(result.response.status, 200);
  const boost::json::array& data = result.json.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  std::set<std::string> names;
  for (const auto& project : data) {
    names.insert(std::string(project.at("name").as_string()));
  }
  EXPECT_EQ(names, (std::set<std::string>{"one", "two"}));
}

TEST_F(AdminApiTest, OtherOrganizationProjectNotFound) {
  std::string id = createProject("secret-project");
  std::string agent = createAgent(id, "worker");
  CallResult token = call("POST", "/api/v1/agents/" + agent + "/tokens", "{}");
  ASSERT_EQ(token.response.status, 201);
  std::string token_id = token.str("/id");

  const std::vector<std::pair<std::string, std::string>> probes = {
      {"GET", "/api/v1/projects/" + id},
      {"GET", "/api/v1/projects/secret-project"},
      {"GET", "/api/v1/projects/" + id + "/providers"},
      {"GET", "/api/v1/projects/" + id + "/providers/openai"},
      {"GET", "/api/v1/projects/" + id + "/agents"},
      {"GET", "/api/v1/projects/" + id + "/ledger"},
      {"GET", "/api/v1/agents/" + agent},
      {"GET", "/api/v1/agents/" + agent + "/tokens"},
      {"GET", "/api/v1/tokens/" + token_id},
      {"POST", "/api/v1/tokens/" + token_id + "/revoke"},
      {"DELETE", "/api/v1/tokens/" + token_id},
  };
  for (const auto& [method, target] : probes) {
    CallResult result = callWithKey(key_b_, method, target);
    EXPECT_EQ(result.response.status, 404) << method << " " << target;
  }

  CallResult put = callWithKey(key_b_, "PUT", "/api/v1/projects/" + id + "/providers/openai/key",
                               R"({"api_key":"sk-intruder-0000000000"})");
  EXPECT_EQ(put.response.status, 404);
  CallResult patch =
      callWithKey(key_b_, "PATCH", "/api/v1/agents/" + agent, R"({"status":"paused"})");
  EXPECT_EQ(patch.response.status, 404);

  CallResult list = callWithKey(key_b_, "GET", "/api/v1/projects");
  EXPECT_EQ(list.json.at("data").as_array().size(), 0u);

  // Nothing the other organization tried changed organization A's objects.
  CallResult still = call("GET", "/api/v1/tokens/" + token_id);
  EXPECT_EQ(still.str("/status"), "active");
  EXPECT_FALSE(storedKey(id, "openai").has_value());
}

TEST_F(AdminApiTest, LedgerRowsFiltered) {
  std::string project = createProject("metered");
  std::string agent = createAgent(project, "worker");
  std::string other = createAgent(project, "other");
  int64_t now = nowUnixMillis();

  std::vector<store::LedgerRow> rows;
  for (int i = 0; i < 3; ++i) {
    store::LedgerRow row;
    row.time = now - 1000 * (i + 1);
    row.request_id = "req_" + std::to_string(i);
    row.project_id = project;
    row.agent_id = i == 2 ? other : agent;
    row.token_id = "tok_x";
    row.provider = "openai";
    row.mode = "byok";
    row.method = "POST";
    row.path = "/v1/chat/completions";
    row.upstream_status = 200;
    row.outcome = "ok";
    row.bytes_in = 10;
    row.bytes_out = 20;
    row.latency_ms = 5;
    rows.push_back(row);
  }
  ASSERT_TRUE(store_->appendLedger(rows).has_value());

  CallResult all = call("GET", "/api/v1/projects/metered/ledger");
  ASSERT_EQ(all.response.status, 200) << all.response.body;
  const boost::json::array& data = all.json.at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  const boost::json::object& first = data[0].as_object();
  for (const char* field :
       {"time", "request_id", "project_id", "agent_id", "token_id", "provider", "mode", "method",
        "path", "upstream_status", "outcome", "bytes_in", "bytes_out", "latency_ms"}) {
    EXPECT_TRUE(first.contains(field)) << field;
  }
  EXPECT_TRUE(parseRfc3339(first.at("time").as_string()).has_value());

  CallResult by_agent = call("GET", "/api/v1/projects/metered/ledger?agent=worker");
  EXPECT_EQ(by_agent.json.at("data").as_array().size(), 2u);

  CallResult limited = call("GET", "/api/v1/projects/metered/ledger?limit=1");
  EXPECT_EQ(limited.json.at("data").as_array().size(), 1u);

  CallResult recent =
      call("GET", "/api/v1/projects/metered/ledger?since=" + formatRfc3339(now - 1500));
  EXPECT_EQ(recent.json.at("data").as_array().size(), 1u) << recent.response.body;

  CallResult bad_limit = call("GET", "/api/v1/projects/metered/ledger?limit=0");
  EXPECT_EQ(bad_limit.response.status, 400);
  CallResult bad_since = call("GET", "/api/v1/projects/metered/ledger?since=yesterday");
  EXPECT_EQ(bad_since.response.status, 400);
}

}  // namespace
}  // namespace keystore::admin
