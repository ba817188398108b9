// Credential plaintexts cached per snapshot entry: decrypted once, dropped with the snapshot,
// and never cached when decryption fails.
#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "proxy/admission.h"
#include "tokens/agent_token.h"
#include "vault/vault.h"

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr std::string_view kTarget = "/v1/openai/v1/chat/completions";

const catalog::ProviderSpec& openai() {
  static const catalog::Catalog catalog = *catalog::Catalog::builtIn();
  return *catalog.find("openai");
}

class CredentialCacheTest : public ::testing::Test {
 protected:
  CredentialCacheTest()
      : catalog_(*catalog::Catalog::builtIn()),
        registry_(marketplace::CircuitPolicy{.failure_threshold = 10, .cooldown_ms = 1000}),
        project_key_(vault::Vault::newDataKey()),
        pool_key_(vault::Vault::newDataKey()),
        token_(std::string(tokens::generateAgentToken().reveal())) {}

  // A snapshot whose project p1 uses `mode` for OpenAI.
  std::shared_ptr<Snapshot> makeSnapshot(const std::string& mode) {
    auto snapshot = std::make_shared<Snapshot>();
    TokenEntry entry;
    entry.token_id = "tok_1";
    entry.agent_id = "agt_1";
    entry.project_id = "p1";
    snapshot->tokens_by_hash.emplace(tokens::hashToken(token_), entry);
    snapshot->agents["agt_1"].status = "active";
    snapshot->projects["p1"].data_key =
        std::make_shared<const Secret>(std::string(project_key_.reveal()));
    snapshot->pool_data_key = std::make_shared<const Secret>(std::string(pool_key_.reveal()));
    ProviderEntry& setting = snapshot->projects["p1"].providers["openai"];
    setting.mode = mode;
    setting.enabled = true;
    return snapshot;
  }

  std::string seal(const Secret& key, const std::string& project_id, const std::string& id,
                   const std::string& plaintext) {
    auto sealed = vault::Vault::encryptCredential(
        key, "dk_1", vault::CredentialBinding{project_id, "openai", id},
        Secret(std::string(plaintext)));
    EXPECT_TRUE(sealed.has_value());
    return sealed.value_or("");
  }

  void setByok(Snapshot& snapshot, const std::string& ciphertext) {
    snapshot.projects["p1"].providers["openai"].byok_credential =
        std::make_shared<const CredentialEntry>(CredentialEntry{"cred_1", ciphertext});
  }

  Result<CredentialPlaintextPtr> resolve(const std::shared_ptr<Snapshot>& snapshot) {
    Fields headers;
    headers.set(http::field::authorization, "Bearer " + token_);
    AdmissionContext context;
    context.snapshot = snapshot;
    auto admitted = admitRequest("POST", kTarget, headers, catalog_, kNow, context);
    if (!admitted) {
      return std::unexpected(admitted.error());
    }
    return resolveCredential(context, kNow);
  }

  catalog::Catalog catalog_;
  marketplace::HealthRegistry registry_;
  Secret project_key_;
  Secret pool_key_;
  std::string token_;
};

// Flips one bit of the authentication tag or ciphertext, at the end of the sealed text.
std::string tamper(std::string ciphertext) {
  ciphertext.back() = ciphertext.back() == 'A' ? 'B' : 'A';
  return ciphertext;
}

TEST(CachedPlaintextTest, DecryptsOnceForRepeatedCalls) {
  CachedPlaintext cache;
  int decryptions = 0;
  auto decrypt = [&]() -> Result<Secret> {
    ++decryptions;
    return Secret(std::string("sk-cached"));
  };
  auto first = cache.plaintext(openai(), decrypt);
  auto second = cache.plaintext(openai(), decrypt);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*first)->secret.reveal(), "sk-cached");
  EXPECT_EQ((*second)->secret.reveal(), "sk-cached");
  EXPECT_EQ(decryptions, 1);
}

TEST(CachedPlaintextTest, NeedlesCachedWithPlaintext) {
  CachedPlaintext cache;
  auto decrypt = []() -> Result<Secret> { return Secret(std::string("sk-test-OPENAI-0001")); };
  auto first = cache.plaintext(openai(), decrypt);
  auto second = cache.plaintext(openai(), decrypt);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*first)->needles, std::vector<std::string>{"sk-test-OPENAI-0001"});
  // Every request shares the one cached plaintext: none gets a copy of the key.
  EXPECT_EQ(first->get(), second->get());
}

