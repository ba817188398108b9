#include "vault/vault.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cctype>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>

#include "common/encoding.h"
#include "common/random.h"
#include "vault/aead.h"
#include "vault/master_key.h"

namespace keystore::vault {
namespace {

constexpr std::string_view kProject = "prj_0123456789abcdef01234567";
constexpr std::string_view kProvider = "openai";
constexpr std::string_view kCredentialId = "cred_0123456789abcdef01234567";
constexpr std::string_view kDataKeyId = "dk_0123456789abcdef01234567";
constexpr std::string_view kApiKey = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz";

MasterKey randomMasterKey() {
  MasterKeyOptions options;
  options.env_value = Secret(hexEncode(randomBytes(32)));
  Result<MasterKey> key = loadMasterKey(options);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

CredentialBinding defaultBinding() {
  return {kProject, kProvider, kCredentialId};
}

std::string sealDefaultCredential(const Secret& data_key) {
  Result<std::string> sealed = Vault::encryptCredential(data_key, kDataKeyId, defaultBinding(),
                                                        Secret(std::string(kApiKey)));
  EXPECT_TRUE(sealed.has_value());
  return sealed.value_or("");
}

// Error messages must not carry the key in any of its usual spellings.
void expectNoKeyMaterial(const std::string& message, const Secret& key) {
  EXPECT_EQ(message.find(key.reveal()), std::string::npos);
  EXPECT_EQ(message.find(hexEncode(key.reveal())), std::string::npos);
  EXPECT_EQ(message.find(base64Encode(key.reveal())), std::string::npos);
}

TEST(VaultTest, DataKeyRoundTrip) {
  Vault vault(randomMasterKey());
  Secret data_key = Vault::newDataKey();
  ASSERT_EQ(data_key.size(), 32u);

  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, data_key);
  ASSERT_TRUE(wrapped.has_value()) << wrapped.error().message;
  Result<Secret> unwrapped = vault.unwrapDataKey(kProject, kDataKeyId, *wrapped);
  ASSERT_TRUE(unwrapped.has_value()) << unwrapped.error().message;
  EXPECT_TRUE(unwrapped->equals(data_key.reveal()));
}

TEST(VaultTest, NewDataKeysDiffer) {
  Secret first = Vault::newDataKey();
  Secret second = Vault::newDataKey();
  EXPECT_FALSE(first.equals(second.reveal()));
}

TEST(VaultTest, CredentialRoundTrip) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  Result<Secret> opened = Vault::decryptCredential(data_key, defaultBinding(), sealed);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->reveal(), kApiKey);
}

TEST(VaultTest, EmptyAndLargePlaintextsRoundTrip) {
  Secret data_key = Vault::newDataKey();
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{100000}}) {
    Secret plaintext(randomBytes(size));
    Result<std::string> sealed =
        Vault::encryptCredential(data_key, kDataKeyId, defaultBinding(), plaintext);
    ASSERT_TRUE(sealed.has_value()) << "size " << size;
    Result<Secret> opened = Vault::decryptCredential(data_key, defaultBinding(), *sealed);
    ASSERT_TRUE(opened.has_value()) << "size " << size;
    EXPECT_TRUE(opened->equals(plaintext.reveal())) << "size " << size;
  }
}

TEST(VaultTest, CiphertextFollowsV1Layout) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  ASSERT_EQ(sealed.size(), 2 + kDataKeyId.size() + 12 + kApiKey.size() + 16);
  EXPECT_EQ(static_cast<unsigned char>(sealed[0]), 0x01);
  EXPECT_EQ(static_cast<unsigned char>(sealed[1]), kDataKeyId.size());
  EXPECT_EQ(sealed.substr(2, kDataKeyId.size()), kDataKeyId);
  EXPECT_EQ(ciphertextKeyId(sealed), kDataKeyId);
  EXPECT_EQ(sealed.find(kApiKey), std::string::npos);
}

TEST(VaultTest, CiphertextKeyIdEmptyForForeignBytes) {
  EXPECT_EQ(ciphertextKeyId(""), "");
  EXPECT_EQ(ciphertextKeyId("plain text"), "");
  EXPECT_EQ(ciphertextKeyId(std::string("\x02\x01k") + std::string(28, 'x')), "");
  // Version 1 with a key id of length 0 is not a valid header.
  EXPECT_EQ(ciphertextKeyId(std::string("\x01\x00", 2) + std::string(28, 'x')), "");
}

