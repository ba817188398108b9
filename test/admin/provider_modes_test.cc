// Provider modes per availability tier, credentials with several fields, and GET /catalog.
// The built-in catalog provides one provider of each tier: openai (both), stripe (byok), neon
// (marketplace), groq and twilio (concierge, twilio with the fields account_sid and
// auth_token).
#include "admin_fixture.h"
#include "common/mask.h"

namespace keystore::admin {
namespace {

constexpr const char* kStripeKey = "sk_test_STRIPE0123456789abcdef01";
constexpr const char* kGroqKey = "gsk_test_GROQ0123456789abcdef0001";
constexpr const char* kAccountSid = "AC0123456789abcdef0123456789abcdef";
constexpr const char* kAuthToken = "twilio-auth-token-0123456789abcdef";

std::string keyBody(const std::string& key) {
  return boost::json::serialize(boost::json::object{{"api_key", key}});
}

std::string twilioBody(const boost::json::object& credential) {
  return boost::json::serialize(boost::json::object{{"credential", credential}});
}

class ProviderModesTest : public AdminApiTest {
 protected:
  CallResult patchProvider(const std::string& provider, const std::string& body) {
    return call("PATCH", "/api/v1/projects/demo/providers/" + provider, body);
  }

  // Files a concierge request for `provider` in "demo" and fulfils it as the operator.
  void provisionConcierge(const std::string& provider, const std::string& key) {
    CallResult filed =
        call("POST", "/api/v1/projects/demo/concierge", R"({"provider":")" + provider + R"("})");
    ASSERT_EQ(filed.response.status, 201) << filed.response.body;
    CallResult fulfilled =
        callAsOperator("POST", "/api/v1/concierge/" + filed.str("/id") + "/fulfill", keyBody(key));
    ASSERT_EQ(fulfilled.response.status, 200) << fulfilled.response.body;
  }
};

TEST_F(ProviderModesTest, BothTierAllowsEitherMode) {
  createProject("demo");
  CallResult marketplace = patchProvider("openai", R"({"mode":"marketplace"})");
  ASSERT_EQ(marketplace.response.status, 200) << marketplace.response.body;
  EXPECT_EQ(marketplace.str("/mode"), "marketplace");
  EXPECT_EQ(marketplace.str("/status"), "enabled");
  EXPECT_EQ(marketplace.str("/availability"), "both");

  CallResult byok = patchProvider("openai", R"({"mode":"byok"})");
  ASSERT_EQ(byok.response.status, 200) << byok.response.body;
  EXPECT_EQ(byok.str("/mode"), "byok");
}

TEST_F(ProviderModesTest, ByokTierRejectsMarketplace) {
  createProject("demo");
  int before = config_changes_;
  CallResult refused = patchProvider("stripe", R"({"mode":"marketplace","status":"enabled"})");
  EXPECT_EQ(refused.response.status, 409);
  EXPECT_EQ(refused.errorCode(), "conflict");
  EXPECT_NE(refused.errorMessage().find("availability byok"), std::string::npos)
      << refused.errorMessage();
  EXPECT_EQ(config_changes_, before);
  EXPECT_EQ(call("GET", "/api/v1/projects/demo/providers/stripe").str("/status"), "not_configured");

  CallResult key = call("PUT", "/api/v1/projects/demo/providers/stripe/key", keyBody(kStripeKey));
  ASSERT_EQ(key.response.status, 200) << key.response.body;
  EXPECT_EQ(key.str("/mode"), "byok");
  EXPECT_EQ(key.str("/status"), "enabled");
}

TEST_F(ProviderModesTest, MarketplaceTierRejectsByok) {
  std::string project = createProject("demo");
  int before = config_changes_;
  CallResult refused = patchProvider("neon", R"({"mode":"byok"})");
  EXPECT_EQ(refused.response.status, 409);
  EXPECT_EQ(refused.errorCode(), "conflict");
  EXPECT_NE(refused.errorMessage().find("availability marketplace"), std::string::npos)
      << refused.errorMessage();

  CallResult key =
      call("PUT", "/api/v1/projects/demo/providers/neon/key", keyBody("neon-key-0123456789abcdef"));
  EXPECT_EQ(key.response.status, 409);
  EXPECT_EQ(key.errorCode(), "conflict");
  EXPECT_NE(key.errorMessage().find("availability marketplace"), std::string::npos);
  EXPECT_TRUE(store_->listCredentials(project)->empty());
  EXPECT_EQ(config_changes_, before);

  CallResult marketplace = patchProvider("neon", R"({"mode":"marketplace"})");
  ASSERT_EQ(marketplace.response.status, 200) << marketplace.response.body;
  EXPECT_EQ(marketplace.str("/mode"), "marketplace");
  EXPECT_EQ(marketplace.str("/status"), "enabled");
  EXPECT_EQ(config_changes_, before + 1);
}

TEST_F(ProviderModesTest, MarketplaceTierDefaultsToMarketplace) {
  createProject("demo");
  CallResult enabled = patchProvider("neon", R"({"status":"enabled"})");
  ASSERT_EQ(enabled.response.status, 200) << enabled.response.body;
  EXPECT_EQ(enabled.str("/mode"), "marketplace");

  CallResult disabled = patchProvider("neon", R"({"status":"disabled"})");
  ASSERT_EQ(disabled.response.status, 200) << disabled.response.body;
  EXPECT_EQ(disabled.str("/status"), "disabled");
  EXPECT_EQ(disabled.str("/mode"), "marketplace");
}

TEST_F(ProviderModesTest, ConciergeTierNeedsFulfilledRequest) {
  createProject("demo");
  CallResult early = patchProvider("groq", R"({"mode":"marketplace"})");
  EXPECT_EQ(early.response.status, 409);
  EXPECT_EQ(early.errorCode(), "conflict");
  EXPECT_NE(early.errorMessage().find("availability concierge"), std::string::npos)
      << early.errorMessage();

  // BYOK needs no request.
  CallResult byok = call("PUT", "/api/v1/projects/demo/providers/groq/key", keyBody(kGroqKey));
  ASSERT_EQ(byok.response.status, 200) << byok.response.body;
  EXPECT_EQ(byok.str("/mode"), "byok");

  CallResult filed = call("POST", "/api/v1/projects/demo/concierge", R"({"provider":"groq"})");
  ASSERT_EQ(filed.response.status, 201) << filed.response.body;
  EXPECT_EQ(patchProvider("groq", R"({"mode":"marketplace"})").response.status, 409);

  CallResult rejected = callAsOperator("POST", "/api/v1/concierge/" + filed.str("/id") + "/reject",
                                       R"({"reason":"no capacity"})");
  ASSERT_EQ(rejected.response.status, 200) << rejected.response.body;
  EXPECT_EQ(patchProvider("groq", R"({"mode":"marketplace"})").response.status, 409);

  provisionConcierge("groq", "gsk_pool_GROQ0123456789abcdef0002");
  CallResult marketplace = patchProvider("groq", R"({"mode":"marketplace"})");
  ASSERT_EQ(marketplace.response.status, 200) << marketplace.response.body;
  EXPECT_EQ(marketplace.str("/mode"), "marketplace");
  EXPECT_EQ(marketplace.str("/status"), "enabled");
}

TEST_F(ProviderModesTest, FulfilmentForOtherProviderDoesNotCount) {
  createProject("demo");
  provisionConcierge("pinecone", "pcsk-test-PINECONE0123456789ab");
  CallResult refused = patchProvider("groq", R"({"mode":"marketplace"})");
  EXPECT_EQ(refused.response.status, 409);
  EXPECT_EQ(refused.errorCode(), "conflict");
}

TEST_F(ProviderModesTest, FulfilmentOfOtherProjectDoesNotCount) {
  createProject("demo");
  createProject("other");
  CallResult filed = call("POST", "/api/v1/projects/other/concierge", R"({"provider":"groq"})");
  ASSERT_EQ(filed.response.status, 201);
  CallResult fulfilled = callAsOperator(
      "POST", "/api/v1/concierge/" + filed.str("/id") + "/fulfill", keyBody(kGroqKey));
  ASSERT_EQ(fulfilled.response.status, 200) << fulfilled.response.body;

  EXPECT_EQ(patchProvider("groq", R"({"mode":"marketplace"})").response.status, 409);
  EXPECT_EQ(call("PATCH", "/api/v1/projects/other/providers/groq", R"({"mode":"marketplace"})")
                .response.status,
            200);
}

TEST_F(ProviderModesTest, MultiFieldCredentialStoredInFieldOrder) {
  std::string project = createProject("demo");
  // Members in reverse order: the stored text follows the catalog's order.
  boost::json::object credential{{"auth_token", kAuthToken}, {"account_sid", kAccountSid}};
  CallResult result =
      call("PUT", "/api/v1/projects/demo/providers/twilio/key", twilioBody(credential));
  ASSERT_EQ(result.response.status, 200) << result.response.body;

  std::string canonical = std::string(R"({"account_sid":")") + kAccountSid + R"(","auth_token":")" +
                          kAuthToken + R"("})";
  EXPECT_EQ(result.str("/key"), maskCredential(kAuthToken));
  EXPECT_EQ(result.str("/key_fingerprint"), credentialFingerprint(canonical));
  EXPECT_EQ(result.response.body.find(kAuthToken), std::string::npos);
  EXPECT_EQ(result.response.body.find(kAccountSid), std::string::npos);
  EXPECT_EQ(storedKey(project, "twilio"), canonical);
}

