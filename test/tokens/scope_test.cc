#include "tokens/scope.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keystore::tokens {
namespace {

Scope scope(std::string provider, Scope::Access access) {
  return Scope{std::move(provider), access};
}

TEST(ScopeTest, ValidScopesParse) {
  struct Case {
    std::string text;
    std::string provider;
    Scope::Access access;
  };
  const Case cases[] = {
      {"provider:openai:read", "openai", Scope::Access::kRead},
      {"provider:anthropic:write", "anthropic", Scope::Access::kWrite},
      {"provider:resend:*", "resend", Scope::Access::kAll},
      {"provider:azure-openai:read", "azure-openai", Scope::Access::kRead},
      {"provider:my_provider2:*", "my_provider2", Scope::Access::kAll},
      {"provider:" + std::string(64, 'a') + ":write", std::string(64, 'a'), Scope::Access::kWrite},
      {"provider:x:read", "x", Scope::Access::kRead},
  };
  for (const Case& c : cases) {
    Result<Scope> parsed = parseScope(c.text);
    ASSERT_TRUE(parsed.has_value()) << c.text << ": " << parsed.error().message;
    EXPECT_EQ(parsed->provider, c.provider) << c.text;
    EXPECT_EQ(parsed->access, c.access) << c.text;
    EXPECT_EQ(formatScope(*parsed), c.text);
  }
}

TEST(ScopeTest, InvalidScopesRejected) {
  const std::string cases[] = {
      "",
      "provider:",
      "provider:openai",
      "provider:openai:",
      "provider::read",
      "provider:OpenAI:read",
      "provider:openai:READ",
      "provider:openai:admin",
      "provider:openai:read:extra",
      "provider:open ai:read",
      "provider:open.ai:read",
      "provider:*:read",
      "provider:" + std::string(65, 'a') + ":read",
      "providers:openai:read",
      "Provider:openai:read",
      " provider:openai:read",
      "provider:openai:read ",
      "openai:read",
      "provider:openai:**",
  };
  for (const std::string& text : cases) {
    Result<Scope> parsed = parseScope(text);
    ASSERT_FALSE(parsed.has_value()) << '"' << text << "\" was accepted";
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidRequest) << text;
    EXPECT_TRUE(parsed.error().message.starts_with("invalid scope \"")) << parsed.error().message;
  }
}

TEST(ScopeTest, ErrorQuotesShortenedInput) {
  std::string text = "provider:" + std::string(500, 'a') + "\n:read";
  Result<Scope> parsed = parseScope(text);
  ASSERT_FALSE(parsed.has_value());
  const std::string& message = parsed.error().message;
  EXPECT_LT(message.size(), 300u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("..."), std::string::npos) << message;
}

TEST(ScopeTest, FormatScope) {
  EXPECT_EQ(formatScope(scope("openai", Scope::Access::kRead)), "provider:openai:read");
  EXPECT_EQ(formatScope(scope("openai", Scope::Access::kWrite)), "provider:openai:write");
  EXPECT_EQ(formatScope(scope("openai", Scope::Access::kAll)), "provider:openai:*");
}

TEST(ScopeTest, OperationForMethod) {
  EXPECT_EQ(operationForMethod("GET"), Operation::kRead);
  EXPECT_EQ(operationForMethod("HEAD"), Operation::kRead);
  EXPECT_EQ(operationForMethod("OPTIONS"), Operation::kRead);
  EXPECT_EQ(operationForMethod("POST"), Operation::kWrite);
  EXPECT_EQ(operationForMethod("PUT"), Operation::kWrite);
  EXPECT_EQ(operationForMethod("PATCH"), Operation::kWrite);
  EXPECT_EQ(operationForMethod("DELETE"), Operation::kWrite);
  EXPECT_EQ(operationForMethod("get"), Operation::kWrite);
  EXPECT_EQ(operationForMethod(""), Operation::kWrite);
}

TEST(ScopesAllowTest, EmptyScopesAllowEveryProvider) {
  std::vector<Scope> none;
  EXPECT_TRUE(scopesAllow(none, "openai", Operation::kRead));
  EXPECT_TRUE(scopesAllow(none, "openai", Operation::kWrite));
  EXPECT_TRUE(scopesAllow(none, "anthropic", Operation::kWrite));
}

TEST(ScopesAllowTest, ReadScopeAllowsReadOnly) {
  std::vector<Scope> scopes = {scope("openai", Scope::Access::kRead)};
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kRead));
  EXPECT_FALSE(scopesAllow(scopes, "openai", Operation::kWrite));
}

TEST(ScopesAllowTest, WriteScopeAllowsWriteOnly) {
  std::vector<Scope> scopes = {scope("openai", Scope::Access::kWrite)};
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kWrite));
  EXPECT_FALSE(scopesAllow(scopes, "openai", Operation::kRead));
}

TEST(ScopesAllowTest, WildcardAllowsBoth) {
  std::vector<Scope> scopes = {scope("openai", Scope::Access::kAll)};
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kRead));
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kWrite));
}

TEST(ScopesAllowTest, OtherProviderDenied) {
  std::vector<Scope> scopes = {scope("openai", Scope::Access::kAll)};
  EXPECT_FALSE(scopesAllow(scopes, "anthropic", Operation::kRead));
  EXPECT_FALSE(scopesAllow(scopes, "anthropic", Operation::kWrite));
  EXPECT_FALSE(scopesAllow(scopes, "openai-2", Operation::kRead));
  EXPECT_FALSE(scopesAllow(scopes, "OPENAI", Operation::kRead));
}

TEST(ScopesAllowTest, ScopesCombine) {
  std::vector<Scope> scopes = {scope("openai", Scope::Access::kRead),
                               scope("openai", Scope::Access::kWrite),
                               scope("resend", Scope::Access::kWrite)};
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kRead));
  EXPECT_TRUE(scopesAllow(scopes, "openai", Operation::kWrite));
  EXPECT_TRUE(scopesAllow(scopes, "resend", Operation::kWrite));
  EXPECT_FALSE(scopesAllow(scopes, "resend", Operation::kRead));
  EXPECT_FALSE(scopesAllow(scopes, "anthropic", Operation::kWrite));
}

TEST(ScopesAllowTest, EmptyProviderDenied) {
  EXPECT_FALSE(scopesAllow({}, "", Operation::kRead));
  EXPECT_FALSE(scopesAllow({scope("", Scope::Access::kAll)}, "", Operation::kRead));
}

TEST(ScopesAllowTest, ParsedScopesAllow) {
  Result<Scope> parsed = parseScope("provider:anthropic:read");
  ASSERT_TRUE(parsed.has_value());
  std::vector<Scope> scopes = {*parsed};
  EXPECT_TRUE(scopesAllow(scopes, "anthropic", operationForMethod("GET")));
  EXPECT_FALSE(scopesAllow(scopes, "anthropic", operationForMethod("POST")));
}

}  // namespace
}  // namespace keystore::tokens