TEST(VaultTest, WrappedDataKeyNamesMasterKeyId) {
  Vault vault(randomMasterKey());
  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, Vault::newDataKey());
  ASSERT_TRUE(wrapped.has_value());
  EXPECT_EQ(ciphertextKeyId(*wrapped), vault.masterKeyId());
}

TEST(VaultTest, EveryFlippedBitOfCredentialRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  size_t rejected = 0;
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    std::string altered = sealed;
    altered[bit / 8] = static_cast<char>(altered[bit / 8] ^ (1 << (bit % 8)));
    Result<Secret> opened = Vault::decryptCredential(data_key, defaultBinding(), altered);
    ASSERT_FALSE(opened.has_value()) << "bit " << bit << " flipped was accepted";
    EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable) << "bit " << bit;
    ++rejected;
  }
  EXPECT_EQ(rejected, sealed.size() * 8);
}

TEST(VaultTest, TruncatedCredentialRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  for (size_t size = 0; size < sealed.size(); ++size) {
    Result<Secret> opened =
        Vault::decryptCredential(data_key, defaultBinding(), sealed.substr(0, size));
    ASSERT_FALSE(opened.has_value()) << "accepted at length " << size;
    EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  }
  Result<Secret> extended = Vault::decryptCredential(data_key, defaultBinding(), sealed + "x");
  EXPECT_FALSE(extended.has_value());
}

TEST(VaultTest, CredentialMovedToOtherProjectRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  CredentialBinding moved{"prj_other", kProvider, kCredentialId};
  Result<Secret> opened = Vault::decryptCredential(data_key, moved, sealed);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_NE(opened.error().message.find("prj_other"), std::string::npos);
}

