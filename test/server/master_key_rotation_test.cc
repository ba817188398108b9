// Master-key rotation against a real SQLite store: resuming, the check value and the key files.
#include "server/master_key_rotation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/random.h"
#include "store/sqlite/sqlite_store.h"
#include "vault/master_key.h"
#include "vault/vault.h"

namespace keystore::server {
namespace {

constexpr int kProjects = 6;

class MasterKeyRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rotation-" + hexEncode(randomBytes(6)));
    std::filesystem::create_directories(dir_);
    auto opened = store::openSqliteStore((dir_ / "keystore.db").string());
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);

    vault::MasterKeyOptions options;
    options.data_dir = dir_.string();
    auto key = vault::loadMasterKey(options);
    ASSERT_TRUE(key.has_value()) << key.error().message;
    old_key_ = *key;
    vault::Vault vault(old_key_);
    ASSERT_TRUE(store_->putSetting(std::string(kCheckValueSetting), vault.makeCheckValue()));
    ASSERT_TRUE(store_->createOrganization(store::Organization{"org", "Acme", 1}));
    for (int i = 0; i < kProjects; ++i) {
      addProjectWithKey(vault, i);
    }
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  void addProjectWithKey(const vault::Vault& vault, int index) {
    std::string project = "prj_" + std::to_string(index);
    std::string key_id = "dk_" + std::to_string(index);
    Secret data_key = vault::Vault::newDataKey();
    auto wrapped = vault.wrapDataKey(project, key_id, data_key);
    ASSERT_TRUE(wrapped.has_value());
    store::DataKey stored{project, key_id, vault.masterKeyId(), *wrapped, 1};
    ASSERT_TRUE(store_->createProject(
        store::Project{project, "org", "p" + std::to_string(index), 1}, stored));

    std::string credential_id = "cred_" + std::to_string(index);
    std::string plaintext = "sk-test-ROTATE-" + std::to_string(index);
    auto sealed = vault::Vault::encryptCredential(
        data_key, key_id, {project, "openai", credential_id}, Secret(plaintext));
    ASSERT_TRUE(sealed.has_value());
    store::Credential credential;
    credential.id = credential_id;
    credential.project_id = project;
    credential.provider = "openai";
    credential.data_key_id = key_id;
    credential.ciphertext = *sealed;
    credential.created_at = 1;
    ASSERT_TRUE(store_->putByokCredential(credential));
    plaintexts_[credential_id] = plaintext;
  }

  std::map<std::string, std::string> ciphertexts() {
    std::map<std::string, std::string> result;
    auto credentials = store_->listActiveCredentials();
    EXPECT_TRUE(credentials.has_value());
    for (const store::Credential& credential :
         credentials.value_or(std::vector<store::Credential>{})) {
      result[credential.id] = credential.ciphertext;
    }
    return result;
  }

