// Agents and agent tokens through the management API.
#include <regex>

#include "admin_fixture.h"

namespace keystore::admin {
namespace {

TEST_F(AdminApiTest, CreateAgentReturnsAgent) {
  std::string project = createProject("demo");
  CallResult result = call("POST", "/api/v1/projects/demo/agents",
                           R"({"name":"worker","rpm_limit":60,"rpd_limit":1000})");
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_TRUE(result.str("/id").starts_with("agt_"));
  EXPECT_EQ(result.str("/project_id"), project);
  EXPECT_EQ(result.str("/name"), "worker");
  EXPECT_EQ(result.str("/status"), "active");
  EXPECT_EQ(result.json.at("rpm_limit").as_int64(), 60);
  EXPECT_EQ(result.json.at("rpd_limit").as_int64(), 1000);
  EXPECT_TRUE(parseRfc3339(result.str("/created_at")).has_value());
}

TEST_F(AdminApiTest, InvalidAgentBodiesRejected) {
  createProject("demo");
  for (const char* body : {R"({})", R"({"name":""})", R"({"name":"w","rpm_limit":0})",
                           R"({"name":"w","rpm_limit":"10"})", R"({"name":"w","rpd_limit":1.5})",
                           R"({"name":"agt_x"})"}) {
    CallResult result = call("POST", "/api/v1/projects/demo/agents", body);
    EXPECT_EQ(result.response.status, 400) << body;
    EXPECT_EQ(result.errorCode(), "invalid_request") << body;
  }
  createAgent("demo", "worker");
  CallResult duplicate = call("POST", "/api/v1/projects/demo/agents", R"({"name":"worker"})");
  EXPECT_EQ(duplicate.response.status, 409);
}

TEST_F(AdminApiTest, AgentFoundByIdOrProjectName) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");

  CallResult by_id = call("GET", "/api/v1/agents/" + agent);
  EXPECT_EQ(by_id.response.status, 200);
  EXPECT_EQ(by_id.str("/name"), "worker");

  CallResult by_name = call("GET", "/api/v1/agents/worker?project=demo");
  EXPECT_EQ(by_name.response.status, 200) << by_name.response.body;
  EXPECT_EQ(by_name.str("/id"), agent);

  CallResult name_alone = call("GET", "/api/v1/agents/worker");
  EXPECT_EQ(name_alone.response.status, 404);

  CallResult list = call("GET", "/api/v1/projects/demo/agents");
  ASSERT_EQ(list.json.at("data").as_array().size(), 1u);
  EXPECT_EQ(list.json.at("data").as_array()[0].at("id").as_string(), agent);
}

TEST_F(AdminApiTest, AgentIdOfOtherProjectNotFoundThroughProject) {
  createProject("one");
  createProject("two");
  std::string agent = createAgent("one", "worker");
  CallResult result = call("GET", "/api/v1/agents/" + agent + "?project=two");
  EXPECT_EQ(result.response.status, 404);
}

TEST_F(AdminApiTest, PatchAgentStatus) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");

  CallResult paused = call("PATCH", "/api/v1/agents/" + agent, R"({"status":"paused"})");
  ASSERT_EQ(paused.response.status, 200) << paused.response.body;
  EXPECT_EQ(paused.str("/status"), "paused");

  CallResult resumed =
      call("PATCH", "/api/v1/agents/worker?project=demo", R"({"status":"active"})");
  EXPECT_EQ(resumed.str("/status"), "active");

  CallResult renamed = call("PATCH", "/api/v1/agents/" + agent, R"({"name":"builder"})");
  EXPECT_EQ(renamed.str("/name"), "builder");
  EXPECT_EQ(renamed.str("/status"), "active");

  CallResult invalid = call("PATCH", "/api/v1/agents/" + agent, R"({"status":"sleeping"})");
  EXPECT_EQ(invalid.response.status, 400);

  CallResult revoked = call("PATCH", "/api/v1/agents/" + agent, R"({"status":"revoked"})");
  EXPECT_EQ(revoked.str("/status"), "revoked");
  CallResult reactivated = call("PATCH", "/api/v1/agents/" + agent, R"({"status":"active"})");
  EXPECT_EQ(reactivated.response.status, 409);
  EXPECT_EQ(call("GET", "/api/v1/agents/" + agent).str("/status"), "revoked");
}

