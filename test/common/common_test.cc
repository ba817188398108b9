#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/encoding.h"
#include "common/mask.h"

namespace keystore {
namespace {

TEST(EncodingTest, HexRoundTrip) {
  EXPECT_EQ(hexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(hexDecode("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(hexDecode("0").has_value());
  EXPECT_FALSE(hexDecode("zz").has_value());
}

TEST(EncodingTest, Base64RoundTrip) {
  EXPECT_EQ(base64Encode("ab"), "YWI=");
  EXPECT_EQ(base64Decode("YWI="), "ab");
  EXPECT_EQ(base64Decode("YWJj"), "abc");
  EXPECT_FALSE(base64Decode("YW!=").has_value());
}

TEST(MaskTest, KeepsPrefixAndLastFour) {
  EXPECT_EQ(maskCredential("sk-proj-0123456789abcdefa1b2"), "sk-…a1b2");
  EXPECT_EQ(maskCredential(std::string("sk-proj-") + std::string(60, 'x') + "a1b2"),
            "sk-proj-…a1b2");
  EXPECT_EQ(maskCredential("sk-test-OPENAI-0001"), "…0001");
  EXPECT_EQ(maskCredential("sk-proj-abcd"), "…");
  EXPECT_EQ(maskCredential("short"), "…");
  EXPECT_TRUE(looksLikeMask("sk-a****0001"));
  EXPECT_TRUE(looksLikeMask("sk-…a1b2"));
  EXPECT_FALSE(looksLikeMask("sk-ant-test-REAL-0001"));
}

TEST(ClockTest, DurationsParsed) {
  EXPECT_EQ(parseDurationMillis("1s"), 1000);
  EXPECT_EQ(parseDurationMillis("1h30m"), 5'400'000);
  EXPECT_EQ(parseDurationMillis("250ms"), 250);
  EXPECT_FALSE(parseDurationMillis("").has_value());
  EXPECT_FALSE(parseDurationMillis("5").has_value());
  EXPECT_FALSE(parseDurationMillis("0s").has_value());
  EXPECT_FALSE(parseDurationMillis("3y").has_value());
  EXPECT_FALSE(parseDurationMillis("1000000000w1000000000w1000000000w").has_value());
  EXPECT_EQ(parseDurationMillis("36500d"), 36500LL * 86'400'000);
}

TEST(ClockTest, ZeroDurationsParsed) {
  EXPECT_EQ(parseDurationMillisOrZero("0"), 0);
  EXPECT_EQ(parseDurationMillisOrZero("0s"), 0);
  EXPECT_EQ(parseDurationMillisOrZero("00ms"), 0);
  EXPECT_EQ(parseDurationMillisOrZero("90s"), 90'000);
  EXPECT_FALSE(parseDurationMillisOrZero("").has_value());
  EXPECT_FALSE(parseDurationMillisOrZero("-1s").has_value());
  EXPECT_FALSE(parseDurationMillisOrZero("5").has_value());
}

TEST(ClockTest, Rfc3339RoundTrip) {
  auto millis = parseRfc3339("2026-12-04T20:07:14.123Z");
  ASSERT_TRUE(millis.has_value());
  EXPECT_EQ(formatRfc3339(*millis), "2026-12-04T20:07:14.123Z");
  EXPECT_EQ(parseRfc3339("2026-12-04T21:07:14.123+01:00"), millis);
  EXPECT_EQ(parseRfc3339("1970-01-02"), 86'400'000);
  EXPECT_FALSE(parseRfc3339("2026-13-01").has_value());
  EXPECT_FALSE(parseRfc3339("yesterday").has_value());
}

}  // namespace
}  // namespace keystore
