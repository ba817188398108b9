#include "tokens/agent_token.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <unordered_set>

namespace keystore::tokens {
namespace {

bool isLowercaseHex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST(AgentTokenTest, GeneratedTokenHasShape) {
  Secret token = generateAgentToken();
  std::string_view text = token.reveal();
  ASSERT_EQ(text.size(), 67u);
  EXPECT_TRUE(text.starts_with("ks_"));
  EXPECT_TRUE(isLowercaseHex(text.substr(3)));
  EXPECT_TRUE(isAgentTokenShaped(text));
  EXPECT_FALSE(isAdminKeyShaped(text));
}

TEST(AgentTokenTest, GeneratedAdminKeyHasShape) {
  Secret key = generateAdminKey();
  std::string_view text = key.reveal();
  ASSERT_EQ(text.size(), 68u);
  EXPECT_TRUE(text.starts_with("ksa_"));
  EXPECT_TRUE(isLowercaseHex(text.substr(4)));
  EXPECT_TRUE(isAdminKeyShaped(text));
  EXPECT_FALSE(isAgentTokenShaped(text));
}

TEST(AgentTokenTest, GeneratedTokensDistinct) {
  constexpr size_t kCount = 1000;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < kCount; ++i) {
    seen.insert(std::string(generateAgentToken().reveal()));
    seen.insert(std::string(generateAdminKey().reveal()));
  }
  EXPECT_EQ(seen.size(), 2 * kCount);
}

TEST(AgentTokenTest, MalformedTokensRejected) {
  std::string digits(64, 'a');
  const std::string cases[] = {
      "",
      "ks_",
      "ks_" + digits.substr(1),        // 63 digits
      "ks_" + digits + "a",            // 65 digits
      "ks_" + std::string(64, 'A'),    // uppercase
      "ks_" + digits.substr(1) + "g",  // not hex
      "KS_" + digits,                  // prefix is case-sensitive
      "sk_" + digits,
      "ksa_" + digits,  // an admin key is not an agent token
      " ks_" + digits.substr(1),
      "ks_" + digits.substr(1) + "\n",
      // A byte next to the digit and letter ranges, or outside ASCII, in the middle.
      "ks_" + digits.substr(0, 32) + "/" + digits.substr(33),
      "ks_" + digits.substr(0, 32) + ":" + digits.substr(33),
      "ks_" + digits.substr(0, 32) + "`" + digits.substr(33),
      "ks_" + digits.substr(0, 32) + "\xe0" + digits.substr(33),
  };
  for (const std::string& text : cases) {
    EXPECT_FALSE(isAgentTokenShaped(text)) << '"' << text << '"';
  }
  EXPECT_TRUE(isAgentTokenShaped("ks_" + digits));
}

TEST(AgentTokenTest, MalformedAdminKeysRejected) {
  std::string digits(64, '0');
  EXPECT_TRUE(isAdminKeyShaped("ksa_" + digits));
  EXPECT_FALSE(isAdminKeyShaped("ksa_" + digits.substr(1)));
  EXPECT_FALSE(isAdminKeyShaped("ksa_" + digits + "0"));
  EXPECT_FALSE(isAdminKeyShaped("ksa_" + std::string(64, 'F')));
  EXPECT_FALSE(isAdminKeyShaped("ks_" + digits));
  EXPECT_FALSE(isAdminKeyShaped("ksa_"));
}

TEST(AgentTokenTest, HashIsSha256Hex) {
  // SHA-256("abc") from FIPS 180-2, appendix B.1.
  EXPECT_EQ(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  Secret token = generateAgentToken();
  std::string hash = hashToken(token.reveal());
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_TRUE(isLowercaseHex(hash));
  EXPECT_EQ(hashToken(token.reveal()), hash);
  EXPECT_EQ(hash.find(token.reveal().substr(3)), std::string::npos);
}

TEST(AgentTokenTest, HintIsLastFourOfHash) {
  EXPECT_EQ(tokenHint("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "15ad");
  EXPECT_EQ(tokenHint(hashToken("abc")), "15ad");
  EXPECT_EQ(tokenHint("abc"), "abc");
  EXPECT_EQ(tokenHint(""), "");
}

}  // namespace
}  // namespace keystore::tokens

namespace keystore::tokens {
namespace {

TEST(HashTokenDigitsTest, MatchesHashToken) {
  std::array<char, 64> abc = hashTokenDigits("abc");
  EXPECT_EQ(std::string(abc.data(), abc.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  Secret token = generateAgentToken();
  std::array<char, 64> digits = hashTokenDigits(token.reveal());
  EXPECT_EQ(std::string(digits.data(), digits.size()), hashToken(token.reveal()));
}

}  // namespace
}  // namespace keystore::tokens