TEST_F(AdminApiTest, TokenCreateShowsTokenOnce) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");

  CallResult created = call("POST", "/api/v1/agents/" + agent + "/tokens", "");
  ASSERT_EQ(created.response.status, 201) << created.response.body;
  std::string token = created.str("/token");
  EXPECT_TRUE(std::regex_match(token, std::regex("ks_[0-9a-f]{64}"))) << token;
  std::string id = created.str("/id");
  EXPECT_TRUE(id.starts_with("tok_"));
  EXPECT_EQ(created.str("/agent_id"), agent);
  EXPECT_EQ(created.str("/hint"), tokens::tokenHint(tokens::hashToken(token)));
  EXPECT_EQ(created.str("/status"), "active");
  EXPECT_TRUE(created.json.at("expires_at").is_null());
  EXPECT_TRUE(created.json.at("scopes").as_array().empty());
  EXPECT_TRUE(created.json.at("models").as_array().empty());

  auto stored = store_->getToken(id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->token_hash, tokens::hashToken(token));

  CallResult list = call("GET", "/api/v1/agents/" + agent + "/tokens");
  ASSERT_EQ(list.response.status, 200);
  EXPECT_EQ(list.response.body.find(token), std::string::npos);
  EXPECT_EQ(list.response.body.find(token.substr(3)), std::string::npos);
  const boost::json::array& data = list.json.at("data").as_array();
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].at("id").as_string(), id);
  EXPECT_FALSE(data[0].as_object().contains("token"));

  CallResult single = call("GET", "/api/v1/tokens/" + id);
  EXPECT_EQ(single.response.status, 200);
  EXPECT_FALSE(single.json.as_object().contains("token"));
  EXPECT_EQ(single.response.body.find(token), std::string::npos);
}

TEST_F(AdminApiTest, TokenScopesValidated) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string target = "/api/v1/agents/" + agent + "/tokens";

  CallResult valid = call("POST", target,
                          R"({"scopes":["provider:openai:*","provider:anthropic:read",)"
                          R"("provider:openai:*"]})");
  ASSERT_EQ(valid.response.status, 201) << valid.response.body;
  const boost::json::array& scopes = valid.json.at("scopes").as_array();
  ASSERT_EQ(scopes.size(), 2u);
  EXPECT_EQ(scopes[0].as_string(), "provider:openai:*");
  EXPECT_EQ(scopes[1].as_string(), "provider:anthropic:read");

  for (const char* body : {R"({"scopes":["openai"]})", R"({"scopes":["provider:openai:admin"]})",
                           R"({"scopes":["provider:nope:*"]})", R"({"scopes":"provider:openai:*"})",
                           R"({"scopes":[42]})"}) {
    CallResult result = call("POST", target, body);
    EXPECT_EQ(result.response.status, 400) << body;
    EXPECT_EQ(result.errorCode(), "invalid_request") << body;
  }
  EXPECT_EQ(store_->listTokens(agent)->size(), 1u);
}

TEST_F(AdminApiTest, TokenModelsStoredAndRendered) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string target = "/api/v1/agents/" + agent + "/tokens";

  CallResult created =
      call("POST", target,
           R"({"models":["gpt-4o-mini","ft:gpt-4o-mini:acme:custom:abc123","gpt-4o-mini",)"
           R"("accounts/fireworks/models/llama-v3p1-8b-instruct"]})");
  ASSERT_EQ(created.response.status, 201) << created.response.body;
  const std::vector<std::string> expected = {"gpt-4o-mini", "ft:gpt-4o-mini:acme:custom:abc123",
                                             "accounts/fireworks/models/llama-v3p1-8b-instruct"};
  const boost::json::array& rendered = created.json.at("models").as_array();
  ASSERT_EQ(rendered.size(), 3u);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(rendered[i].as_string(), expected[i]) << i;
  }

  std::string id = created.str("/id");
  auto stored = store_->getToken(id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->models, expected);

  CallResult single = call("GET", "/api/v1/tokens/" + id);
  ASSERT_EQ(single.response.status, 200);
  EXPECT_EQ(single.json.at("models").as_array().size(), 3u);
  CallResult list = call("GET", target);
  ASSERT_EQ(list.response.status, 200);
  EXPECT_EQ(list.json.at("data").as_array()[0].at("models").as_array().size(), 3u);

  for (const char* body : {R"({})", R"({"models":null})", R"({"models":[]})"}) {
    CallResult unrestricted = call("POST", target, body);
    ASSERT_EQ(unrestricted.response.status, 201) << body;
    EXPECT_TRUE(unrestricted.json.at("models").as_array().empty()) << body;
  }
}

