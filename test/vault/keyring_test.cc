// The vault's keyring: unwrapping by master key id, reloading, and the key files of rotation.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "common/encoding.h"
#include "common/random.h"
#include "vault/master_key.h"
#include "vault/vault.h"

namespace keystore::vault {
namespace {

constexpr std::string_view kProject = "prj_0123456789abcdef01234567";
constexpr std::string_view kDataKeyId = "dk_0123456789abcdef01234567";

MasterKey freshKey() {
  return generateMasterKey("test");
}

std::string wrapUnder(const MasterKey& key, const Secret& data_key) {
  Vault single(key);
  Result<std::string> wrapped = single.wrapDataKey(kProject, kDataKeyId, data_key);
  EXPECT_TRUE(wrapped.has_value());
  return wrapped.value_or("");
}

TEST(KeyringTest, UnwrapChoosesKeyById) {
  MasterKey old_key = freshKey();
  MasterKey new_key = freshKey();
  Secret data_key = Vault::newDataKey();
  std::string under_old = wrapUnder(old_key, data_key);
  std::string under_new = wrapUnder(new_key, data_key);

  Vault keyring({new_key, old_key}, {});
  for (const std::string& wrapped : {under_old, under_new}) {
    Result<Secret> opened = keyring.unwrapDataKey(kProject, kDataKeyId, wrapped);
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_TRUE(opened->equals(data_key.reveal()));
  }
}

TEST(KeyringTest, WrapUsesCurrentKey) {
  MasterKey old_key = freshKey();
  MasterKey new_key = freshKey();
  Vault keyring({new_key, old_key}, {});

  Result<std::string> wrapped = keyring.wrapDataKey(kProject, kDataKeyId, Vault::newDataKey());
  ASSERT_TRUE(wrapped.has_value());
  EXPECT_EQ(ciphertextKeyId(*wrapped), new_key.id);
  EXPECT_EQ(keyring.masterKeyId(), new_key.id);
  EXPECT_EQ(keyring.knownKeyIds(), (std::vector<std::string>{new_key.id, old_key.id}));
}

TEST(KeyringTest, UnknownIdNamedInError) {
  MasterKey stranger = freshKey();
  MasterKey held = freshKey();
  std::string wrapped = wrapUnder(stranger, Vault::newDataKey());

  Vault keyring(held);
  Result<Secret> opened = keyring.unwrapDataKey(kProject, kDataKeyId, wrapped);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_EQ(opened.error().message, "cannot unwrap data key " + std::string(kDataKeyId) +
                                        " of project " + std::string(kProject) +
                                        ": it was wrapped by master key " + stranger.id +
                                        ", which is not among the loaded keys (" + held.id +
                                        "); add it as the previous master key");
}

TEST(KeyringTest, UnknownIdReloadsOnceAndKeepsOldKeys) {
  MasterKey old_key = freshKey();
  MasterKey new_key = freshKey();
  Secret data_key = Vault::newDataKey();
  std::string under_new = wrapUnder(new_key, data_key);
  std::string under_old = wrapUnder(old_key, data_key);
  std::atomic<int> reloads{0};

  // The files now hold only the new key; the old one must stay usable from memory.
  Vault keyring({old_key}, [&]() -> Result<std::vector<MasterKey>> {
    ++reloads;
    return std::vector<MasterKey>{new_key};
  });
  Result<Secret> opened = keyring.unwrapDataKey(kProject, kDataKeyId, under_new);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(reloads.load(), 1);
  EXPECT_EQ(keyring.masterKeyId(), new_key.id);

  ASSERT_TRUE(keyring.unwrapDataKey(kProject, kDataKeyId, under_old).has_value());
  ASSERT_TRUE(keyring.unwrapDataKey(kProject, kDataKeyId, under_new).has_value());
  EXPECT_EQ(reloads.load(), 1);
}

TEST(KeyringTest, FailedReloadKeepsKeyringAndFails) {
  MasterKey held = freshKey();
  std::string wrapped = wrapUnder(freshKey(), Vault::newDataKey());
  Vault keyring({held}, []() -> Result<std::vector<MasterKey>> {
    return fail(ErrorCode::kNotFound, "gone");
  });

  Result<Secret> opened = keyring.unwrapDataKey(kProject, kDataKeyId, wrapped);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_EQ(keyring.masterKeyId(), held.id);
}

TEST(KeyringTest, CheckValueUnderPreviousKeyAccepted) {
  MasterKey old_key = freshKey();
  MasterKey new_key = freshKey();
  std::string check_value = Vault(old_key).makeCheckValue();

  EXPECT_TRUE(Vault({new_key, old_key}, {}).verifyCheckValue(check_value).has_value());
  EXPECT_EQ(Vault::checkValueKeyId(check_value), old_key.id);
  Result<void> alone = Vault(new_key).verifyCheckValue(check_value);
  ASSERT_FALSE(alone.has_value());
  EXPECT_EQ(alone.error().message, "the master key " + new_key.id +
                                       " does not match the one this database uses (" + old_key.id +
                                       "); start with that key");
}

class KeyringFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("keyring-" + hexEncode(randomBytes(6)));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(KeyringFilesTest, DataDirLoadsPreviousKeyFile) {
  MasterKeyOptions options;
  options.data_dir = dir_.string();
  Result<MasterKey> current = loadMasterKey(options);
  ASSERT_TRUE(current.has_value()) << current.error().message;
  MasterKey previous = freshKey();
  ASSERT_TRUE(writeMasterKeyFile(previousMasterKeyPath(dir_.string()), previous).has_value());

  Result<std::vector<MasterKey>> keys = loadMasterKeyring(options);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, current->id);
  EXPECT_EQ((*keys)[1].id, previous.id);

  struct stat info {};
  ASSERT_EQ(::stat(previousMasterKeyPath(dir_.string()).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(KeyringFilesTest, PreviousKeyFromEnvironmentAndFile) {
  MasterKey current = freshKey();
  MasterKey from_env = freshKey();
  MasterKey from_file = freshKey();
  std::string file = (dir_ / "old.key").string();
  ASSERT_TRUE(writeMasterKeyFile(file, from_file).has_value());

  MasterKeyOptions options;
  options.env_value = Secret(hexEncode(current.key.reveal()));
  options.previous_env_value = Secret(hexEncode(from_env.key.reveal()));
  options.previous_key_file = file;
  Result<std::vector<MasterKey>> keys = loadMasterKeyring(options);
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].id, current.id);
  EXPECT_EQ((*keys)[1].id, from_env.id);
  EXPECT_EQ((*keys)[2].id, from_file.id);
}

}  // namespace
}  // namespace keystore::vault