TEST(VaultTest, CredentialMovedToOtherProviderRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  CredentialBinding moved{kProject, "anthropic", kCredentialId};
  Result<Secret> opened = Vault::decryptCredential(data_key, moved, sealed);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST(VaultTest, CredentialMovedToOtherIdRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  CredentialBinding moved{kProject, kProvider, "cred_other"};
  Result<Secret> opened = Vault::decryptCredential(data_key, moved, sealed);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST(VaultTest, BindingFieldBoundariesAreUnambiguous) {
  // Without length prefixes these two bindings would concatenate to the same bytes.
  Secret data_key = Vault::newDataKey();
  CredentialBinding original{"prj_a", "openai", "cred_1"};
  Result<std::string> sealed =
      Vault::encryptCredential(data_key, kDataKeyId, original, Secret(std::string(kApiKey)));
  ASSERT_TRUE(sealed.has_value());

  CredentialBinding shifted{"prj_ao", "penai", "cred_1"};
  EXPECT_FALSE(Vault::decryptCredential(data_key, shifted, *sealed).has_value());
}

TEST(VaultTest, CredentialUnderOtherDataKeyRejected) {
  std::string sealed = sealDefaultCredential(Vault::newDataKey());
  Result<Secret> opened = Vault::decryptCredential(Vault::newDataKey(), defaultBinding(), sealed);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_NE(opened.error().message.find(kCredentialId), std::string::npos);
  EXPECT_NE(opened.error().message.find(kDataKeyId), std::string::npos);
}

TEST(VaultTest, SwappedKeyIdRejected) {
  Secret data_key = Vault::newDataKey();
  std::string sealed = sealDefaultCredential(data_key);

  // Same length, so the layout still parses and only the authenticated header differs.
  std::string swapped = sealed;
  swapped.replace(2, kDataKeyId.size(), "dk_fedcba9876543210fedcba98");
  ASSERT_EQ(swapped.size(), sealed.size());
  ASSERT_EQ(ciphertextKeyId(swapped), "dk_fedcba9876543210fedcba98");
  EXPECT_FALSE(Vault::decryptCredential(data_key, defaultBinding(), swapped).has_value());
}

TEST(VaultTest, CredentialCannotBeOpenedAsDataKey) {
  // A credential sealed under the master key bytes must not unwrap as a data key.
  MasterKey master = randomMasterKey();
  Secret master_bytes = master.key;
  std::string master_id = master.id;
  Vault vault(std::move(master));

  Result<std::string> sealed = Vault::encryptCredential(
      master_bytes, master_id, {kProject, kProvider, kDataKeyId}, Vault::newDataKey());
  ASSERT_TRUE(sealed.has_value());
  EXPECT_FALSE(vault.unwrapDataKey(kProject, kDataKeyId, *sealed).has_value());
}

TEST(VaultTest, WrappedDataKeyMovedToOtherProjectRejected) {
  Vault vault(randomMasterKey());
  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, Vault::newDataKey());
  ASSERT_TRUE(wrapped.has_value());

  Result<Secret> other_project = vault.unwrapDataKey("prj_other", kDataKeyId, *wrapped);
  ASSERT_FALSE(other_project.has_value());
  EXPECT_EQ(other_project.error().code, ErrorCode::kByokKeyUnreadable);
  Result<Secret> other_id = vault.unwrapDataKey(kProject, "dk_other", *wrapped);
  ASSERT_FALSE(other_id.has_value());
  EXPECT_EQ(other_id.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST(VaultTest, EveryFlippedBitOfWrappedDataKeyRejected) {
  Vault vault(randomMasterKey());
  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, Vault::newDataKey());
  ASSERT_TRUE(wrapped.has_value());

  for (size_t bit = 0; bit < wrapped->size() * 8; ++bit) {
    std::string altered = *wrapped;
    altered[bit / 8] = static_cast<char>(altered[bit / 8] ^ (1 << (bit % 8)));
    Result<Secret> opened = vault.unwrapDataKey(kProject, kDataKeyId, altered);
    ASSERT_FALSE(opened.has_value()) << "bit " << bit << " flipped was accepted";
    EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable) << "bit " << bit;
  }
}

TEST(VaultTest, UnwrapUnderOtherMasterKeyNamesBothIds) {
  Vault original(randomMasterKey());
  Vault other(randomMasterKey());
  Result<std::string> wrapped = original.wrapDataKey(kProject, kDataKeyId, Vault::newDataKey());
  ASSERT_TRUE(wrapped.has_value());

  Result<Secret> opened = other.unwrapDataKey(kProject, kDataKeyId, *wrapped);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_NE(opened.error().message.find(original.masterKeyId()), std::string::npos);
  EXPECT_NE(opened.error().message.find(other.masterKeyId()), std::string::npos);
  EXPECT_NE(opened.error().message.find(kDataKeyId), std::string::npos);
}

TEST(VaultTest, WrongSizedDataKeyRejected) {
  Vault vault(randomMasterKey());
  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, Secret(randomBytes(16)));
  ASSERT_FALSE(wrapped.has_value());
  EXPECT_EQ(wrapped.error().code, ErrorCode::kInternal);

  Result<std::string> sealed = Vault::encryptCredential(Secret(randomBytes(31)), kDataKeyId,
                                                        defaultBinding(), Secret(std::string("x")));
  ASSERT_FALSE(sealed.has_value());
  EXPECT_EQ(sealed.error().code, ErrorCode::kInternal);

  Result<Secret> opened = Vault::decryptCredential(Secret(randomBytes(16)), defaultBinding(),
                                                   sealDefaultCredential(Vault::newDataKey()));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST(VaultTest, SharedPoolBindingIsNotAnyProjects) {
  Secret data_key = Vault::newDataKey();
  Secret plaintext{std::string(kApiKey)};
  CredentialBinding shared{"", kProvider, kCredentialId};
  Result<std::string> sealed = Vault::encryptCredential(data_key, kDataKeyId, shared, plaintext);
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  Result<Secret> opened = Vault::decryptCredential(data_key, shared, *sealed);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->reveal(), kApiKey);
  // Copied under a project's name, the shared credential does not open.
  Result<Secret> moved = Vault::decryptCredential(data_key, defaultBinding(), *sealed);
  ASSERT_FALSE(moved.has_value());
  EXPECT_EQ(moved.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST(VaultTest, EmptyBindingFieldRejected) {
  Secret data_key = Vault::newDataKey();
  Secret plaintext{std::string(kApiKey)};
  for (const CredentialBinding& binding : {CredentialBinding{kProject, "", kCredentialId},
                                           CredentialBinding{kProject, kProvider, ""}}) {
    Result<std::string> sealed = Vault::encryptCredential(data_key, kDataKeyId, binding, plaintext);
    ASSERT_FALSE(sealed.has_value());
    EXPECT_EQ(sealed.error().code, ErrorCode::kInternal);
  }
}

TEST(VaultTest, InvalidDataKeyIdRejected) {
  Secret data_key = Vault::newDataKey();
  Secret plaintext{std::string(kApiKey)};
  EXPECT_FALSE(Vault::encryptCredential(data_key, "", defaultBinding(), plaintext).has_value());
  EXPECT_FALSE(
      Vault::encryptCredential(data_key, std::string(256, 'k'), defaultBinding(), plaintext)
          .has_value());
  EXPECT_TRUE(Vault::encryptCredential(data_key, std::string(255, 'k'), defaultBinding(), plaintext)
                  .has_value());
}

TEST(VaultTest, ErrorMessagesContainNoKeyMaterial) {
  MasterKey master = randomMasterKey();
  Secret master_bytes = master.key;
  Vault vault(std::move(master));
  Vault other(randomMasterKey());
  Secret data_key = Vault::newDataKey();

  Result<std::string> wrapped = vault.wrapDataKey(kProject, kDataKeyId, data_key);
  ASSERT_TRUE(wrapped.has_value());
  std::string altered = *wrapped;
  altered.back() = static_cast<char>(altered.back() ^ 1);
  Result<Secret> unwrap_altered = vault.unwrapDataKey(kProject, kDataKeyId, altered);
  ASSERT_FALSE(unwrap_altered.has_value());
  expectNoKeyMaterial(unwrap_altered.error().message, master_bytes);
  expectNoKeyMaterial(unwrap_altered.error().message, data_key);

  Result<Secret> unwrap_other = other.unwrapDataKey(kProject, kDataKeyId, *wrapped);
  ASSERT_FALSE(unwrap_other.has_value());
  expectNoKeyMaterial(unwrap_other.error().message, master_bytes);

  std::string sealed = sealDefaultCredential(data_key);
  Result<Secret> moved =
      Vault::decryptCredential(data_key, {kProject, "anthropic", kCredentialId}, sealed);
  ASSERT_FALSE(moved.has_value());
  expectNoKeyMaterial(moved.error().message, data_key);
  EXPECT_EQ(moved.error().message.find(kApiKey), std::string::npos);
}

TEST(VaultTest, NoncesDistinctAcross100000Encryptions) {
  constexpr size_t kEncryptions = 100000;
  Secret data_key = Vault::newDataKey();
  Secret plaintext{std::string(kApiKey)};
  size_t nonce_offset = 2 + kDataKeyId.size();

  std::unordered_set<std::string> nonces;
  nonces.reserve(kEncryptions);
  for (size_t i = 0; i < kEncryptions; ++i) {
    Result<std::string> sealed =
        Vault::encryptCredential(data_key, kDataKeyId, defaultBinding(), plaintext);
    ASSERT_TRUE(sealed.has_value());
    nonces.insert(sealed->substr(nonce_offset, kNonceSize));
  }
  EXPECT_EQ(nonces.size(), kEncryptions);
}

TEST(VaultTest, CheckValueVerifiesUnderSameKey) {
  MasterKey master = randomMasterKey();
  Vault vault(master);
  Vault reopened(master);
  std::string check_value = vault.makeCheckValue();

  EXPECT_TRUE(vault.verifyCheckValue(check_value).has_value());
  Result<void> verified = reopened.verifyCheckValue(check_value);
  EXPECT_TRUE(verified.has_value()) << verified.error().message;
}

TEST(VaultTest, CheckValueIsPrintableText) {
  Vault vault(randomMasterKey());
  std::string check_value = vault.makeCheckValue();
  ASSERT_FALSE(check_value.empty());
  for (char c : check_value) {
    EXPECT_TRUE(std::isprint(static_cast<unsigned char>(c))) << static_cast<int>(c);
  }
  std::optional<std::string> sealed = base64Decode(check_value);
  ASSERT_TRUE(sealed.has_value());
  EXPECT_EQ(ciphertextKeyId(*sealed), vault.masterKeyId());
}

TEST(VaultTest, CheckValueUnderWrongMasterKeyNamesBoth) {
  Vault original(randomMasterKey());
  Vault wrong(randomMasterKey());
  std::string check_value = original.makeCheckValue();

  Result<void> verified = wrong.verifyCheckValue(check_value);
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_EQ(verified.error().message,
            "the master key " + wrong.masterKeyId() +
                " does not match the one this database uses (" + original.masterKeyId() +
                "); start with that key");
}

TEST(VaultTest, AlteredCheckValueRejected) {
  Vault vault(randomMasterKey());
  std::optional<std::string> sealed = base64Decode(vault.makeCheckValue());
  ASSERT_TRUE(sealed.has_value());
  sealed->back() = static_cast<char>(sealed->back() ^ 0x80);

  Result<void> verified = vault.verifyCheckValue(base64Encode(*sealed));
  ASSERT_FALSE(verified.has_value());
  EXPECT_EQ(verified.error().code, ErrorCode::kByokKeyUnreadable);
  EXPECT_NE(verified.error().message.find("altered"), std::string::npos);
}

TEST(VaultTest, GarbageCheckValueRejected) {
  Vault vault(randomMasterKey());
  for (std::string_view garbage : {"", "not base64!", "AAAA", "bWtfMTIz"}) {
    Result<void> verified = vault.verifyCheckValue(garbage);
    ASSERT_FALSE(verified.has_value()) << garbage;
    EXPECT_EQ(verified.error().code, ErrorCode::kByokKeyUnreadable);
    EXPECT_NE(verified.error().message.find("not in a known format"), std::string::npos);
  }
}

TEST(VaultTest, ShortMasterKeyThrowsAtConstruction) {
  MasterKey master{Secret(randomBytes(16)), "mk_short", "test"};
  EXPECT_THROW(Vault vault(std::move(master)), std::invalid_argument);
}

TEST(VaultTest, EncodeFieldsPrefixesLengths) {
  EXPECT_EQ(encodeFields({}), "");
  EXPECT_EQ(encodeFields({"ab", ""}), std::string("\x00\x00\x00\x02"
                                                  "ab"
                                                  "\x00\x00\x00\x00",
                                                  10));
  EXPECT_NE(encodeFields({"ab", "c"}), encodeFields({"a", "bc"}));
}

TEST(SecretTest, PrintsRedactedThroughStreamAndFmt) {
  Secret secret{std::string(kApiKey)};
  std::ostringstream out;
  out << secret;
  EXPECT_EQ(out.str(), "[redacted]");
  EXPECT_EQ(fmt::format("{}", secret), "[redacted]");
  EXPECT_EQ(fmt::format("key={}", Vault::newDataKey()), "key=[redacted]");
}

TEST(SecretTest, ViewPrintsRedacted) {
  const std::string header_value(kApiKey);
  SecretView view(header_value);
  std::ostringstream out;
  out << view;
  EXPECT_EQ(out.str(), "[redacted]");
  EXPECT_EQ(fmt::format("token={}", view), "token=[redacted]");
  EXPECT_EQ(view.reveal(), kApiKey);
  EXPECT_EQ(view.reveal().data(), header_value.data());
}

TEST(SecretTest, ViewComparesWholeValue) {
  SecretView view("ks_token");
  EXPECT_TRUE(view.equals("ks_token"));
  EXPECT_FALSE(view.equals("ks_toke"));
  EXPECT_FALSE(view.equals("ks_tokenx"));
  EXPECT_FALSE(view.equals("ks_tokeN"));
}

TEST(SecretTest, MasterKeyPrintsRedacted) {
  MasterKey master = randomMasterKey();
  std::ostringstream out;
  out << master.key;
  EXPECT_EQ(out.str(), "[redacted]");
  EXPECT_EQ(fmt::format("{}", master.key), "[redacted]");
}

}  // namespace
}  // namespace keystore::vault
