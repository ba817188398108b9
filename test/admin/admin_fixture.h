// AdminApiTest: an AdminApi over a fresh SQLite store in a temporary directory, the built-in
// catalog and a vault with a fixed test master key, plus two organizations with an owner key
// each and an operator owner key in the first, for the management API tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "admin/admin_api.h"
#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/secret.h"
#include "store/sqlite/sqlite_store.h"
#include "tokens/agent_token.h"
#include "vault/vault.h"

namespace keystore::admin {

struct CallResult {
  ApiResponse response;
  boost::json::value json;  // the parsed body, null when it is not JSON

  // The value of a response header, or "" when absent.
  std::string header(std::string_view name) const {
    for (const auto& [key, value] : response.headers) {
      if (key == name) {
        return value;
      }
    }
    return "";
  }
  std::string errorCode() const { return str("/error/code"); }
  std::string errorMessage() const { return str("/error/message"); }
  // The string at a JSON pointer such as "/key_label", or "" when absent or not a string.
  std::string str(std::string_view pointer) const {
    boost::system::error_code error;
    const boost::json::value* value = json.find_pointer(pointer, error);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
  }
};

class AdminApiTest : public ::testing::Test {
 protected:
  static vault::MasterKey testMasterKey() {
    return vault::MasterKey{Secret(std::string(32, '\x42')), "mk_0123456789abcdef", "test"};
  }

  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("keystore-admin-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);

    auto opened = store::openSqliteStore((directory_ / "keystore.db").string());
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);

    auto catalog = catalog::Catalog::builtIn();
    ASSERT_TRUE(catalog.has_value()) << catalog.error().message;
    catalog_ = std::make_unique<catalog::Catalog>(std::move(*catalog));
    vault_ = std::make_unique<vault::Vault>(testMasterKey());

    AdminApiOptions options;
    options.on_config_change = [this] { ++config_changes_; };
    api_ = std::make_unique<AdminApi>(*store_, *vault_, *catalog_, std::move(options));

    org_a_ = createOrganization("org-a");
    org_b_ = createOrganization("org-b");
    key_a_ = createAdminKey(org_a_, "owner");
    key_b_ = createAdminKey(org_b_, "owner");
    operator_key_ = createAdminKey(org_a_, "owner", 0, 0, true);
  }

