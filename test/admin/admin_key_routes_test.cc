// Admin API keys through the management API: creation by owners, the operator flag,
// listing and revocation within one organization.
#include "admin_fixture.h"

namespace keystore::admin {
namespace {

std::string keyRequest(const std::string& name, const std::string& role, bool is_operator = false) {
  boost::json::object body{{"name", name}, {"role", role}};
  if (is_operator) {
    body["operator"] = true;
  }
  return boost::json::serialize(body);
}

TEST_F(AdminApiTest, CreateAdminKeyShowsKeyOnce) {
  CallResult created = call("POST", "/api/v1/admin-keys", keyRequest("ci deploy", "member"));
  ASSERT_EQ(created.response.status, 201) << created.response.body;
  std::string key = created.str("/key");
  EXPECT_TRUE(tokens::isAdminKeyShaped(key)) << key.size();
  std::string id = created.str("/id");
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(created.str("/name"), "ci deploy");
  EXPECT_EQ(created.str("/role"), "member");
  EXPECT_FALSE(created.json.at("operator").as_bool());
  EXPECT_EQ(created.str("/organization_id"), org_a_);
  EXPECT_EQ(created.str("/status"), "active");
  EXPECT_EQ(created.str("/hint"), tokens::tokenHint(tokens::hashToken(key)));

  CallResult listed = call("GET", "/api/v1/admin-keys");
  ASSERT_EQ(listed.response.status, 200);
  EXPECT_EQ(listed.response.body.find(key), std::string::npos);
  bool found = false;
  for (const boost::json::value& entry : listed.json.at("data").as_array()) {
    EXPECT_EQ(entry.as_object().if_contains("key"), nullptr);
    found = found || entry.at("id").as_string() == id;
  }
  EXPECT_TRUE(found);

  // The new key works, with its role: a member may read and write projects.
  CallResult used = callWithKey(key, "POST", "/api/v1/projects", R"({"name":"by-member"})");
  EXPECT_EQ(used.response.status, 201) << used.response.body;
}

TEST_F(AdminApiTest, OnlyOwnersCreateKeys) {
  std::string admin = createAdminKey(org_a_, "admin");
  std::string member = createAdminKey(org_a_, "member");
  std::string viewer = createAdminKey(org_a_, "viewer");
  for (const std::string& key : {admin, member, viewer}) {
    CallResult result = callWithKey(key, "POST", "/api/v1/admin-keys", keyRequest("x", "owner"));
    EXPECT_EQ(result.response.status, 403);
    EXPECT_EQ(result.errorCode(), "forbidden");
  }
  size_t before = store_->listAdminKeys(org_a_)->size();
  EXPECT_EQ(before, 5u);

  EXPECT_EQ(callWithKey(admin, "GET", "/api/v1/admin-keys").response.status, 200);
  EXPECT_EQ(callWithKey(member, "GET", "/api/v1/admin-keys").response.status, 403);
}

TEST_F(AdminApiTest, OnlyOperatorsGrantOperator) {
  CallResult refused = call("POST", "/api/v1/admin-keys", keyRequest("ops", "owner", true));
  EXPECT_EQ(refused.response.status, 403);
  EXPECT_EQ(refused.errorCode(), "forbidden");
  EXPECT_NE(refused.errorMessage().find("cannot grant \"operator\""), std::string::npos);

  CallResult granted =
      callAsOperator("POST", "/api/v1/admin-keys", keyRequest("ops", "admin", true));
  ASSERT_EQ(granted.response.status, 201) << granted.response.body;
  EXPECT_TRUE(granted.json.at("operator").as_bool());
  EXPECT_EQ(granted.str("/role"), "admin");

  std::string new_operator = granted.str("/key");
  EXPECT_EQ(callWithKey(new_operator, "GET", "/api/v1/pools").response.status, 200);

  CallResult plain = callAsOperator("POST", "/api/v1/admin-keys", keyRequest("plain", "owner"));
  ASSERT_EQ(plain.response.status, 201);
  EXPECT_FALSE(plain.json.at("operator").as_bool());
  EXPECT_EQ(callWithKey(plain.str("/key"), "GET", "/api/v1/pools").response.status, 403);
}

TEST_F(AdminApiTest, AdminKeyBodyValidated) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"role":"owner"})", "\"name\" is required"},
      {R"({"name":"x"})", "\"role\" is required"},
      {R"({"name":"x","role":"root"})",
       "\"role\" must be \"owner\", \"admin\", \"member\" or \"viewer\""},
      {R"({"name":"","role":"owner"})", "\"name\" must not be empty"},
      {R"({"name":"line\nbreak","role":"owner"})", "\"name\" must not contain control characters"},
      {R"({"name":"x","role":"owner","operator":"yes"})", "\"operator\" must be true or false"},
      {R"({"name":"x","role":"owner","expires":"1d"})",
       "unknown member \"expires\"; expected one of: name, role, operator, project"},
  };
  for (const Case& item : cases) {
    CallResult result = call("POST", "/api/v1/admin-keys", item.body);
    EXPECT_EQ(result.response.status, 400) << item.body;
    EXPECT_EQ(result.errorMessage(), item.message);
  }

  std::string pasted = "ksa_" + std::string(64, 'a');
  CallResult leaked = call("POST", "/api/v1/admin-keys", keyRequest(pasted, "owner"));
  EXPECT_EQ(leaked.response.status, 400);
  EXPECT_EQ(leaked.response.body.find(pasted), std::string::npos);
  EXPECT_EQ(store_->listAdminKeys(org_a_)->size(), 2u);
}