TEST_F(AdminApiTest, TokenModelsValidated) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string target = "/api/v1/agents/" + agent + "/tokens";

  std::string at_limit = R"({"models":[)";
  std::string over_limit = R"({"models":[)";
  for (int i = 0; i < 65; ++i) {
    std::string entry = R"("model-)" + std::to_string(i) + R"(")";
    if (i < 64) {
      at_limit += (i == 0 ? "" : ",") + entry;
    }
    over_limit += (i == 0 ? "" : ",") + entry;
  }
  at_limit += "]}";
  over_limit += "]}";
  CallResult sixty_four = call("POST", target, at_limit);
  ASSERT_EQ(sixty_four.response.status, 201) << sixty_four.response.body;
  EXPECT_EQ(sixty_four.json.at("models").as_array().size(), 64u);
  CallResult longest = call("POST", target, R"({"models":[")" + std::string(128, 'm') + R"("]})");
  EXPECT_EQ(longest.response.status, 201) << longest.response.body;

  struct Case {
    std::string body;
    std::string message;
  };
  const std::string bad_name =
      " is not a model name: use 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '/' and "
      "'-'";
  const std::vector<Case> cases = {
      {R"({"models":"gpt-4o-mini"})", R"("models" must be an array of strings)"},
      {R"({"models":{"name":"gpt-4o-mini"}})", R"("models" must be an array of strings)"},
      {R"({"models":["gpt-4o-mini",7]})", R"("models" must be an array of strings)"},
      {R"({"models":[null]})", R"("models" must be an array of strings)"},
      {R"({"models":[""]})", R"("models" entry 0)" + bad_name},
      {R"({"models":["gpt-4o-mini","gpt 4o"]})", R"("models" entry 1)" + bad_name},
      {R"({"models":["gpt-4o\n"]})", R"("models" entry 0)" + bad_name},
      {R"({"models":["gpt-4o?x=1"]})", R"("models" entry 0)" + bad_name},
      {R"({"models":["gpt-4\u00f6"]})", R"("models" entry 0)" + bad_name},
      {R"({"models":[")" + std::string(129, 'm') + R"("]})", R"("models" entry 0)" + bad_name},
      {over_limit, R"("models" may contain at most 64 entries)"},
      {R"({"model":["gpt-4o-mini"]})", ""},
  };
  for (const Case& test : cases) {
    CallResult result = call("POST", target, test.body);
    EXPECT_EQ(result.response.status, 400) << test.body;
    EXPECT_EQ(result.errorCode(), "invalid_request") << test.body;
    if (!test.message.empty()) {
      EXPECT_EQ(result.errorMessage(), test.message) << test.body;
    }
  }
  EXPECT_EQ(store_->listTokens(agent)->size(), 2u);
}

TEST_F(AdminApiTest, TokenExpiryParsed) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string target = "/api/v1/agents/" + agent + "/tokens";

  int64_t before = nowUnixMillis();
  CallResult in_hour = call("POST", target, R"({"expires_in":"1h"})");
  ASSERT_EQ(in_hour.response.status, 201) << in_hour.response.body;
  std::optional<int64_t> expires = parseRfc3339(in_hour.str("/expires_at"));
  ASSERT_TRUE(expires.has_value());
  EXPECT_GE(*expires, before + 3'600'000);
  EXPECT_LE(*expires, nowUnixMillis() + 3'600'000);

  CallResult at = call("POST", target, R"({"expires_at":"2999-01-01T00:00:00Z"})");
  ASSERT_EQ(at.response.status, 201) << at.response.body;
  EXPECT_EQ(parseRfc3339(at.str("/expires_at")), parseRfc3339("2999-01-01T00:00:00Z"));

  for (const char* body : {R"({"expires_in":"soon"})", R"({"expires_at":"2000-01-01T00:00:00Z"})",
                           R"({"expires_at":"tomorrow"})",
                           R"({"expires_in":"1h","expires_at":"2999-01-01T00:00:00Z"})"}) {
    CallResult result = call("POST", target, body);
    EXPECT_EQ(result.response.status, 400) << body;
  }
}

