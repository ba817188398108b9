#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>

#include "proxy/admission.h"
#include "tokens/agent_token.h"

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr std::string_view kTarget = "/v1/openai/v1/chat/completions";

class TokenDigestMemoTest : public ::testing::Test {
 protected:
  TokenDigestMemoTest()
      : catalog_(*catalog::Catalog::builtIn()),
        known_(std::string(tokens::generateAgentToken().reveal())),
        snapshot_(std::make_shared<Snapshot>()) {
    TokenEntry entry;
    entry.token_id = "tok_1";
    entry.agent_id = "agt_1";
    entry.project_id = "p1";
    snapshot_->tokens_by_hash.emplace(tokens::hashToken(known_), entry);
    snapshot_->agents["agt_1"].status = "active";
    ProviderEntry& setting = snapshot_->projects["p1"].providers["openai"];
    setting.mode = "byok";
    setting.enabled = true;
  }

  Result<void> admit(const std::string& token, TokenDigestMemo& memo) {
    Fields headers;
    headers.set(http::field::authorization, "Bearer " + token);
    AdmissionContext context;
    context.snapshot = snapshot_;
    return admitRequest("POST", kTarget, headers, catalog_, kNow, context, &memo);
  }

  catalog::Catalog catalog_;
  std::string known_;
  std::shared_ptr<Snapshot> snapshot_;
};

TEST_F(TokenDigestMemoTest, RemembersAdmittedToken) {
  TokenDigestMemo memo;

  ASSERT_TRUE(admit(known_, memo).has_value());

  EXPECT_EQ(memo.token.reveal(), known_);
  EXPECT_EQ(std::string_view(memo.digest.data(), memo.digest.size()), tokens::hashToken(known_));
  EXPECT_TRUE(admit(known_, memo).has_value());
}

TEST_F(TokenDigestMemoTest, OtherTokenIsHashedAfresh) {
  TokenDigestMemo memo;
  ASSERT_TRUE(admit(known_, memo).has_value());
  std::string unknown(tokens::generateAgentToken().reveal());

  auto admitted = admit(unknown, memo);

  ASSERT_FALSE(admitted.has_value());
  EXPECT_EQ(admitted.error().code, ErrorCode::kInvalidToken);
  EXPECT_EQ(memo.token.reveal(), unknown);
  EXPECT_TRUE(admit(known_, memo).has_value());
}

TEST_F(TokenDigestMemoTest, MemoOfOtherTokenIgnored) {
  // The memo's digest is reused only for the exact token it was computed from.
  TokenDigestMemo memo;
  std::string unknown(tokens::generateAgentToken().reveal());
  memo.token = Secret(std::string(unknown));
  std::string known_digest = tokens::hashToken(known_);
  std::copy(known_digest.begin(), known_digest.end(), memo.digest.begin());

  auto admitted = admit(known_, memo);

  EXPECT_TRUE(admitted.has_value());
  EXPECT_EQ(memo.token.reveal(), known_);
}

}  // namespace
}  // namespace keystore::proxy
