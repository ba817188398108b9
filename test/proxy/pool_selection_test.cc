// Marketplace credential selection in admission: dedicated before shared, least recently used
// first, circuits and rate windows respected, and no fallback between modes.
#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "proxy/admission.h"
#include "tokens/agent_token.h"
#include "vault/vault.h"

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

constexpr int64_t kNow = 1'800'000'000'000;

class PoolSelectionTest : public ::testing::Test {
 protected:
  PoolSelectionTest()
      : catalog_(*catalog::Catalog::builtIn()),
        registry_(marketplace::CircuitPolicy{.failure_threshold = 2, .cooldown_ms = 1000}),
        pool_key_(vault::Vault::newDataKey()),
        project_key_(vault::Vault::newDataKey()) {
    token_ = std::string(generateToken());
    snapshot_ = std::make_shared<Snapshot>();
    snapshot_->pool_data_key = std::make_shared<const Secret>(std::string(pool_key_.reveal()));
    TokenEntry entry;
    entry.token_id = "tok_1";
    entry.agent_id = "agt_1";
    entry.project_id = "p1";
    snapshot_->tokens_by_hash.emplace(tokens::hashToken(token_), entry);
    snapshot_->agents["agt_1"].status = "active";
    snapshot_->projects["p1"].data_key =
        std::make_shared<const Secret>(std::string(project_key_.reveal()));
  }

  static std::string generateToken() { return std::string(tokens::generateAgentToken().reveal()); }

  void setMode(const std::string& provider, const std::string& mode) {
    auto& entry = snapshot_->projects["p1"].providers[provider];
    entry.mode = mode;
    entry.enabled = true;
  }

  std::shared_ptr<const PoolCredentialEntry> poolCredential(const std::string& id,
                                                            const std::string& project_id,
                                                            const std::string& provider,
                                                            const std::string& key,
                                                            int64_t rpm_limit = 0) {
    auto sealed = vault::Vault::encryptCredential(
        pool_key_, "pool-key", vault::CredentialBinding{project_id, provider, id},
        Secret(std::string(key)));
    EXPECT_TRUE(sealed.has_value());
    return std::make_shared<const PoolCredentialEntry>(
        PoolCredentialEntry{id, project_id, sealed.value_or(""), rpm_limit, registry_.get(id)});
  }

  void addShared(const std::string& id, const std::string& key, int64_t rpm_limit = 0,
                 const std::string& provider = "openai") {
    snapshot_->shared_pools[provider].push_back(poolCredential(id, "", provider, key, rpm_limit));
  }
  void addDedicated(const std::string& id, const std::string& key,
                    const std::string& provider = "openai") {
    snapshot_->projects["p1"].providers[provider].dedicated.push_back(
        poolCredential(id, "p1", provider, key));
  }

  Result<CredentialPlaintextPtr> admit(AdmissionContext& context, const std::string& target,
                                       int64_t now = kNow) {
    // A member, because the context keeps a view of the token in it.
    headers_.set(http::field::authorization, "Bearer " + token_);
    context.snapshot = snapshot_;
    auto admitted = admitRequest("POST", target, headers_, catalog_, now, context);
    if (!admitted) {
      return std::unexpected(admitted.error());
    }
    return resolveCredential(context, now);
  }

  catalog::Catalog catalog_;
  marketplace::HealthRegistry registry_;
  Secret pool_key_;
  Secret project_key_;
  std::string token_;
  std::shared_ptr<Snapshot> snapshot_;
  Fields headers_;
};

TEST_F(PoolSelectionTest, DedicatedCredentialPreferredOverShared) {
  setMode("openai", "marketplace");
  addShared("shared-1", "sk-shared-1");
  addDedicated("dedicated-1", "sk-dedicated-1");
  for (int i = 0; i < 3; ++i) {
    AdmissionContext context;
    auto credential = admit(context, "/v1/openai/v1/chat/completions", kNow + i);
    ASSERT_TRUE(credential.has_value()) << credential.error().message;
    EXPECT_EQ((*credential)->secret.reveal(), "sk-dedicated-1");
    EXPECT_EQ(context.mode, "marketplace");
    EXPECT_EQ(context.credential_id, "dedicated-1");
    context.health->report(marketplace::Verdict::kSuccess, kNow + i);
  }
}

TEST_F(PoolSelectionTest, SharedCredentialsTakeTurns) {
  setMode("openai", "marketplace");
  addShared("shared-1", "sk-shared-1");
  addShared("shared-2", "sk-shared-2");
  std::vector<std::string> used;
  for (int i = 0; i < 4; ++i) {
    AdmissionContext context;
    auto credential = admit(context, "/v1/openai/v1/chat/completions", kNow + i);
    ASSERT_TRUE(credential.has_value()) << credential.error().message;
    used.emplace_back(context.credential_id);
    context.health->report(marketplace::Verdict::kSuccess, kNow + i);
  }
  EXPECT_EQ(used, (std::vector<std::string>{"shared-1", "shared-2", "shared-1", "shared-2"}));
}