TEST_F(AdminApiTest, RevokedAgentCannotMint) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  call("PATCH", "/api/v1/agents/" + agent, R"({"status":"revoked"})");
  CallResult result = call("POST", "/api/v1/agents/" + agent + "/tokens", "{}");
  EXPECT_EQ(result.response.status, 409);
}

TEST_F(AdminApiTest, RevokeTokenSetsRevokedAt) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string first = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  std::string second = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");

  CallResult revoked = call("POST", "/api/v1/tokens/" + first + "/revoke");
  ASSERT_EQ(revoked.response.status, 200) << revoked.response.body;
  EXPECT_EQ(revoked.str("/status"), "revoked");
  EXPECT_TRUE(parseRfc3339(revoked.str("/revoked_at")).has_value());
  EXPECT_FALSE(revoked.json.as_object().contains("token"));

  CallResult again = call("POST", "/api/v1/tokens/" + first + "/revoke");
  EXPECT_EQ(again.response.status, 200);
  EXPECT_EQ(again.str("/revoked_at"), revoked.str("/revoked_at"));

  CallResult deleted = call("DELETE", "/api/v1/tokens/" + second);
  EXPECT_EQ(deleted.response.status, 200);
  EXPECT_EQ(deleted.str("/status"), "revoked");

  CallResult unknown = call("POST", "/api/v1/tokens/tok_doesnotexist/revoke");
  EXPECT_EQ(unknown.response.status, 404);
}

TEST_F(AdminApiTest, PatchTokenExpiry) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string id = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");

  CallResult now = call("PATCH", "/api/v1/tokens/" + id, R"({"expires_at":"now"})");
  ASSERT_EQ(now.response.status, 200) << now.response.body;
  EXPECT_EQ(now.str("/status"), "expired");
  EXPECT_TRUE(parseRfc3339(now.str("/expires_at")).has_value());

  CallResult later =
      call("PATCH", "/api/v1/tokens/" + id, R"({"expires_at":"2999-01-01T00:00:00Z"})");
  EXPECT_EQ(later.str("/status"), "active");
  EXPECT_EQ(store_->getToken(id)->expires_at, *parseRfc3339("2999-01-01T00:00:00Z"));

  CallResult never = call("PATCH", "/api/v1/tokens/" + id, R"({"expires_at":null})");
  EXPECT_EQ(never.response.status, 200);
  EXPECT_TRUE(never.json.at("expires_at").is_null());

  CallResult invalid = call("PATCH", "/api/v1/tokens/" + id, R"({"expires_at":"later"})");
  EXPECT_EQ(invalid.response.status, 400);
  CallResult missing = call("PATCH", "/api/v1/tokens/" + id, "{}");
  EXPECT_EQ(missing.response.status, 400);
}

TEST_F(AdminApiTest, WritesNotifyConfigChange) {
  int before = config_changes_;
  createProject("demo");
  EXPECT_EQ(config_changes_, before + 1);
  std::string agent = createAgent("demo", "worker");
  EXPECT_EQ(config_changes_, before + 2);
  std::string token = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  EXPECT_EQ(config_changes_, before + 3);
  call("PATCH", "/api/v1/agents/" + agent, R"({"status":"paused"})");
  EXPECT_EQ(config_changes_, before + 4);
  call("PATCH", "/api/v1/tokens/" + token, R"({"expires_at":"2999-01-01T00:00:00Z"})");
  EXPECT_EQ(config_changes_, before + 5);
  call("POST", "/api/v1/tokens/" + token + "/revoke");
  EXPECT_EQ(config_changes_, before + 6);

  // Reads and rejected writes change nothing.
  call("GET", "/api/v1/agents/" + agent + "/tokens");
  call("GET", "/api/v1/projects/demo/agents");
  call("POST", "/api/v1/projects/demo/agents", R"({"name":""})");
  call("PATCH", "/api/v1/agents/" + agent, R"({"status":"bogus"})");
  EXPECT_EQ(config_changes_, before + 6);
}

}  // namespace
}  // namespace keystore::admin
