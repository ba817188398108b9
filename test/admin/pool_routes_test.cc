// The operator's marketplace pools through the management API.
#include "admin_fixture.h"
#include "common/mask.h"

namespace keystore::admin {
namespace {

constexpr const char* kPoolKey = "sk-pool-OPENAI-0123456789abcdef0001";
constexpr const char* kOtherPoolKey = "sk-pool-OPENAI-0123456789abcdef0002";

std::string poolBody(boost::json::object fields, const std::string& key = kPoolKey) {
  fields["api_key"] = key;
  return boost::json::serialize(fields);
}

class PoolRoutesTest : public AdminApiTest {
 protected:
  CallResult addShared(const std::string& provider, const std::string& key = kPoolKey) {
    return callAsOperator("POST", "/api/v1/pools/" + provider + "/credentials",
                          poolBody({{"scope", "shared"}}, key));
  }
};

TEST_F(PoolRoutesTest, OperatorRoutesForbidOthers) {
  createProject("demo");
  CallResult added = addShared("openai");
  ASSERT_EQ(added.response.status, 201) << added.response.body;
  std::string credential = added.str("/id");
  int before = config_changes_;

  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "/api/v1/pools/openai/credentials"},
      {"GET", "/api/v1/pools"},
      {"POST", "/api/v1/pools/credentials/" + credential + "/disable"},
      {"POST", "/api/v1/pools/credentials/" + credential + "/enable"},
      {"GET", "/api/v1/concierge"},
      {"POST", "/api/v1/concierge/cnc_000000000000000000000000/fulfill"},
      {"POST", "/api/v1/concierge/cnc_000000000000000000000000/reject"},
  };
  for (const std::string& key : {key_a_, key_b_}) {
    for (const auto& [method, target] : routes) {
      CallResult result = callWithKey(key, method, target, poolBody({{"scope", "shared"}}));
      EXPECT_EQ(result.response.status, 403) << method << " " << target;
      EXPECT_EQ(result.errorCode(), "forbidden") << method << " " << target;
    }
  }
  EXPECT_EQ(config_changes_, before);
  EXPECT_EQ(store_->listPoolCredentials("openai")->size(), 1u);
  EXPECT_EQ(store_->getCredential(credential)->status, "active");
}

TEST_F(PoolRoutesTest, AddSharedCredential) {
  int before = config_changes_;
  CallResult result =
      callAsOperator("POST", "/api/v1/pools/openai/credentials",
                     poolBody({{"scope", "shared"}, {"label", "primary"}, {"rpm_limit", 600}}));
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(config_changes_, before + 1);
  EXPECT_EQ(result.response.body.find(kPoolKey), std::string::npos);

  std::string id = result.str("/id");
  EXPECT_TRUE(id.starts_with("cred_")) << id;
  EXPECT_EQ(result.str("/provider"), "openai");
  EXPECT_EQ(result.str("/scope"), "shared");
  EXPECT_TRUE(result.json.at("project_id").is_null());
  EXPECT_EQ(result.str("/status"), "active");
  EXPECT_EQ(result.str("/label"), "primary");
  EXPECT_EQ(result.str("/key"), maskCredential(kPoolKey));
  EXPECT_EQ(result.str("/key_fingerprint"), credentialFingerprint(kPoolKey));
  EXPECT_EQ(result.json.at("rpm_limit").as_int64(), 600);
  EXPECT_TRUE(parseRfc3339(result.str("/created_at")).has_value());
  EXPECT_EQ(result.str("/health/state"), "closed");
  EXPECT_EQ(result.json.at("health").at("consecutive_failures").as_int64(), 0);
  EXPECT_TRUE(result.json.at("health").at("opened_at").is_null());

  auto stored = store_->getCredential(id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->scope, "shared");
  EXPECT_EQ(stored->project_id, "");
  EXPECT_EQ(stored->rpm_limit, 600);
  EXPECT_EQ(stored->ciphertext.find(kPoolKey), std::string::npos);
  EXPECT_EQ(poolPlaintext(id), kPoolKey);
}

