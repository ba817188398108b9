#include "vault/master_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/random.h"

namespace keystore::vault {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temporary directory, removed after each test.
class MasterKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "keystore-master-key-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  // Writes `contents` to a file under the test directory and sets its mode.
  std::string writeFile(const std::string& name, const std::string& contents, mode_t mode) {
    std::string path = (root_ / name).string();
    std::ofstream(path) << contents;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  static mode_t modeOf(const std::string& path) {
    struct stat info {};
    EXPECT_EQ(::stat(path.c_str(), &info), 0);
    return info.st_mode & 07777;
  }

  static std::string readText(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
};

std::string expectedId(std::string_view key_bytes) {
  return "mk_" + sha256Hex(key_bytes).substr(0, 16);
}

MasterKeyOptions envOptions(std::string value) {
  MasterKeyOptions options;
  options.env_value = Secret(std::move(value));
  return options;
}

TEST_F(MasterKeyTest, EnvHexAccepted) {
  std::string bytes = randomBytes(32);
  Result<MasterKey> key = loadMasterKey(envOptions(hexEncode(bytes)));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(bytes));
  EXPECT_EQ(key->id, expectedId(bytes));
  EXPECT_EQ(key->source, "environment");
}

TEST_F(MasterKeyTest, EnvUppercaseHexWithWhitespaceAccepted) {
  std::string bytes = randomBytes(32);
  std::string upper = hexEncode(bytes);
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  Result<MasterKey> key = loadMasterKey(envOptions("  " + upper + "\n"));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(bytes));
}

TEST_F(MasterKeyTest, EnvBase64Accepted) {
  std::string bytes = randomBytes(32);
  std::string text = base64Encode(bytes);
  ASSERT_EQ(text.size(), 44u);
  Result<MasterKey> key = loadMasterKey(envOptions(text));
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(bytes));
  EXPECT_EQ(key->id, expectedId(bytes));
  EXPECT_EQ(key->source, "environment");
}

TEST_F(MasterKeyTest, EnvWrongLengthRejected) {
  std::vector<std::string> values = {
      hexEncode(randomBytes(31)),         // 62 hex digits
      hexEncode(randomBytes(32)) + "ab",  // 66 hex digits
      base64Encode(randomBytes(16)),      // 24 base64 characters
      base64Encode(randomBytes(31)),      // 44 characters, but 31 bytes
      base64Encode(randomBytes(33)),      // 45 bytes
      "not-a-master-key",
  };
  for (const std::string& value : values) {
    Result<MasterKey> key = loadMasterKey(envOptions(value));
    ASSERT_FALSE(key.has_value()) << value.size() << " characters accepted";
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidRequest);
    EXPECT_TRUE(key.error().message.starts_with("KEYSTORE_MASTER_KEY is invalid: "))
        << key.error().message;
    EXPECT_EQ(key.error().message.find(value), std::string::npos) << key.error().message;
  }
}

TEST_F(MasterKeyTest, EnvLengthNamedInError) {
  Result<MasterKey> key = loadMasterKey(envOptions(hexEncode(randomBytes(31))));
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("has 62 hex digits"), std::string::npos)
      << key.error().message;
  EXPECT_NE(key.error().message.find("openssl rand -hex 32"), std::string::npos);
}

TEST_F(MasterKeyTest, EnvNonHexRejected) {
  std::string value = hexEncode(randomBytes(32));
  value[10] = 'g';
  Result<MasterKey> key = loadMasterKey(envOptions(value));
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("not all are hex digits"), std::string::npos)
      << key.error().message;
}

TEST_F(MasterKeyTest, EnvWhitespaceOnlyRejected) {
  Result<MasterKey> key = loadMasterKey(envOptions(" \n"));
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("empty"), std::string::npos) << key.error().message;
}

TEST_F(MasterKeyTest, EnvTakesPrecedenceOverFileAndDataDir) {
  std::string file_bytes = randomBytes(32);
  std::string env_bytes = randomBytes(32);
  MasterKeyOptions options = envOptions(hexEncode(env_bytes));
  options.key_file = writeFile("key", hexEncode(file_bytes) + "\n", 0600);
  options.data_dir = (root_ / "data").string();

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(env_bytes));
  EXPECT_EQ(key->source, "environment");
  EXPECT_FALSE(fs::exists(root_ / "data"));
}

TEST_F(MasterKeyTest, KeyFileTakesPrecedenceOverDataDir) {
  std::string bytes = randomBytes(32);
  MasterKeyOptions options;
  options.key_file = writeFile("key", hexEncode(bytes) + "\n", 0600);
  options.data_dir = (root_ / "data").string();

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(bytes));
  EXPECT_EQ(key->id, expectedId(bytes));
  EXPECT_EQ(key->source, "file " + options.key_file);
  EXPECT_FALSE(fs::exists(root_ / "data" / "master.key"));
}

TEST_F(MasterKeyTest, KeyFileInBase64Accepted) {
  std::string bytes = randomBytes(32);
  MasterKeyOptions options;
  options.key_file = writeFile("key", base64Encode(bytes) + "\n", 0400);
  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_TRUE(key.has_value()) << key.error().message;
  EXPECT_TRUE(key->key.equals(bytes));
}