TEST_F(ProviderModesTest, MultiFieldCredentialValidated) {
  std::string project = createProject("demo");
  const std::string target = "/api/v1/projects/demo/providers/twilio/key";

  CallResult plain = call("PUT", target, keyBody(kAuthToken));
  EXPECT_EQ(plain.response.status, 400);
  EXPECT_EQ(plain.errorMessage(),
            "provider twilio needs a credential with the fields account_sid, auth_token; send "
            "them as the object \"credential\"");

  CallResult missing = call("PUT", target, twilioBody({{"account_sid", kAccountSid}}));
  EXPECT_EQ(missing.response.status, 400);
  EXPECT_EQ(missing.errorMessage(),
            "\"credential.auth_token\" is required; expected exactly: account_sid, auth_token");

  const std::string pasted = "sk-secret-in-a-field-name-0123456789";
  CallResult unknown =
      call("PUT", target,
           twilioBody({{"account_sid", kAccountSid}, {"auth_token", kAuthToken}, {pasted, "x"}}));
  EXPECT_EQ(unknown.response.status, 400);
  EXPECT_EQ(unknown.errorCode(), "invalid_request");
  EXPECT_EQ(unknown.response.body.find(pasted), std::string::npos);

  CallResult number =
      call("PUT", target, twilioBody({{"account_sid", kAccountSid}, {"auth_token", 7}}));
  EXPECT_EQ(number.response.status, 400);
  EXPECT_EQ(number.errorMessage(), "\"credential.auth_token\" must be a string");

  CallResult masked =
      call("PUT", target,
           twilioBody({{"account_sid", kAccountSid}, {"auth_token", maskCredential(kAuthToken)}}));
  EXPECT_EQ(masked.response.status, 400);
  EXPECT_EQ(masked.errorMessage(), "the value looks like a masked key; send the full key");

  CallResult not_object = call("PUT", target, R"({"credential":"AC:token"})");
  EXPECT_EQ(not_object.response.status, 400);
  EXPECT_EQ(not_object.errorCode(), "invalid_request");

  CallResult both =
      call("PUT", target, R"({"api_key":"x0123456789abcdef","credential":{"account_sid":"a"}})");
  EXPECT_EQ(both.response.status, 400);
  EXPECT_EQ(both.errorMessage(), "send either \"api_key\" or \"credential\", not both");

  CallResult none = call("PUT", target, "{}");
  EXPECT_EQ(none.response.status, 400);
  EXPECT_EQ(none.errorMessage(), "\"credential\" is required");

  EXPECT_TRUE(store_->listCredentials(project)->empty());
}