TEST_F(PoolRoutesTest, PoolDataKeyCreatedOnce) {
  ASSERT_EQ(addShared("openai").response.status, 201);
  ASSERT_EQ(addShared("anthropic", "sk-ant-pool-0123456789abcdef0001").response.status, 201);

  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value());
  int pool_keys = 0;
  for (const store::DataKey& key : *keys) {
    pool_keys += key.project_id.empty() ? 1 : 0;
  }
  EXPECT_EQ(pool_keys, 1);
  auto credentials = store_->listPoolCredentials("");
  ASSERT_EQ(credentials->size(), 2u);
  EXPECT_EQ((*credentials)[0].data_key_id, (*credentials)[1].data_key_id);
}

TEST_F(PoolRoutesTest, AddDedicatedCredential) {
  std::string project = createProject("demo");
  CallResult result = callAsOperator("POST", "/api/v1/pools/openai/credentials",
                                     poolBody({{"scope", "dedicated"}, {"project", "demo"}}));
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(result.str("/scope"), "dedicated");
  EXPECT_EQ(result.str("/project_id"), project);
  EXPECT_TRUE(result.json.at("label").is_null());
  EXPECT_EQ(result.json.at("rpm_limit").as_int64(), 0);
  EXPECT_EQ(poolPlaintext(result.str("/id")), kPoolKey);

  // A dedicated credential is bound to its project: the shared binding does not open it.
  auto stored = store_->getCredential(result.str("/id"));
  ASSERT_TRUE(stored.has_value());
  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value());
  for (const store::DataKey& key : *keys) {
    if (key.key_id != stored->data_key_id) {
      continue;
    }
    auto unwrapped = vault_->unwrapDataKey("", key.key_id, key.wrapped);
    ASSERT_TRUE(unwrapped.has_value());
    auto as_shared =
        vault::Vault::decryptCredential(*unwrapped, {"", "openai", stored->id}, stored->ciphertext);
    EXPECT_FALSE(as_shared.has_value());
  }
}

TEST_F(PoolRoutesTest, DedicatedReachesOtherOrganizationById) {
  CallResult created = callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"tenant-b"})");
  ASSERT_EQ(created.response.status, 201);
  std::string project_b = created.str("/id");

  CallResult by_id = callAsOperator("POST", "/api/v1/pools/openai/credentials",
                                    poolBody({{"scope", "dedicated"}, {"project", project_b}}));
  ASSERT_EQ(by_id.response.status, 201) << by_id.response.body;
  EXPECT_EQ(by_id.str("/project_id"), project_b);

  // Names repeat across organizations, so another organization's project needs its id.
  CallResult by_name = callAsOperator("POST", "/api/v1/pools/openai/credentials",
                                      poolBody({{"scope", "dedicated"}, {"project", "tenant-b"}}));
  EXPECT_EQ(by_name.response.status, 404);
  EXPECT_EQ(by_name.errorCode(), "not_found");
  EXPECT_EQ(by_name.errorMessage(), "project tenant-b not found");
}

