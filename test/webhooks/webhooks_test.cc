// Unit tests of the webhook building blocks: signatures, the retry schedule, the URL and
// address rules, endpoint filters and the rate_limited sampler.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <string>

#include "catalog/upstream_url.h"
#include "webhooks/event.h"
#include "webhooks/publisher.h"
#include "webhooks/retry_policy.h"
#include "webhooks/signature.h"
#include "webhooks/webhook_url.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::webhooks {
namespace {

const Secret kSecret(
    std::string("whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"));
constexpr std::string_view kBody = R"({"id":"evt_1","type":"webhook.test"})";

TEST(SignatureTest, KnownAnswerVector) {
  // HMAC-SHA256 computed independently (Python hmac) over "1700000000." + body.
  EXPECT_EQ(signatureHeader(kSecret, 1700000000, kBody),
            "t=1700000000,v1=a407a96f71eea6076a9e42f3a6a55bd4f79363b3baaffb47844703919cf3fb91");
}

TEST(SignatureTest, VerifiesFreshSignature) {
  std::string header = signatureHeader(kSecret, 1700000000, kBody);
  EXPECT_TRUE(verifySignatureHeader(kSecret, header, kBody, 1700000100, 300));
}

TEST(SignatureTest, StaleTimestampRejected) {
  std::string header = signatureHeader(kSecret, 1700000000, kBody);
  EXPECT_FALSE(verifySignatureHeader(kSecret, header, kBody, 1700000301, 300));
  EXPECT_FALSE(verifySignatureHeader(kSecret, header, kBody, 1699999699, 300));
}

TEST(SignatureTest, AlteredBodyOrSecretRejected) {
  std::string header = signatureHeader(kSecret, 1700000000, kBody);
  EXPECT_FALSE(verifySignatureHeader(kSecret, header, std::string(kBody) + " ", 1700000000, 300));
  Secret other(std::string("whsec_") + std::string(64, 'a'));
  EXPECT_FALSE(verifySignatureHeader(other, header, kBody, 1700000000, 300));
  EXPECT_FALSE(verifySignatureHeader(kSecret, "v1=abc", kBody, 1700000000, 300));
}

TEST(SignatureTest, GeneratedSecretShape) {
  Secret first = generateSigningSecret();
  Secret second = generateSigningSecret();
  EXPECT_EQ(first.size(), 6u + 64u);
  EXPECT_TRUE(first.reveal().starts_with("whsec_"));
  EXPECT_EQ(first.reveal().find_first_not_of("0123456789abcdef", 6), std::string_view::npos);
  EXPECT_NE(first.reveal(), second.reveal());
}

TEST(RetryPolicyTest, DelaysDoubleWithinJitterBand) {
  RetryPolicy policy{.base_ms = 1000, .window_ms = 86'400'000};
  EXPECT_EQ(policy.delayMs(1, 1.0), 1000);
  EXPECT_EQ(policy.delayMs(1, 0.0), 750);
  EXPECT_EQ(policy.delayMs(2, 1.0), 2000);
  EXPECT_EQ(policy.delayMs(3, 1.0), 4000);
  EXPECT_EQ(policy.delayMs(3, 0.0), 3000);
}

TEST(RetryPolicyTest, DelayCappedAtOneHour) {
  RetryPolicy policy{.base_ms = 30'000, .window_ms = 86'400'000};
  EXPECT_EQ(policy.delayMs(8, 1.0), kMaxRetryDelayMs);
  EXPECT_EQ(policy.delayMs(1000, 1.0), kMaxRetryDelayMs);
}

TEST(RetryPolicyTest, GapsIncreaseEvenWithWorstJitter) {
  RetryPolicy policy{.base_ms = 200, .window_ms = 86'400'000};
  for (int64_t attempt = 1; attempt < 10; ++attempt) {
    EXPECT_LT(policy.delayMs(attempt, 1.0), policy.delayMs(attempt + 1, 0.0)) << attempt;
  }
}

TEST(RetryPolicyTest, ScheduleBoundedByWindow) {
  RetryPolicy policy{.base_ms = 30'000, .window_ms = 86'400'000};
  int64_t created = 1'000'000;
  int64_t now = created;
  int64_t attempts = 0;
  for (;;) {
    ++attempts;
    std::optional<int64_t> next = policy.nextAttemptAt(created, now, attempts, 1.0);
    if (!next) {
      break;
    }
    ASSERT_LE(*next, created + policy.window_ms);
    now = *next;
  }
  // 30 s doubling to the 1 h cap takes 8 attempts and about 2 h 8 min; hourly attempts fill
  // the rest of the day.
  EXPECT_EQ(attempts, 30);
  EXPECT_GT(now, created + policy.window_ms - kMaxRetryDelayMs);
}

TEST(RetryPolicyTest, TinyWindowFailsAfterFirstAttempt) {
  RetryPolicy policy{.base_ms = 1000, .window_ms = 500};
  EXPECT_EQ(policy.nextAttemptAt(0, 0, 1, 0.0), std::nullopt);
}

bool isPrivate(const std::string& text) {
  return catalog::isPrivateAddress(boost::asio::ip::make_address(text));
}

TEST(WebhookUrlTest, PrivateAddressRanges) {
  EXPECT_TRUE(isPrivate("127.0.0.1"));
  EXPECT_TRUE(isPrivate("10.1.2.3"));
  EXPECT_TRUE(isPrivate("172.16.0.1"));
  EXPECT_TRUE(isPrivate("192.168.1.1"));
  EXPECT_TRUE(isPrivate("169.254.169.254"));
  EXPECT_TRUE(isPrivate("::1"));
  EXPECT_TRUE(isPrivate("fe80::1"));
  EXPECT_TRUE(isPrivate("fd00::1"));
  EXPECT_TRUE(isPrivate("::ffff:127.0.0.1"));
  EXPECT_TRUE(isPrivate("::ffff:10.0.0.1"));
  EXPECT_FALSE(isPrivate("93.184.216.34"));
  EXPECT_FALSE(isPrivate("::ffff:93.184.216.34"));
  EXPECT_FALSE(isPrivate("2606:4700::1111"));
}

TEST(WebhookUrlTest, LiteralPrivateHostsRejected) {
  for (const char* url :
       {"http://127.0.0.1:9000/hook", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.5/", "http://169.254.169.254/latest/meta-data"}) {
    auto checked = checkWebhookUrl(url, false);
    ASSERT_FALSE(checked.has_value()) << url;
    EXPECT_EQ(checked.error().code, ErrorCode::kInvalidRequest) << url;
    EXPECT_NE(checked.error().message.find("--allow-private-webhooks"), std::string::npos) << url;
  }
}

TEST(WebhookUrlTest, NameResolvingToLoopbackRejected) {
  auto checked = checkWebhookUrl("http://localhost:8080/hook", false);
  ASSERT_FALSE(checked.has_value());
  EXPECT_NE(checked.error().message.find("private address"), std::string::npos);
}

TEST(WebhookUrlTest, PrivateAllowedWhenEnabled) {
  auto checked = checkWebhookUrl("http://127.0.0.1:9000/hook?x=1", true);
  ASSERT_TRUE(checked.has_value()) << checked.error().message;
  EXPECT_FALSE(checked->tls);
  EXPECT_EQ(checked->port, 9000);
  EXPECT_EQ(checked->target, "/hook?x=1");
  EXPECT_EQ(checked->host_header, "127.0.0.1:9000");
}

TEST(WebhookUrlTest, MalformedUrlsRejected) {
  for (const char* url : {"ftp://example.com/", "https://user:pw@example.com/", "example.com/hook",
                          "https://", "https://example.com/#frag", "https://example.com:0/"}) {
    auto parsed = parseWebhookUrl(url);
    ASSERT_FALSE(parsed.has_value()) << url;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest) << url;
  }
}

TEST(WebhookUrlTest, HttpsDefaults) {
  auto parsed = parseWebhookUrl("https://Hooks.Example.com");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_TRUE(parsed->tls);
  EXPECT_EQ(parsed->port, 443);
  EXPECT_EQ(parsed->host, "hooks.example.com");
  EXPECT_EQ(parsed->target, "/");
  EXPECT_EQ(parsed->host_header, "hooks.example.com");
}

TEST(EndpointFilterTest, EmptyFilterTakesEveryType) {
  store::WebhookEndpoint endpoint{.id = "whk_1"};
  EXPECT_TRUE(endpointWants(endpoint, "agent.created"));
  endpoint.events = {"budget.exceeded"};
  EXPECT_FALSE(endpointWants(endpoint, "agent.created"));
  EXPECT_TRUE(endpointWants(endpoint, "budget.exceeded"));
  endpoint.status = "disabled";
  EXPECT_FALSE(endpointWants(endpoint, "budget.exceeded"));
}

TEST(EventTest, BodyShape) {
  Event event{.id = "evt_1", .type = "agent.paused", .project_id = "prj_1", .created_at = 0};
  event.data["agent_id"] = "agt_1";
  EXPECT_EQ(renderEventBody(event),
            R"({"id":"evt_1","type":"agent.paused","created_at":"1970-01-01T00:00:00.000Z",)"
            R"("project_id":"prj_1","data":{"agent_id":"agt_1"}})");
  EXPECT_TRUE(isEventType("provider.circuit_opened"));
  EXPECT_FALSE(isEventType("agent.updated"));
}

TEST(RateLimitSamplerTest, OnePerPairPerMinute) {
  RateLimitSampler sampler;
  EXPECT_TRUE(sampler.shouldReport("agt_1", "openai", 0));
  EXPECT_FALSE(sampler.shouldReport("agt_1", "openai", 59'999));
  EXPECT_TRUE(sampler.shouldReport("agt_1", "anthropic", 1));
  EXPECT_TRUE(sampler.shouldReport("agt_2", "openai", 1));
  EXPECT_TRUE(sampler.shouldReport("agt_1", "openai", 60'000));
  EXPECT_FALSE(sampler.shouldReport("agt_1", "openai", 60'001));
}

}  // namespace
}  // namespace keystore::webhooks