TEST_F(AdminApiTest, RevokeAdminKey) {
  CallResult created = call("POST", "/api/v1/admin-keys", keyRequest("temp", "admin"));
  ASSERT_EQ(created.response.status, 201);
  std::string id = created.str("/id");

  CallResult revoked = call("DELETE", "/api/v1/admin-keys/" + id);
  ASSERT_EQ(revoked.response.status, 200) << revoked.response.body;
  EXPECT_EQ(revoked.str("/status"), "revoked");
  EXPECT_TRUE(parseRfc3339(revoked.str("/revoked_at")).has_value());

  CallResult used = callWithKey(created.str("/key"), "GET", "/api/v1/projects");
  EXPECT_EQ(used.response.status, 401);

  CallResult again = call("DELETE", "/api/v1/admin-keys/" + id);
  EXPECT_EQ(again.response.status, 200);
  EXPECT_EQ(again.str("/revoked_at"), revoked.str("/revoked_at"));
}

TEST_F(AdminApiTest, RevokeRulesProtectKeys) {
  // Another organization's key reads as missing.
  CallResult b_key = callWithKey(key_b_, "POST", "/api/v1/admin-keys", keyRequest("b", "admin"));
  ASSERT_EQ(b_key.response.status, 201);
  CallResult other = call("DELETE", "/api/v1/admin-keys/" + b_key.str("/id"));
  EXPECT_EQ(other.response.status, 404);
  EXPECT_EQ(other.errorCode(), "not_found");
  EXPECT_EQ(callWithKey(b_key.str("/key"), "GET", "/api/v1/projects").response.status, 200);

  // A key cannot revoke itself, so an organization always keeps the key that acted.
  auto keys = store_->listAdminKeys(org_a_);
  ASSERT_TRUE(keys.has_value());
  std::string own_id;
  for (const store::AdminKey& key : *keys) {
    if (key.key_hash == tokens::hashToken(key_a_)) {
      own_id = key.id;
    }
  }
  CallResult self = call("DELETE", "/api/v1/admin-keys/" + own_id);
  EXPECT_EQ(self.response.status, 409);
  EXPECT_EQ(self.errorCode(), "conflict");

  // Only an operator key revokes an operator key.
  std::string operator_id;
  for (const store::AdminKey& key : *keys) {
    if (key.is_operator) {
      operator_id = key.id;
    }
  }
  CallResult protected_key = call("DELETE", "/api/v1/admin-keys/" + operator_id);
  EXPECT_EQ(protected_key.response.status, 403);
  EXPECT_EQ(protected_key.errorCode(), "forbidden");
  EXPECT_EQ(callAsOperator("GET", "/api/v1/pools").response.status, 200);

  std::string admin = createAdminKey(org_a_, "admin");
  CallResult by_admin = callWithKey(admin, "DELETE", "/api/v1/admin-keys/" + own_id);
  EXPECT_EQ(by_admin.response.status, 403);

  CallResult by_operator = callAsOperator("DELETE", "/api/v1/admin-keys/" + own_id);
  EXPECT_EQ(by_operator.response.status, 200);
  EXPECT_EQ(call("GET", "/api/v1/projects").response.status, 401);
}

TEST_F(AdminApiTest, AdminKeyListScopedToOrganization) {
  CallResult listed = callWithKey(key_b_, "GET", "/api/v1/admin-keys");
  ASSERT_EQ(listed.response.status, 200);
  const boost::json::array& data = listed.json.at("data").as_array();
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].at("organization_id").as_string(), org_b_);
  EXPECT_EQ(data[0].at("role").as_string(), "owner");
}

}  // namespace
}  // namespace keystore::admin
