// Provider settings and BYOK credentials through the management API.
#include "admin_fixture.h"
#include "common/mask.h"

namespace keystore::admin {
namespace {

constexpr const char* kOpenAiKey = "sk-test-OPENAI-0123456789abcdef0001";
constexpr const char* kOtherKey = "sk-test-OPENAI-fedcba98765432100002";

std::string keyBody(const std::string& key) {
  return boost::json::serialize(boost::json::object{{"api_key", key}});
}

TEST_F(AdminApiTest, ProviderListCoversCatalog) {
  createProject("demo");
  CallResult result = call("GET", "/api/v1/projects/demo/providers");
  ASSERT_EQ(result.response.status, 200);
  const boost::json::array& data = result.json.at("data").as_array();
  ASSERT_EQ(data.size(), catalog_->providers().size());

  for (size_t i = 0; i < data.size(); ++i) {
    const boost::json::object& entry = data[i].as_object();
    const catalog::ProviderSpec& spec = catalog_->providers()[i];
    EXPECT_EQ(entry.at("provider").as_string(), spec.id);
    EXPECT_EQ(entry.at("display_name").as_string(), spec.display_name);
    EXPECT_EQ(entry.at("category").as_string(), spec.category);
    EXPECT_EQ(entry.at("availability").as_string(), catalog::availabilityName(spec.availability));
    EXPECT_TRUE(entry.at("mode").is_null());
    EXPECT_EQ(entry.at("status").as_string(), "not_configured");
    EXPECT_TRUE(entry.at("key").is_null());
  }
}

TEST_F(AdminApiTest, UnknownProviderNotFound) {
  createProject("demo");
  CallResult get = call("GET", "/api/v1/projects/demo/providers/nope");
  EXPECT_EQ(get.response.status, 404);
  EXPECT_EQ(get.errorCode(), "unknown_provider");

  CallResult put = call("PUT", "/api/v1/projects/demo/providers/nope/key", keyBody(kOpenAiKey));
  EXPECT_EQ(put.response.status, 404);
  EXPECT_EQ(put.errorCode(), "unknown_provider");
}

TEST_F(AdminApiTest, PutKeyStoresEncryptedCredential) {
  std::string project = createProject("demo");
  CallResult result =
      call("PUT", "/api/v1/projects/demo/providers/openai/key", keyBody(kOpenAiKey));
  ASSERT_EQ(result.response.status, 200) << result.response.body;

  EXPECT_EQ(result.response.body.find(kOpenAiKey), std::string::npos);
  EXPECT_EQ(result.str("/provider"), "openai");
  EXPECT_EQ(result.str("/mode"), "byok");
  EXPECT_EQ(result.str("/status"), "enabled");
  EXPECT_EQ(result.str("/key"), maskCredential(kOpenAiKey));
  EXPECT_EQ(result.str("/key_fingerprint"), credentialFingerprint(kOpenAiKey));
  EXPECT_TRUE(parseRfc3339(result.str("/key_set_at")).has_value());

  auto credentials = store_->listCredentials(project);
  ASSERT_TRUE(credentials.has_value());
  ASSERT_EQ(credentials->size(), 1u);
  const store::Credential& credential = credentials->front();
  EXPECT_TRUE(credential.id.starts_with("cred_")) << credential.id;
  EXPECT_EQ(credential.scope, "byok");
  EXPECT_EQ(credential.ciphertext.find(kOpenAiKey), std::string::npos);
  EXPECT_EQ(storedKey(project, "openai"), kOpenAiKey);
}

TEST_F(AdminApiTest, PostKeyReplacesPrevious) {
  std::string project = createProject("demo");
  putKey("demo", "openai", kOpenAiKey);
  CallResult result =
      call("POST", "/api/v1/projects/demo/providers/openai/key", keyBody(kOtherKey));
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(storedKey(project, "openai"), kOtherKey);

  auto credentials = store_->listCredentials(project);
  ASSERT_TRUE(credentials.has_value());
  int active = 0;
  for (const auto& credential : *credentials) {
    active += credential.status == "active" ? 1 : 0;
  }
  EXPECT_EQ(active, 1);
}

TEST_F(AdminApiTest, PutMaskedKeyRejected) {
  std::string project = createProject("demo");
  putKey("demo", "openai", kOpenAiKey);
  int changes_before = config_changes_;

  for (const std::string& masked :
       {maskCredential(kOpenAiKey), std::string("sk-****0001"), std::string("sk-...0001")}) {
    CallResult result = call("PUT", "/api/v1/projects/demo/providers/openai/key", keyBody(masked));
    EXPECT_EQ(result.response.status, 400) << masked;
    EXPECT_EQ(result.errorCode(), "invalid_request");
    EXPECT_EQ(result.errorMessage(), "the value looks like a masked key; send the full key");
  }
  EXPECT_EQ(storedKey(project, "openai"), kOpenAiKey);
  EXPECT_EQ(store_->listCredentials(project)->size(), 1u);
  EXPECT_EQ(config_changes_, changes_before);
}

TEST_F(AdminApiTest, PatchMaskedKeyChangesNothing) {
  std::string project = createProject("demo");
  CallResult labelled = call("PUT", "/api/v1/projects/demo/providers/openai/key",
                             R"({"api_key":")" + std::string(kOpenAiKey) + R"(","label":"old"})");
  ASSERT_EQ(labelled.response.status, 200);

  CallResult result = call("PATCH", "/api/v1/projects/demo/providers/openai",
                           R"({"label":"new","status":"disabled","api_key":"sk-test-…0001"})");
  EXPECT_EQ(result.response.status, 400);
  EXPECT_EQ(result.errorMessage(), "the value looks like a masked key; send the full key");

  CallResult entry = call("GET", "/api/v1/projects/demo/providers/openai");
  EXPECT_EQ(entry.str("/key_label"), "old");
  EXPECT_EQ(entry.str("/status"), "enabled");
  EXPECT_EQ(storedKey(project, "openai"), kOpenAiKey);
  EXPECT_EQ(store_->listCredentials(project)->size(), 1u);
}

TEST_F(AdminApiTest, PatchLabelKeepsKey) {
  std::string project = createProject("demo");
  putKey("demo", "openai", kOpenAiKey);

  CallResult result =
      call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"label":"production"})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/key_label"), "production");
  EXPECT_EQ(result.str("/key"), maskCredential(kOpenAiKey));
  EXPECT_EQ(result.str("/key_fingerprint"), credentialFingerprint(kOpenAiKey));
  EXPECT_EQ(storedKey(project, "openai"), kOpenAiKey);
}