TEST_F(PoolRoutesTest, AddCredentialValidated) {
  createProject("demo");
  struct Case {
    boost::json::object fields;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "\"scope\" is required"},
      {{{"scope", "global"}}, "\"scope\" must be \"shared\" or \"dedicated\""},
      {{{"scope", "dedicated"}},
       "\"project\" is required for a dedicated credential; name the project it serves"},
      {{{"scope", "shared"}, {"project", "demo"}},
       "a shared credential serves every project; send \"project\" only with scope "
       "\"dedicated\""},
      {{{"scope", "shared"}, {"rpm_limit", -1}},
       "\"rpm_limit\" must be from 0 (no limit of its own) to 1000000"},
      {{{"scope", "shared"}, {"rpm_limit", 1000001}},
       "\"rpm_limit\" must be from 0 (no limit of its own) to 1000000"},
      {{{"scope", "shared"}, {"rpm_limit", "60"}}, "\"rpm_limit\" must be an integer"},
      {{{"scope", "shared"}, {"rpm_limit", 1.5}}, "\"rpm_limit\" must be an integer"},
      {{{"scope", "shared"}, {"label", std::string(101, 'x')}},
       "\"label\" is longer than 100 bytes"},
      {{{"scope", "shared"}, {"label", "tab\there"}},
       "\"label\" must not contain control characters"},
      {{{"scope", "shared"}, {"labels", "x"}},
       "unknown member \"labels\"; expected one of: scope, project, api_key, credential, "
       "label, rpm_limit"},
  };
  for (const Case& item : cases) {
    CallResult result =
        callAsOperator("POST", "/api/v1/pools/openai/credentials", poolBody(item.fields));
    EXPECT_EQ(result.response.status, 400) << item.message;
    EXPECT_EQ(result.errorCode(), "invalid_request") << item.message;
    EXPECT_EQ(result.errorMessage(), item.message);
    EXPECT_EQ(result.response.body.find(kPoolKey), std::string::npos);
  }

  CallResult no_key =
      callAsOperator("POST", "/api/v1/pools/openai/credentials", R"({"scope":"shared"})");
  EXPECT_EQ(no_key.response.status, 400);
  EXPECT_EQ(no_key.errorMessage(), "\"api_key\" is required");

  CallResult masked = callAsOperator("POST", "/api/v1/pools/openai/credentials",
                                     poolBody({{"scope", "shared"}}, maskCredential(kPoolKey)));
  EXPECT_EQ(masked.response.status, 400);
  EXPECT_EQ(masked.errorMessage(), "the value looks like a masked key; send the full key");

  EXPECT_TRUE(store_->listPoolCredentials("")->empty());

  for (int64_t limit : {int64_t{0}, int64_t{1'000'000}}) {
    CallResult bound = callAsOperator("POST", "/api/v1/pools/openai/credentials",
                                      poolBody({{"scope", "shared"}, {"rpm_limit", limit}}));
    EXPECT_EQ(bound.response.status, 201) << limit;
    EXPECT_EQ(bound.json.at("rpm_limit").as_int64(), limit);
  }
}

TEST_F(PoolRoutesTest, ByokTierHasNoPool) {
  CallResult result = addShared("stripe", "sk_live_STRIPE0123456789abcdef01");
  EXPECT_EQ(result.response.status, 409);
  EXPECT_EQ(result.errorCode(), "conflict");
  EXPECT_NE(result.errorMessage().find("availability byok"), std::string::npos);
  EXPECT_TRUE(store_->listPoolCredentials("")->empty());
}

TEST_F(PoolRoutesTest, UnknownProviderNotFound) {
  CallResult added = addShared("nope");
  EXPECT_EQ(added.response.status, 404);
  EXPECT_EQ(added.errorCode(), "unknown_provider");

  CallResult listed = callAsOperator("GET", "/api/v1/pools?provider=nope");
  EXPECT_EQ(listed.response.status, 404);
  EXPECT_EQ(listed.errorCode(), "unknown_provider");
}

TEST_F(PoolRoutesTest, MultiFieldPoolCredential) {
  boost::json::object body{{"scope", "shared"},
                           {"credential",
                            {{"account_sid", "AC0123456789abcdef0123456789abcdef"},
                             {"auth_token", "twilio-pool-token-0123456789abcdef"}}}};
  CallResult result =
      callAsOperator("POST", "/api/v1/pools/twilio/credentials", boost::json::serialize(body));
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(result.str("/key"), maskCredential("twilio-pool-token-0123456789abcdef"));
  EXPECT_EQ(poolPlaintext(result.str("/id")),
            R"({"account_sid":"AC0123456789abcdef0123456789abcdef",)"
            R"("auth_token":"twilio-pool-token-0123456789abcdef"})");
}

TEST_F(PoolRoutesTest, ListFiltersByProvider) {
  createProject("demo");
  ASSERT_EQ(addShared("openai").response.status, 201);
  ASSERT_EQ(addShared("groq", "gsk_pool_GROQ0123456789abcdef0001").response.status, 201);

  CallResult all = callAsOperator("GET", "/api/v1/pools");
  ASSERT_EQ(all.response.status, 200);
  EXPECT_EQ(all.json.at("data").as_array().size(), 2u);
  EXPECT_EQ(all.response.body.find(kPoolKey), std::string::npos);

  CallResult openai = callAsOperator("GET", "/api/v1/pools?provider=openai");
  ASSERT_EQ(openai.response.status, 200);
  const boost::json::array& data = openai.json.at("data").as_array();
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0].at("provider").as_string(), "openai");
  EXPECT_EQ(data[0].at("key").as_string(), maskCredential(kPoolKey));

  CallResult empty = callAsOperator("GET", "/api/v1/pools?provider=anthropic");
  EXPECT_EQ(empty.json.at("data").as_array().size(), 0u);
}