TEST(CachedPlaintextTest, FailureNotCached) {
  CachedPlaintext cache;
  int decryptions = 0;
  auto decrypt = [&]() -> Result<Secret> {
    ++decryptions;
    return fail(ErrorCode::kByokKeyUnreadable, "cannot be decrypted");
  };
  for (int call = 0; call < 3; ++call) {
    auto result = cache.plaintext(openai(), decrypt);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kByokKeyUnreadable);
  }
  EXPECT_EQ(decryptions, 3);
}

TEST(CachedPlaintextTest, CopyStartsEmpty) {
  CachedPlaintext cache;
  int decryptions = 0;
  auto decrypt = [&]() -> Result<Secret> {
    ++decryptions;
    return Secret(std::string("sk-cached"));
  };
  ASSERT_TRUE(cache.plaintext(openai(), decrypt).has_value());
  CachedPlaintext copy(cache);
  ASSERT_TRUE(copy.plaintext(openai(), decrypt).has_value());
  EXPECT_EQ(decryptions, 2);
}

TEST_F(CredentialCacheTest, ByokSamePlaintextOnRepeatedResolve) {
  auto snapshot = makeSnapshot("byok");
  setByok(*snapshot, seal(project_key_, "p1", "cred_1", "sk-byok-1"));
  auto first = resolve(snapshot);
  auto second = resolve(snapshot);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*first)->secret.reveal(), "sk-byok-1");
  EXPECT_EQ((*second)->secret.reveal(), "sk-byok-1");
  EXPECT_EQ(first->get(), second->get());
}

TEST_F(CredentialCacheTest, ByokNewSnapshotDecryptsRotatedKey) {
  auto old_snapshot = makeSnapshot("byok");
  setByok(*old_snapshot, seal(project_key_, "p1", "cred_1", "sk-before-rotation"));
  auto before = resolve(old_snapshot);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ((*before)->secret.reveal(), "sk-before-rotation");

  auto new_snapshot = makeSnapshot("byok");
  setByok(*new_snapshot, seal(project_key_, "p1", "cred_1", "sk-after-rotation"));
  auto after = resolve(new_snapshot);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ((*after)->secret.reveal(), "sk-after-rotation");

  // Requests still holding the old snapshot keep the key they were admitted with.
  auto old_again = resolve(old_snapshot);
  ASSERT_TRUE(old_again.has_value());
  EXPECT_EQ((*old_again)->secret.reveal(), "sk-before-rotation");
}

TEST_F(CredentialCacheTest, ByokTamperedCiphertextFailsEveryCall) {
  auto snapshot = makeSnapshot("byok");
  setByok(*snapshot, tamper(seal(project_key_, "p1", "cred_1", "sk-byok-1")));
  for (int call = 0; call < 3; ++call) {
    auto result = resolve(snapshot);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kByokKeyUnreadable);
  }
}

TEST_F(CredentialCacheTest, PoolSamePlaintextOnRepeatedResolve) {
  auto snapshot = makeSnapshot("marketplace");
  snapshot->shared_pools["openai"].push_back(
      std::make_shared<const PoolCredentialEntry>(PoolCredentialEntry{
          "pool_1", "", seal(pool_key_, "", "pool_1", "sk-pool-1"), 0, registry_.get("pool_1")}));
  auto first = resolve(snapshot);
  auto second = resolve(snapshot);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*first)->secret.reveal(), "sk-pool-1");
  EXPECT_EQ((*second)->secret.reveal(), "sk-pool-1");
  EXPECT_EQ(first->get(), second->get());
}

TEST_F(CredentialCacheTest, PoolTamperedCiphertextFailsEveryCall) {
  auto snapshot = makeSnapshot("marketplace");
  snapshot->shared_pools["openai"].push_back(std::make_shared<const PoolCredentialEntry>(
      PoolCredentialEntry{"pool_1", "", tamper(seal(pool_key_, "", "pool_1", "sk-pool-1")), 0,
                          registry_.get("pool_1")}));
  for (int call = 0; call < 2; ++call) {
    auto result = resolve(snapshot);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kNoCapacity);
  }
}

}  // namespace
}  // namespace keystore::proxy