  void TearDown() override {
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::string createOrganization(const std::string& name) {
    auto created = store_->createOrganization(store::Organization{"", name, nowUnixMillis()});
    EXPECT_TRUE(created.has_value());
    return created ? created->id : "";
  }

  // Creates an admin key of `role` in the organization and returns its plaintext.
  std::string createAdminKey(const std::string& organization_id, const std::string& role,
                             int64_t expires_at = 0, int64_t revoked_at = 0,
                             bool is_operator = false) {
    Secret key = tokens::generateAdminKey();
    store::AdminKey record;
    record.key_hash = tokens::hashToken(key.reveal());
    record.name = "test " + role;
    record.role = role;
    record.organization_id = organization_id;
    record.expires_at = expires_at;
    record.revoked_at = revoked_at;
    record.is_operator = is_operator;
    record.created_at = nowUnixMillis();
    auto created = store_->createAdminKey(record);
    EXPECT_TRUE(created.has_value()) << (created ? "" : created.error().message);
    return std::string(key.reveal());
  }

  // Calls the API with `key` (none when empty) and parses the body.
  CallResult callWithKey(const std::string& key, const std::string& method,
                         const std::string& target, const std::string& body = "") {
    ApiRequest request;
    request.method = method;
    request.target = target;
    request.authorization = key.empty() ? "" : "Bearer " + key;
    request.body = body;
    request.remote_address = "127.0.0.1";
    request.request_id = "req_test";

    CallResult result{api_->handle(request), nullptr};
    boost::system::error_code error;
    boost::json::value parsed = boost::json::parse(result.response.body, error);
    if (!error) {
      result.json = std::move(parsed);
    }
    return result;
  }

  // Calls the API as organization A's owner.
  CallResult call(const std::string& method, const std::string& target,
                  const std::string& body = "") {
    return callWithKey(key_a_, method, target, body);
  }

  // Calls the API as the operator (an owner of organization A).
  CallResult callAsOperator(const std::string& method, const std::string& target,
                            const std::string& body = "") {
    return callWithKey(operator_key_, method, target, body);
  }

  // Creates a project as organization A and returns its id.
  std::string createProject(const std::string& name) {
    CallResult result = call("POST", "/api/v1/projects", R"({"name":")" + name + R"("})");
    EXPECT_EQ(result.response.status, 201) << result.response.body;
    return result.str("/id");
  }

  std::string createAgent(const std::string& project, const std::string& name) {
    CallResult result =
        call("POST", "/api/v1/projects/" + project + "/agents", R"({"name":")" + name + R"("})");
    EXPECT_EQ(result.response.status, 201) << result.response.body;
    return result.str("/id");
  }

  // Stores `key` for `provider` through PUT and expects success.
  void putKey(const std::string& project, const std::string& provider, const std::string& key) {
    CallResult result =
        call("PUT", "/api/v1/projects/" + project + "/providers/" + provider + "/key",
             boost::json::serialize(boost::json::object{{"api_key", key}}));
    ASSERT_EQ(result.response.status, 200) << result.response.body;
  }

  // The active credential of a provider, decrypted through the vault, or nullopt.
  std::optional<std::string> storedKey(const std::string& project_id, const std::string& provider) {
    auto credentials = store_->listCredentials(project_id);
    EXPECT_TRUE(credentials.has_value());
    auto keys = store_->listDataKeys();
    EXPECT_TRUE(keys.has_value());
    for (const store::Credential& credential : *credentials) {
      if (credential.provider != provider || credential.status != "active") {
        continue;
      }
      for (const store::DataKey& data_key : *keys) {
        if (data_key.key_id != credential.data_key_id) {
          continue;
        }
        auto unwrapped = vault_->unwrapDataKey(project_id, data_key.key_id, data_key.wrapped);
        EXPECT_TRUE(unwrapped.has_value());
        auto plaintext = vault::Vault::decryptCredential(
            *unwrapped, {project_id, provider, credential.id}, credential.ciphertext);
        EXPECT_TRUE(plaintext.has_value());
        return std::string(plaintext->reveal());
      }
    }
    return std::nullopt;
  }

  // The plaintext of a pool credential, decrypted with the pool data key and the binding of
  // its scope, or nullopt when it does not decrypt.
  std::optional<std::string> poolPlaintext(const std::string& credential_id) {
    auto credential = store_->getCredential(credential_id);
    EXPECT_TRUE(credential.has_value());
    auto keys = store_->listDataKeys();
    EXPECT_TRUE(keys.has_value());
    if (!credential || !keys) {
      return std::nullopt;
    }
    for (const store::DataKey& data_key : *keys) {
      if (data_key.key_id != credential->data_key_id || !data_key.project_id.empty()) {
        continue;
      }
      auto unwrapped = vault_->unwrapDataKey("", data_key.key_id, data_key.wrapped);
      EXPECT_TRUE(unwrapped.has_value());
      if (!unwrapped) {
        return std::nullopt;
      }
      auto plaintext = vault::Vault::decryptCredential(
          *unwrapped, {credential->project_id, credential->provider, credential->id},
          credential->ciphertext);
      if (!plaintext) {
        return std::nullopt;
      }
      return std::string(plaintext->reveal());
    }
    return std::nullopt;
  }

  std::filesystem::path directory_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<vault::Vault> vault_;
  std::unique_ptr<AdminApi> api_;
  int config_changes_ = 0;
  std::string org_a_;
  std::string org_b_;
  std::string key_a_;
  std::string key_b_;
  std::string operator_key_;
};

}  // namespace keystore::admin
