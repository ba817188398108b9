// Password hashing, session and CSRF tokens, cookie parsing and login throttling.
#include <gtest/gtest.h>

#include "accounts/login_throttle.h"
#include "accounts/password.h"
#include "accounts/session_token.h"

namespace keystore::accounts {
namespace {

constexpr int64_t kMinute = 60 * 1000;

TEST(PasswordTest, HashVerifiesOnlyItsPassword) {
  Secret password("correct horse battery");
  Result<std::string> hash = hashPassword(password);
  ASSERT_TRUE(hash.has_value()) << hash.error().message;
  EXPECT_TRUE(hash->starts_with("$argon2id$"));
  EXPECT_EQ(hash->find("correct horse"), std::string::npos);
  EXPECT_TRUE(verifyPassword(*hash, password));
  EXPECT_FALSE(verifyPassword(*hash, Secret("correct horse batterY")));
  EXPECT_FALSE(verifyPassword("", password));
  EXPECT_FALSE(verifyPassword("$argon2id$garbage", password));
}

TEST(PasswordTest, SamePasswordGetsDistinctSalts) {
  Secret password("correct horse battery");
  Result<std::string> first = hashPassword(password);
  Result<std::string> second = hashPassword(password);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_NE(*first, *second);
}

TEST(PasswordTest, NewPasswordRules) {
  EXPECT_TRUE(validateNewPassword("a@x.test", Secret("twelve chars")).has_value());
  Result<void> short_one = validateNewPassword("a@x.test", Secret("eleven char"));
  ASSERT_FALSE(short_one.has_value());
  EXPECT_EQ(short_one.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(short_one.error().message, "the password must be at least 12 characters long");

  Result<void> email = validateNewPassword("alice@example.test", Secret("ALICE@example.test"));
  ASSERT_FALSE(email.has_value());
  EXPECT_EQ(email.error().message, "the password must not be the email address");

  EXPECT_FALSE(validateNewPassword("a@x.test", Secret(std::string(1025, 'p'))).has_value());
}

TEST(SessionTokenTest, ShapeAndHash) {
  Secret token = generateSessionToken();
  EXPECT_EQ(token.reveal().size(), 4u + 64u);
  EXPECT_TRUE(isSessionTokenShaped(token.reveal()));
  EXPECT_NE(generateSessionToken().reveal(), token.reveal());
  EXPECT_FALSE(isSessionTokenShaped("ksa_" + std::string(64, 'a')));
  EXPECT_FALSE(isSessionTokenShaped("kss_" + std::string(64, 'A')));
  EXPECT_FALSE(isSessionTokenShaped("kss_" + std::string(63, 'a')));
  EXPECT_EQ(hashSessionToken("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(SessionTokenTest, CsrfComparison) {
  std::string csrf = generateCsrfToken();
  EXPECT_EQ(csrf.size(), 64u);
  EXPECT_TRUE(csrfTokenMatches(csrf, csrf));
  EXPECT_FALSE(csrfTokenMatches(csrf, ""));
  EXPECT_FALSE(csrfTokenMatches(csrf, csrf.substr(1)));
  EXPECT_FALSE(csrfTokenMatches(csrf, generateCsrfToken()));
  EXPECT_FALSE(csrfTokenMatches("", ""));
}

TEST(SessionTokenTest, CookieValueFindsNamedCookie) {
  EXPECT_EQ(cookieValue("ks_session=abc", "ks_session"), "abc");
  EXPECT_EQ(cookieValue("theme=dark; ks_session=abc ; x=1", "ks_session"), "abc");
  EXPECT_EQ(cookieValue("xks_session=abc", "ks_session"), "");
  EXPECT_EQ(cookieValue("", "ks_session"), "");
  EXPECT_EQ(cookieValue("ks_session", "ks_session"), "");
}

TEST(LoginThrottleTest, FifthFailureBlocksEmail) {
  LoginThrottle throttle;
  int64_t now = 1'000'000'000;
  for (int i = 0; i < 4; ++i) {
    throttle.recordFailure("a@x.test", "10.0.0.1", now + i);
    EXPECT_FALSE(throttle.retryAfterSeconds("a@x.test", "10.0.0.1", now + i).has_value());
  }
  throttle.recordFailure("A@X.TEST", "10.0.0.2", now + 4);
  std::optional<int64_t> retry = throttle.retryAfterSeconds("a@x.test", "10.0.0.9", now + 5);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 15 * 60);
  EXPECT_FALSE(throttle.retryAfterSeconds("b@x.test", "10.0.0.9", now + 5).has_value());
}

TEST(LoginThrottleTest, WindowSlides) {
  LoginThrottle throttle;
  int64_t now = 1'000'000'000;
  for (int i = 0; i < 5; ++i) {
    throttle.recordFailure("a@x.test", "10.0.0.1", now + i * kMinute);
  }
  // The oldest failure leaves the window 15 minutes after it happened.
  std::optional<int64_t> retry = throttle.retryAfterSeconds("a@x.test", "", now + 5 * kMinute);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 10 * 60);
  EXPECT_TRUE(throttle.retryAfterSeconds("a@x.test", "", now + 15 * kMinute - 1).has_value());
  EXPECT_FALSE(throttle.retryAfterSeconds("a@x.test", "", now + 15 * kMinute).has_value());
}

TEST(LoginThrottleTest, AddressLimitCoversManyEmails) {
  LoginThrottle throttle(ThrottlePolicy{
      .max_failures_per_email = 5, .max_failures_per_address = 3, .window_ms = 15 * kMinute});
  int64_t now = 1'000'000'000;
  throttle.recordFailure("a@x.test", "10.0.0.1", now);
  throttle.recordFailure("b@x.test", "10.0.0.1", now);
  EXPECT_FALSE(throttle.retryAfterSeconds("c@x.test", "10.0.0.1", now).has_value());
  throttle.recordFailure("c@x.test", "10.0.0.1", now);
  EXPECT_TRUE(throttle.retryAfterSeconds("d@x.test", "10.0.0.1", now).has_value());
  EXPECT_FALSE(throttle.retryAfterSeconds("d@x.test", "10.0.0.2", now).has_value());
}

TEST(LoginThrottleTest, SuccessClearsEmailOnly) {
  LoginThrottle throttle(ThrottlePolicy{
      .max_failures_per_email = 2, .max_failures_per_address = 2, .window_ms = 15 * kMinute});
  int64_t now = 1'000'000'000;
  throttle.recordFailure("a@x.test", "10.0.0.1", now);
  throttle.recordFailure("a@x.test", "10.0.0.2", now);
  EXPECT_TRUE(throttle.retryAfterSeconds("a@x.test", "10.0.0.3", now).has_value());
  throttle.recordSuccess("a@x.test");
  EXPECT_FALSE(throttle.retryAfterSeconds("a@x.test", "10.0.0.3", now).has_value());
}

}  // namespace
}  // namespace keystore::accounts