TEST_F(PoolRoutesTest, ListShowsCircuitHealth) {
  ASSERT_EQ(addShared("openai").response.status, 201);
  CallResult healthy = addShared("openai", kOtherPoolKey);
  ASSERT_EQ(healthy.response.status, 201);
  std::string healthy_id = healthy.str("/id");

  AdminApiOptions options;
  options.credential_health = [healthy_id](const std::string& credential_id) {
    CredentialHealth health;
    if (credential_id != healthy_id) {
      health.state = "open";
      health.consecutive_failures = 5;
      health.opened_at = 1'700'000'000'000;
    }
    return health;
  };
  api_ = std::make_unique<AdminApi>(*store_, *vault_, *catalog_, std::move(options));

  CallResult result = callAsOperator("GET", "/api/v1/pools?provider=openai");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  const boost::json::array& data = result.json.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  for (const boost::json::value& entry : data) {
    const boost::json::value& health = entry.at("health");
    if (entry.at("id").as_string() == healthy_id) {
      EXPECT_EQ(health.at("state").as_string(), "closed");
      EXPECT_EQ(health.at("consecutive_failures").as_int64(), 0);
      EXPECT_TRUE(health.at("opened_at").is_null());
    } else {
      EXPECT_EQ(health.at("state").as_string(), "open");
      EXPECT_EQ(health.at("consecutive_failures").as_int64(), 5);
      EXPECT_EQ(health.at("opened_at").as_string(), formatRfc3339(1'700'000'000'000));
    }
  }
}

TEST_F(PoolRoutesTest, DisableAndEnableCredential) {
  CallResult added = addShared("openai");
  ASSERT_EQ(added.response.status, 201);
  std::string id = added.str("/id");
  int before = config_changes_;

  CallResult disabled = callAsOperator("POST", "/api/v1/pools/credentials/" + id + "/disable");
  ASSERT_EQ(disabled.response.status, 200) << disabled.response.body;
  EXPECT_EQ(disabled.str("/status"), "disabled");
  EXPECT_EQ(disabled.str("/id"), id);
  EXPECT_EQ(store_->getCredential(id)->status, "disabled");
  EXPECT_EQ(config_changes_, before + 1);

  CallResult enabled = callAsOperator("POST", "/api/v1/pools/credentials/" + id + "/enable");
  ASSERT_EQ(enabled.response.status, 200) << enabled.response.body;
  EXPECT_EQ(enabled.str("/status"), "active");
  EXPECT_EQ(store_->getCredential(id)->status, "active");
  EXPECT_EQ(config_changes_, before + 2);
  EXPECT_EQ(poolPlaintext(id), kPoolKey);
}

TEST_F(PoolRoutesTest, StatusRoutesReachOnlyPoolCredentials) {
  std::string project = createProject("demo");
  putKey("demo", "openai", kOtherPoolKey);
  auto byok = store_->listCredentials(project);
  ASSERT_EQ(byok->size(), 1u);
  int before = config_changes_;

  CallResult result =
      callAsOperator("POST", "/api/v1/pools/credentials/" + byok->front().id + "/disable");
  EXPECT_EQ(result.response.status, 404);
  EXPECT_EQ(result.errorCode(), "not_found");
  EXPECT_EQ(store_->listCredentials(project)->front().status, "active");

  CallResult unknown =
      callAsOperator("POST", "/api/v1/pools/credentials/cred_000000000000000000000000/enable");
  EXPECT_EQ(unknown.response.status, 404);
  EXPECT_EQ(unknown.errorMessage(), "pool credential cred_000000000000000000000000 not found");
  EXPECT_EQ(config_changes_, before);
}

}  // namespace
}  // namespace keystore::admin
