#include "proxy/route.h"

#include <gtest/gtest.h>

namespace keystore::proxy {
namespace {

TEST(RouteTest, SplitsProviderPathAndQuery) {
  auto route = parseProxyTarget("/v1/openai/v1/chat/completions?a=1&b=2");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ(route->provider, "openai");
  EXPECT_EQ(route->path, "/v1/chat/completions");
  EXPECT_EQ(route->query, "a=1&b=2");
}

TEST(RouteTest, ProviderWithoutRestGetsRootPath) {
  auto route = parseProxyTarget("/v1/resend");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ(route->provider, "resend");
  EXPECT_EQ(route->path, "/");
}

TEST(RouteTest, DotSegmentsRejected) {
  for (const char* target : {"/v1/openai/../anthropic/v1/messages", "/v1/openai/v1/./x",
                             "/v1/openai/v1/%2e%2e/x", "/v1/openai/v1/%2E%2e/x", "/v1/../x"}) {
    auto route = parseProxyTarget(target);
    ASSERT_FALSE(route.has_value()) << target;
    EXPECT_EQ(route.error().code, ErrorCode::kInvalidRequest) << target;
  }
}

TEST(RouteTest, EncodedSlashesRejected) {
  for (const char* target :
       {"/v1/openai/v1%2Fchat", "/v1/openai/v1%2fchat", "/v1/openai/a%5Cb", "/v1/openai/a\\b"}) {
    EXPECT_FALSE(parseProxyTarget(target).has_value()) << target;
  }
}

TEST(RouteTest, DoubleEncodingStaysLiteral) {
  auto route = parseProxyTarget("/v1/openai/v1/%252e%252e/x");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ(route->path, "/v1/%252e%252e/x");
}

TEST(RouteTest, ControlCharactersAndBadEscapesRejected) {
  EXPECT_FALSE(parseProxyTarget("/v1/openai/a%00b").has_value());
  EXPECT_FALSE(parseProxyTarget("/v1/openai/a%zz").has_value());
  EXPECT_FALSE(parseProxyTarget("/v1/openai/a%2").has_value());
}

TEST(RouteTest, NonProxyPathRejected) {
  EXPECT_FALSE(parseProxyTarget("/v2/openai/x").has_value());
  EXPECT_FALSE(parseProxyTarget("/v1//x").has_value());
  EXPECT_FALSE(parseProxyTarget("/").has_value());
}

TEST(RouteTest, SpacesReencoded) {
  auto route = parseProxyTarget("/v1/openai/files/a%20b");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ(route->path, "/files/a%20b");
}

// A segment with an escape is decoded and encoded again, so an escaped character that needs
// no escaping reaches the upstream plain, as in a segment that had none.
TEST(RouteTest, EscapedSafeCharactersDecoded) {
  auto escaped = parseProxyTarget("/v1/openai/v1/%63hat/completions");
  ASSERT_TRUE(escaped.has_value());
  EXPECT_EQ(escaped->path, "/v1/chat/completions");
  auto tilde = parseProxyTarget("/v1/openai/a%7Eb/c~d");
  ASSERT_TRUE(tilde.has_value());
  EXPECT_EQ(tilde->path, "/a~b/c~d");
}

// Every character that needs no escaping passes through a segment unchanged.
TEST(RouteTest, PlainSegmentCopiedUnchanged) {
  const std::string segment = "azAZ09-._~!$&'()*+,;=:@";
  auto route = parseProxyTarget("/v1/openai/" + segment + "/x");
  ASSERT_TRUE(route.has_value());
  EXPECT_EQ(route->path, "/" + segment + "/x");
}

}  // namespace
}  // namespace keystore::proxy
