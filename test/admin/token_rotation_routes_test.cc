// POST /api/v1/tokens/{id}/rotate.
#include <gtest/gtest.h>

#include <string>

#include "admin_fixture.h"
#include "common/clock.h"

namespace keystore::admin {
namespace {

TEST_F(AdminApiTest, RotateTokenKeepsGrantsAndLinksTokens) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  CallResult minted = call("POST", "/api/v1/agents/" + agent + "/tokens",
                           R"({"scopes":["provider:openai:*"],"models":["gpt-4o-mini"],)"
                           R"("expires_at":"2999-01-01T00:00:00Z"})");
  ASSERT_EQ(minted.response.status, 201) << minted.response.body;
  std::string old_id = minted.str("/id");

  CallResult rotated = call("POST", "/api/v1/tokens/" + old_id + "/rotate", R"({"grace":"10m"})");
  ASSERT_EQ(rotated.response.status, 201) << rotated.response.body;
  std::string new_id = rotated.str("/id");
  EXPECT_NE(new_id, old_id);
  EXPECT_EQ(rotated.str("/token").size(), 67u);
  EXPECT_NE(rotated.str("/token"), minted.str("/token"));
  EXPECT_EQ(rotated.str("/agent_id"), agent);
  EXPECT_EQ(rotated.str("/scopes/0"), "provider:openai:*");
  EXPECT_EQ(rotated.str("/models/0"), "gpt-4o-mini");
  EXPECT_EQ(rotated.str("/expires_at"), minted.str("/expires_at"));
  EXPECT_EQ(rotated.str("/rotated_from"), old_id);
  EXPECT_TRUE(rotated.json.at_pointer("/rotated_to").is_null());

  CallResult old_token = call("GET", "/api/v1/tokens/" + old_id);
  ASSERT_EQ(old_token.response.status, 200);
  EXPECT_EQ(old_token.str("/status"), "active");
  EXPECT_EQ(old_token.str("/rotated_to"), new_id);
  EXPECT_FALSE(old_token.json.as_object().contains("token"));
  std::optional<int64_t> old_expiry = parseRfc3339(old_token.str("/expires_at"));
  ASSERT_TRUE(old_expiry.has_value());
  int64_t grace_left = *old_expiry - nowUnixMillis();
  EXPECT_GT(grace_left, 9 * 60 * 1000);
  EXPECT_LE(grace_left, 10 * 60 * 1000);
}

TEST_F(AdminApiTest, RotateTokenWithoutGraceRevokesOld) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string first = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  std::string second = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");

  CallResult absent = call("POST", "/api/v1/tokens/" + first + "/rotate");
  ASSERT_EQ(absent.response.status, 201) << absent.response.body;
  EXPECT_EQ(call("GET", "/api/v1/tokens/" + first).str("/status"), "revoked");

  CallResult zero = call("POST", "/api/v1/tokens/" + second + "/rotate", R"({"grace":"0"})");
  ASSERT_EQ(zero.response.status, 201) << zero.response.body;
  EXPECT_EQ(call("GET", "/api/v1/tokens/" + second).str("/status"), "revoked");
}

TEST_F(AdminApiTest, RotateTokenGraceStopsAtOwnExpiry) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  CallResult minted = call("POST", "/api/v1/agents/" + agent + "/tokens", R"({"expires_in":"5m"})");
  std::string old_id = minted.str("/id");

  CallResult rotated = call("POST", "/api/v1/tokens/" + old_id + "/rotate", R"({"grace":"1h"})");
  ASSERT_EQ(rotated.response.status, 201) << rotated.response.body;
  EXPECT_EQ(call("GET", "/api/v1/tokens/" + old_id).str("/expires_at"), minted.str("/expires_at"));
}

TEST_F(AdminApiTest, RotateRevokedOrRotatedTokenConflicts) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string revoked = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  call("POST", "/api/v1/tokens/" + revoked + "/revoke");
  std::string expired = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  call("PATCH", "/api/v1/tokens/" + expired, R"({"expires_at":"now"})");
  std::string rotated = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");
  call("POST", "/api/v1/tokens/" + rotated + "/rotate", R"({"grace":"1h"})");

  for (const std::string& id : {revoked, expired, rotated}) {
    CallResult result = call("POST", "/api/v1/tokens/" + id + "/rotate", R"({"grace":"1m"})");
    EXPECT_EQ(result.response.status, 409) << id;
    EXPECT_EQ(result.errorCode(), "conflict") << id;
  }
}

TEST_F(AdminApiTest, RotateTokenRejectsBadInput) {
  createProject("demo");
  std::string agent = createAgent("demo", "worker");
  std::string id = call("POST", "/api/v1/agents/" + agent + "/tokens", "").str("/id");

  for (const char* body : {R"({"grace":"soon"})", R"({"grace":5})", R"({"scopes":[]})"}) {
    CallResult result = call("POST", "/api/v1/tokens/" + id + "/rotate", body);
    EXPECT_EQ(result.response.status, 400) << body;
  }
  EXPECT_EQ(call("GET", "/api/v1/tokens/" + id).str("/status"), "active");

  CallResult unknown = call("POST", "/api/v1/tokens/tok_doesnotexist/rotate");
  EXPECT_EQ(unknown.response.status, 404);
}

}  // namespace
}  // namespace keystore::admin