TEST_F(ProviderModesTest, PlainKeyProviderRejectsCredentialObject) {
  createProject("demo");
  CallResult result = call("PUT", "/api/v1/projects/demo/providers/openai/key",
                           R"({"credential":{"api_key":"sk-test-0123456789abcdef"}})");
  EXPECT_EQ(result.response.status, 400);
  EXPECT_EQ(result.errorMessage(), "provider openai takes one key; send it as \"api_key\"");
}

TEST_F(ProviderModesTest, CatalogListsEveryProvider) {
  CallResult result = call("GET", "/api/v1/catalog");
  ASSERT_EQ(result.response.status, 200);
  const boost::json::array& data = result.json.at("data").as_array();
  ASSERT_EQ(data.size(), catalog_->providers().size());

  for (size_t i = 0; i < data.size(); ++i) {
    const boost::json::object& entry = data[i].as_object();
    const catalog::ProviderSpec& spec = catalog_->providers()[i];
    EXPECT_EQ(entry.at("id").as_string(), spec.id);
    EXPECT_EQ(entry.at("display_name").as_string(), spec.display_name);
    EXPECT_EQ(entry.at("category").as_string(), spec.category);
    EXPECT_EQ(entry.at("availability").as_string(), catalog::availabilityName(spec.availability));
    EXPECT_EQ(entry.at("metering").as_string(), spec.metering);
    EXPECT_EQ(entry.at("credential_fields").as_array().size(), spec.credential_fields.size());
  }

  auto find = [&](std::string_view id) -> const boost::json::object* {
    for (const boost::json::value& entry : data) {
      if (entry.at("id").as_string() == id) {
        return &entry.as_object();
      }
    }
    return nullptr;
  };
  const boost::json::object* twilio = find("twilio");
  ASSERT_NE(twilio, nullptr);
  EXPECT_EQ(twilio->at("auth_scheme").as_string(), "basic");
  EXPECT_EQ(boost::json::serialize(twilio->at("credential_fields")),
            R"(["account_sid","auth_token"])");
  const boost::json::object* anthropic = find("anthropic");
  ASSERT_NE(anthropic, nullptr);
  EXPECT_EQ(anthropic->at("auth_scheme").as_string(), "header");
  EXPECT_TRUE(anthropic->at("credential_fields").as_array().empty());
}

TEST_F(ProviderModesTest, LedgerRowShowsCredentialId) {
  std::string project = createProject("demo");
  store::LedgerRow used;
  used.time = nowUnixMillis();
  used.request_id = "req_used";
  used.project_id = project;
  used.provider = "openai";
  used.mode = "marketplace";
  used.credential_id = "cred_0123456789abcdef01234567";
  used.outcome = "ok";
  store::LedgerRow rejected = used;
  rejected.request_id = "req_rejected";
  rejected.credential_id = "";
  rejected.time = used.time + 1;
  ASSERT_TRUE(store_->appendLedger({used, rejected}).has_value());

  CallResult result = call("GET", "/api/v1/projects/demo/ledger");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  const boost::json::array& rows = result.json.at("data").as_array();
  ASSERT_EQ(rows.size(), 2u);
  for (const boost::json::value& row : rows) {
    if (row.at("request_id").as_string() == "req_used") {
      EXPECT_EQ(row.at("credential_id").as_string(), "cred_0123456789abcdef01234567");
    } else {
      EXPECT_TRUE(row.at("credential_id").is_null());
    }
  }
}

}  // namespace
}  // namespace keystore::admin