  // Decrypts every credential through a vault holding only `key`.
  void expectEveryCredentialOpensWith(const vault::MasterKey& key) {
    vault::Vault vault(key);
    auto data_keys = store_->listDataKeys();
    ASSERT_TRUE(data_keys.has_value());
    std::map<std::string, Secret> opened_keys;
    for (const store::DataKey& data_key : *data_keys) {
      EXPECT_EQ(data_key.master_key_id, key.id) << data_key.key_id;
      auto opened = vault.unwrapDataKey(data_key.project_id, data_key.key_id, data_key.wrapped);
      ASSERT_TRUE(opened.has_value()) << opened.error().message;
      opened_keys[data_key.key_id] = *opened;
    }
    auto credentials = store_->listActiveCredentials();
    ASSERT_TRUE(credentials.has_value());
    ASSERT_EQ(credentials->size(), static_cast<size_t>(kProjects));
    for (const store::Credential& credential : *credentials) {
      auto plain = vault::Vault::decryptCredential(
          opened_keys.at(credential.data_key_id),
          {credential.project_id, credential.provider, credential.id}, credential.ciphertext);
      ASSERT_TRUE(plain.has_value()) << plain.error().message;
      EXPECT_EQ(plain->reveal(), plaintexts_.at(credential.id));
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  vault::MasterKey old_key_;
  std::map<std::string, std::string> plaintexts_;
};

TEST_F(MasterKeyRotationTest, InterruptedRotationResumes) {
  std::map<std::string, std::string> before = ciphertexts();
  bool resumed = true;
  auto keys = prepareDataDirRotation(*store_, dir_.string(), resumed);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  EXPECT_FALSE(resumed);
  ASSERT_EQ(keys->size(), 2u);
  vault::MasterKey new_key = (*keys)[0];
  EXPECT_EQ((*keys)[1].id, old_key_.id);

  // The first run stops half way, as a crash after three committed rows would leave it.
  {
    vault::Vault keyring(*keys, {});
    auto half = rewrapAllDataKeys(*store_, keyring, RotationOptions{2, 3}, {});
    ASSERT_TRUE(half.has_value()) << half.error().message;
    EXPECT_EQ(half->moved, 3u);
    EXPECT_EQ(half->remaining, 3u);
    EXPECT_FALSE(half->check_value_updated);
  }
  auto uses = countUsesOfMasterKey(*store_, old_key_.id);
  ASSERT_TRUE(uses.has_value());
  EXPECT_EQ(*uses, 4u);  // three data keys and the check value

  // Running again finds the files of the unfinished rotation instead of starting another.
  auto again = prepareDataDirRotation(*store_, dir_.string(), resumed);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_TRUE(resumed);
  EXPECT_EQ((*again)[0].id, new_key.id);
  vault::Vault keyring(*again, {});
  std::vector<size_t> progress;
  auto rest = rewrapAllDataKeys(*store_, keyring, RotationOptions{2, 0},
                                [&](size_t moved, size_t) { progress.push_back(moved); });
  ASSERT_TRUE(rest.has_value()) << rest.error().message;
  EXPECT_EQ(rest->moved, 3u);
  EXPECT_EQ(rest->remaining, 0u);
  EXPECT_TRUE(rest->check_value_updated);
  EXPECT_EQ(progress, (std::vector<size_t>{2, 3}));

  EXPECT_EQ(ciphertexts(), before);
  expectEveryCredentialOpensWith(new_key);
  auto check_value = store_->getSetting(std::string(kCheckValueSetting));
  ASSERT_TRUE(check_value.has_value());
  ASSERT_TRUE(check_value->has_value());
  EXPECT_TRUE(vault::Vault(new_key).verifyCheckValue(**check_value).has_value());
  EXPECT_FALSE(vault::Vault(old_key_).verifyCheckValue(**check_value).has_value());
}

TEST_F(MasterKeyRotationTest, CrashBetweenKeyFilesRecovered) {
  // The previous file exists but master.key was not yet replaced.
  ASSERT_TRUE(vault::writeMasterKeyFile(vault::previousMasterKeyPath(dir_.string()), old_key_));
  bool resumed = true;
  auto keys = prepareDataDirRotation(*store_, dir_.string(), resumed);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  EXPECT_FALSE(resumed);
  EXPECT_NE((*keys)[0].id, old_key_.id);
  EXPECT_EQ((*keys)[1].id, old_key_.id);
  auto on_disk = vault::readMasterKeyFile(vault::masterKeyPath(dir_.string()));
  ASSERT_TRUE(on_disk.has_value());
  EXPECT_EQ(on_disk->id, (*keys)[0].id);
}

TEST_F(MasterKeyRotationTest, FinishRefusedWhileOldKeyInUse) {
  bool resumed = false;
  auto keys = prepareDataDirRotation(*store_, dir_.string(), resumed);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;

  auto early = finishDataDirRotation(*store_, dir_.string());
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().code, ErrorCode::kConflict);
  EXPECT_EQ(early.error().message, "7 stored values still use the previous master key " +
                                       old_key_.id +
                                       "; run 'keystore rotate master-key' again to move them");

  vault::Vault keyring(*keys, {});
  ASSERT_TRUE(rewrapAllDataKeys(*store_, keyring, RotationOptions{}, {}));
  auto finished = finishDataDirRotation(*store_, dir_.string());
  ASSERT_TRUE(finished.has_value()) << finished.error().message;
  EXPECT_EQ(*finished, old_key_.id);
  EXPECT_FALSE(std::filesystem::exists(vault::previousMasterKeyPath(dir_.string())));
}

TEST_F(MasterKeyRotationTest, UnknownWrappingKeyStopsWithItsId) {
  vault::MasterKey unrelated = vault::generateMasterKey("test");
  vault::MasterKey target = vault::generateMasterKey("test");
  vault::Vault keyring({target, unrelated}, {});

  auto report = rewrapAllDataKeys(*store_, keyring, RotationOptions{}, {});
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_NE(report.error().message.find(old_key_.id), std::string::npos) << report.error().message;
}

}  // namespace
}  // namespace keystore::server