TEST_F(PoolSelectionTest, OpenCircuitAndFullRateWindowSkipped) {
  setMode("openai", "marketplace");
  addShared("broken", "sk-broken");
  addShared("limited", "sk-limited", 1);
  addShared("spare", "sk-spare");
  auto broken = registry_.get("broken");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(broken->tryAcquire(kNow - 10, 0));
    broken->report(marketplace::Verdict::kFailure, kNow - 10);
  }
  ASSERT_TRUE(registry_.get("limited")->tryAcquire(kNow - 5, 1));
  registry_.get("limited")->report(marketplace::Verdict::kSuccess, kNow - 5);

  AdmissionContext context;
  auto credential = admit(context, "/v1/openai/v1/chat/completions");
  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ(context.credential_id, "spare");
}

TEST_F(PoolSelectionTest, NoUsableCredentialIsNoCapacity) {
  setMode("openai", "marketplace");
  AdmissionContext empty_pool;
  auto none = admit(empty_pool, "/v1/openai/v1/chat/completions");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ErrorCode::kNoCapacity);

  addShared("limited", "sk-limited", 1);
  AdmissionContext first;
  ASSERT_TRUE(admit(first, "/v1/openai/v1/chat/completions").has_value());
  AdmissionContext second;
  auto refused = admit(second, "/v1/openai/v1/chat/completions");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kNoCapacity);
  EXPECT_EQ(refused.error().message.find("sk-"), std::string::npos);
}

TEST_F(PoolSelectionTest, NextCredentialSkipsTriedOnes) {
  setMode("openai", "marketplace");
  addShared("shared-1", "sk-shared-1");
  addShared("shared-2", "sk-shared-2");
  AdmissionContext context;
  auto first = admit(context, "/v1/openai/v1/chat/completions");
  ASSERT_TRUE(first.has_value());
  std::string first_id(context.credential_id);
  auto second = nextPoolCredential(context, kNow + 1);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(context.credential_id, first_id);
  std::string second_id(context.credential_id);
  auto third = nextPoolCredential(context, kNow + 2);
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, ErrorCode::kNoCapacity);
  EXPECT_EQ(context.credential_id, second_id);
  ASSERT_NE(context.health, nullptr);
  EXPECT_EQ(context.health, registry_.get(second_id));
}

TEST_F(PoolSelectionTest, ByokModeNeverUsesThePool) {
  setMode("openai", "byok");
  addShared("shared-1", "sk-test-POOL-0003");
  addDedicated("dedicated-1", "sk-dedicated-1");
  AdmissionContext context;
  auto credential = admit(context, "/v1/openai/v1/chat/completions");
  ASSERT_FALSE(credential.has_value());
  EXPECT_EQ(credential.error().code, ErrorCode::kByokKeyMissing);
  EXPECT_EQ(context.credential_id, "");
}

TEST_F(PoolSelectionTest, TierForbidsModeAtAdmission) {
  // stripe is BYOK only, neon marketplace only: a setting that contradicts the tier (left
  // over from an older catalog) never reaches a credential.
  setMode("stripe", "marketplace");
  addShared("stripe-pool", "sk-stripe-pool", 0, "stripe");
  AdmissionContext stripe;
  auto refused = admit(stripe, "/v1/stripe/v1/customers");
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kProviderNotConfigured);

  setMode("neon", "byok");
  AdmissionContext neon;
  auto byok_neon = admit(neon, "/v1/neon/api/v2/projects");
  ASSERT_FALSE(byok_neon.has_value());
  EXPECT_EQ(byok_neon.error().code, ErrorCode::kProviderNotConfigured);
}

TEST_F(PoolSelectionTest, UndecryptableCredentialCountsAsFailureAndIsSkipped) {
  setMode("openai", "marketplace");
  auto good = poolCredential("good", "", "openai", "sk-good");
  // Sealed for another project: the binding does not match, so it cannot be opened.
  auto sealed_elsewhere = poolCredential("moved", "p2", "openai", "sk-moved");
  auto moved = std::make_shared<const PoolCredentialEntry>(
      PoolCredentialEntry{"moved", "", sealed_elsewhere->ciphertext, 0, registry_.get("moved")});
  snapshot_->shared_pools["openai"] = {moved, good};
  AdmissionContext context;
  auto credential = admit(context, "/v1/openai/v1/chat/completions");
  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ((*credential)->secret.reveal(), "sk-good");
  EXPECT_EQ(registry_.get("moved")->view(kNow).consecutive_failures, 1);
}

}  // namespace
}  // namespace keystore::proxy