TEST_F(AdminApiTest, PatchKeyReplacesAndKeepsLabel) {
  std::string project = createProject("demo");
  putKey("demo", "openai", kOpenAiKey);
  ASSERT_EQ(call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"label":"main"})")
                .response.status,
            200);

  CallResult result = call("PATCH", "/api/v1/projects/demo/providers/openai", keyBody(kOtherKey));
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.response.body.find(kOtherKey), std::string::npos);
  EXPECT_EQ(result.str("/key_label"), "main");
  EXPECT_EQ(storedKey(project, "openai"), kOtherKey);
}

TEST_F(AdminApiTest, PatchLabelWithoutKeyConflicts) {
  createProject("demo");
  CallResult result = call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"label":"x"})");
  EXPECT_EQ(result.response.status, 409);
  EXPECT_EQ(result.errorCode(), "byok_key_missing");
}

TEST_F(AdminApiTest, InvalidKeysRejected) {
  std::string project = createProject("demo");
  const std::vector<std::string> invalid = {
      "",
      "sk-has space-0000000000",
      "sk-tab\t000000000000",
      "sk-newline\n0000000000",
      std::string("sk-nul-") + '\0' + "0000000",
      std::string(4097, 'a'),
      "sk-ünicode-000000000",
  };
  for (const std::string& key : invalid) {
    CallResult result = call("PUT", "/api/v1/projects/demo/providers/openai/key", keyBody(key));
    EXPECT_EQ(result.response.status, 400) << key.size();
    EXPECT_EQ(result.errorCode(), "invalid_request");
    if (!key.empty()) {
      EXPECT_EQ(result.response.body.find(key), std::string::npos);
    }
  }
  EXPECT_FALSE(storedKey(project, "openai").has_value());

  CallResult missing = call("PUT", "/api/v1/projects/demo/providers/openai/key", "{}");
  EXPECT_EQ(missing.response.status, 400);
  EXPECT_EQ(missing.errorMessage(), "\"api_key\" is required");

  CallResult number = call("PUT", "/api/v1/projects/demo/providers/openai/key", R"({"api_key":7})");
  EXPECT_EQ(number.response.status, 400);
  EXPECT_EQ(number.errorMessage(), "\"api_key\" must be a string");

  putKey("demo", "openai", std::string(4096, 'a'));
}

TEST_F(AdminApiTest, InvalidModeRejected) {
  createProject("demo");
  putKey("demo", "openai", kOpenAiKey);
  CallResult other = call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"mode":"free"})");
  EXPECT_EQ(other.response.status, 400);
  EXPECT_EQ(other.errorCode(), "invalid_request");
  EXPECT_EQ(other.errorMessage(), "\"mode\" must be \"byok\" or \"marketplace\"");
  EXPECT_EQ(call("GET", "/api/v1/projects/demo/providers/openai").str("/mode"), "byok");
}

TEST_F(AdminApiTest, PatchStatusTogglesProvider) {
  createProject("demo");
  putKey("demo", "openai", kOpenAiKey);

  CallResult disabled =
      call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"status":"disabled"})");
  ASSERT_EQ(disabled.response.status, 200) << disabled.response.body;
  EXPECT_EQ(disabled.str("/status"), "disabled");
  EXPECT_EQ(disabled.str("/key"), maskCredential(kOpenAiKey));

  CallResult enabled =
      call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"status":"enabled"})");
  EXPECT_EQ(enabled.str("/status"), "enabled");

  CallResult invalid =
      call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"status":"on"})");
  EXPECT_EQ(invalid.response.status, 400);

  CallResult empty = call("PATCH", "/api/v1/projects/demo/providers/openai", "{}");
  EXPECT_EQ(empty.response.status, 400);
}

TEST_F(AdminApiTest, PutKeyKeepsDisabledStatus) {
  createProject("demo");
  putKey("demo", "openai", kOpenAiKey);
  ASSERT_EQ(call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"status":"disabled"})")
                .response.status,
            200);
  putKey("demo", "openai", kOtherKey);
  EXPECT_EQ(call("GET", "/api/v1/projects/demo/providers/openai").str("/status"), "disabled");
}

TEST_F(AdminApiTest, ProviderWritesNotifyConfigChange) {
  createProject("demo");
  int before = config_changes_;
  putKey("demo", "openai", kOpenAiKey);
  EXPECT_EQ(config_changes_, before + 1);
  call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"status":"disabled"})");
  EXPECT_EQ(config_changes_, before + 2);
  call("GET", "/api/v1/projects/demo/providers");
  call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"mode":"free"})");
  EXPECT_EQ(config_changes_, before + 2);
  call("PATCH", "/api/v1/projects/demo/providers/openai", R"({"mode":"marketplace"})");
  EXPECT_EQ(config_changes_, before + 3);
}

}  // namespace
}  // namespace keystore::admin