TEST_F(MasterKeyTest, KeyFileWithMode0644Rejected) {
  std::string text = hexEncode(randomBytes(32));
  MasterKeyOptions options;
  options.key_file = writeFile("key", text + "\n", 0644);

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, ErrorCode::kInvalidRequest);
  const std::string& message = key.error().message;
  EXPECT_NE(message.find("mode 0644"), std::string::npos) << message;
  EXPECT_NE(message.find(options.key_file), std::string::npos) << message;
  EXPECT_NE(message.find("chmod 600"), std::string::npos) << message;
  EXPECT_EQ(message.find(text), std::string::npos) << message;
}

TEST_F(MasterKeyTest, KeyFileWithGroupReadRejected) {
  MasterKeyOptions options;
  options.key_file = writeFile("key", hexEncode(randomBytes(32)) + "\n", 0640);
  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("mode 0640"), std::string::npos) << key.error().message;
}

TEST_F(MasterKeyTest, MissingKeyFileRejected) {
  MasterKeyOptions options;
  options.key_file = (root_ / "absent.key").string();
  options.data_dir = (root_ / "data").string();

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, ErrorCode::kNotFound);
  EXPECT_NE(key.error().message.find(options.key_file), std::string::npos);
  // A missing named key file never falls back to generating one.
  EXPECT_FALSE(fs::exists(options.key_file));
  EXPECT_FALSE(fs::exists(root_ / "data" / "master.key"));
}

TEST_F(MasterKeyTest, KeyFileWithInvalidContentRejected) {
  std::string contents = "not-a-key-at-all";
  MasterKeyOptions options;
  options.key_file = writeFile("key", contents, 0600);

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, ErrorCode::kInvalidRequest);
  EXPECT_TRUE(
      key.error().message.starts_with("the master key file " + options.key_file + " is invalid: "))
      << key.error().message;
  EXPECT_EQ(key.error().message.find(contents), std::string::npos);
}

TEST_F(MasterKeyTest, GeneratedKeyFileHasMode0600AndIsReused) {
  MasterKeyOptions options;
  options.data_dir = (root_ / "nested" / "data").string();
  std::string path = options.data_dir + "/master.key";

  Result<MasterKey> first = loadMasterKey(options);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->source, "generated " + path);
  EXPECT_EQ(first->key.size(), 32u);
  EXPECT_EQ(modeOf(options.data_dir), 0700u);
  EXPECT_EQ(modeOf(path), 0600u);

  std::string text = readText(path);
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.substr(0, 64), hexEncode(first->key.reveal()));
  EXPECT_EQ(first->id, expectedId(first->key.reveal()));

  Result<MasterKey> second = loadMasterKey(options);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->source, "file " + path);
  EXPECT_EQ(second->id, first->id);
  EXPECT_TRUE(second->key.equals(first->key.reveal()));
  EXPECT_EQ(readText(path), text);
}

TEST_F(MasterKeyTest, GenerationLeavesNoStagingFiles) {
  MasterKeyOptions options;
  options.data_dir = (root_ / "data").string();
  ASSERT_TRUE(loadMasterKey(options).has_value());

  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(options.data_dir)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"master.key"});
}

TEST_F(MasterKeyTest, WidenedGeneratedKeyFileRejected) {
  MasterKeyOptions options;
  options.data_dir = (root_ / "data").string();
  ASSERT_TRUE(loadMasterKey(options).has_value());
  std::string path = options.data_dir + "/master.key";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);

  Result<MasterKey> key = loadMasterKey(options);
  ASSERT_FALSE(key.has_value());
  EXPECT_NE(key.error().message.find("mode 0644"), std::string::npos) << key.error().message;
  // The refused file is left alone, not replaced by a new key.
  EXPECT_EQ(modeOf(path), 0644u);
}

TEST_F(MasterKeyTest, ConcurrentFirstStartsAgreeOnOneKey) {
  constexpr int kRounds = 10;
  constexpr int kThreads = 4;
  for (int round = 0; round < kRounds; ++round) {
    MasterKeyOptions options;
    options.data_dir = (root_ / ("data" + std::to_string(round))).string();

    std::vector<std::string> ids(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&options, &ids, i] {
        Result<MasterKey> key = loadMasterKey(options);
        ids[i] = key ? key->id : "error: " + key.error().message;
      });
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    for (int i = 1; i < kThreads; ++i) {
      EXPECT_EQ(ids[i], ids[0]) << "round " << round;
    }
    EXPECT_TRUE(ids[0].starts_with("mk_")) << ids[0];
  }
}

TEST_F(MasterKeyTest, NothingConfiguredRejected) {
  Result<MasterKey> key = loadMasterKey(MasterKeyOptions{});
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().code, ErrorCode::kInvalidRequest);
  EXPECT_NE(key.error().message.find("KEYSTORE_MASTER_KEY"), std::string::npos);
}

TEST_F(MasterKeyTest, ShortHexKeyRejected) {
  Result<Secret> parsed = parseMasterKeyText(hexEncode(randomBytes(16)));
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest);
  EXPECT_NE(parsed.error().message.find("has 32 hex digits"), std::string::npos)
      << parsed.error().message;
}

}  // namespace
}  // namespace keystore::vault
