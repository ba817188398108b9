// Concierge requests through the management API: filing, listing, fulfilling and rejecting,
// and who may see them.
#include "admin_fixture.h"
#include "common/mask.h"

namespace keystore::admin {
namespace {

constexpr const char* kGroqPoolKey = "gsk_pool_GROQ0123456789abcdef0001";

std::string keyBody(const std::string& key) {
  return boost::json::serialize(boost::json::object{{"api_key", key}});
}

class ConciergeRoutesTest : public AdminApiTest {
 protected:
  CallResult file(const std::string& project, const std::string& provider,
                  const std::string& note = "") {
    boost::json::object body{{"provider", provider}};
    if (!note.empty()) {
      body["note"] = note;
    }
    return call("POST", "/api/v1/projects/" + project + "/concierge", boost::json::serialize(body));
  }

  CallResult fulfill(const std::string& request_id, const std::string& body) {
    return callAsOperator("POST", "/api/v1/concierge/" + request_id + "/fulfill", body);
  }

  CallResult reject(const std::string& request_id, const std::string& body) {
    return callAsOperator("POST", "/api/v1/concierge/" + request_id + "/reject", body);
  }
};

TEST_F(ConciergeRoutesTest, FileRequestForConciergeProvider) {
  std::string project = createProject("demo");
  int before = config_changes_;
  CallResult result = file("demo", "groq", "for the summarizer agent");
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_TRUE(result.str("/id").starts_with("cnc_")) << result.str("/id");
  EXPECT_EQ(result.str("/project_id"), project);
  EXPECT_EQ(result.str("/provider"), "groq");
  EXPECT_EQ(result.str("/note"), "for the summarizer agent");
  EXPECT_EQ(result.str("/status"), "open");
  EXPECT_TRUE(result.json.at("reason").is_null());
  EXPECT_TRUE(result.json.at("credential_id").is_null());
  EXPECT_TRUE(parseRfc3339(result.str("/created_at")).has_value());
  EXPECT_TRUE(parseRfc3339(result.str("/updated_at")).has_value());
  EXPECT_EQ(config_changes_, before);

  CallResult without_note = file("demo", "twilio");
  ASSERT_EQ(without_note.response.status, 201);
  EXPECT_TRUE(without_note.json.at("note").is_null());
}

TEST_F(ConciergeRoutesTest, OtherTiersRejected) {
  createProject("demo");
  for (const std::string provider : {"openai", "stripe", "neon"}) {
    CallResult result = file("demo", provider);
    EXPECT_EQ(result.response.status, 409) << provider;
    EXPECT_EQ(result.errorCode(), "conflict") << provider;
    EXPECT_NE(result.errorMessage().find("only for providers with availability concierge"),
              std::string::npos)
        << result.errorMessage();
  }

  CallResult unknown = file("demo", "nope");
  EXPECT_EQ(unknown.response.status, 400);
  EXPECT_EQ(unknown.errorCode(), "invalid_request");
  EXPECT_TRUE(store_->listConciergeRequests("", "")->empty());
}

TEST_F(ConciergeRoutesTest, RequestBodyValidated) {
  createProject("demo");
  const std::string target = "/api/v1/projects/demo/concierge";
  EXPECT_EQ(call("POST", target, "{}").errorMessage(), "\"provider\" is required");
  EXPECT_EQ(call("POST", target, R"({"provider":"groq","notes":"x"})").errorMessage(),
            "unknown member \"notes\"; expected one of: provider, note");
  EXPECT_EQ(file("demo", "groq", std::string(1001, 'n')).errorMessage(),
            "\"note\" is longer than 1000 bytes");
  EXPECT_EQ(file("demo", "groq", "bell\a").errorMessage(),
            "\"note\" must not contain control characters other than tab and newline");
  EXPECT_TRUE(store_->listConciergeRequests("", "")->empty());

  CallResult multiline = file("demo", "groq", std::string(999, 'n') + "\n");
  EXPECT_EQ(multiline.response.status, 201) << multiline.response.body;
}

TEST_F(ConciergeRoutesTest, SecondOpenRequestConflicts) {
  createProject("demo");
  createProject("other");
  CallResult first = file("demo", "groq");
  ASSERT_EQ(first.response.status, 201);

  CallResult second = file("demo", "groq");
  EXPECT_EQ(second.response.status, 409);
  EXPECT_EQ(second.errorCode(), "conflict");
  EXPECT_NE(second.errorMessage().find(first.str("/id")), std::string::npos);

  EXPECT_EQ(file("demo", "twilio").response.status, 201);
  EXPECT_EQ(file("other", "groq").response.status, 201);

  ASSERT_EQ(reject(first.str("/id"), R"({"reason":"try again later"})").response.status, 200);
  EXPECT_EQ(file("demo", "groq").response.status, 201);
}

TEST_F(ConciergeRoutesTest, FulfilProvisionsDedicatedCredential) {
  std::string project = createProject("demo");
  CallResult filed = file("demo", "groq");
  ASSERT_EQ(filed.response.status, 201);
  int before = config_changes_;

  CallResult result =
      fulfill(filed.str("/id"), R"({"api_key":")" + std::string(kGroqPoolKey) +
                                    R"(","label":"groq for demo","rpm_limit":120})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.response.body.find(kGroqPoolKey), std::string::npos);
  EXPECT_EQ(result.str("/status"), "fulfilled");
  EXPECT_EQ(result.str("/id"), filed.str("/id"));
  std::string credential_id = result.str("/credential_id");
  EXPECT_TRUE(credential_id.starts_with("cred_")) << credential_id;
  EXPECT_EQ(config_changes_, before + 1);

  auto credential = store_->getCredential(credential_id);
  ASSERT_TRUE(credential.has_value());
  EXPECT_EQ(credential->scope, "dedicated");
  EXPECT_EQ(credential->project_id, project);
  EXPECT_EQ(credential->provider, "groq");
  EXPECT_EQ(credential->label, "groq for demo");
  EXPECT_EQ(credential->rpm_limit, 120);
  EXPECT_EQ(credential->mask, maskCredential(kGroqPoolKey));
  EXPECT_EQ(poolPlaintext(credential_id), kGroqPoolKey);

  // The project had not configured groq, so it can use it at once.
  CallResult provider = call("GET", "/api/v1/projects/demo/providers/groq");
  EXPECT_EQ(provider.str("/mode"), "marketplace");
  EXPECT_EQ(provider.str("/status"), "enabled");
}

TEST_F(ConciergeRoutesTest, FulfilKeepsProjectsOwnChoice) {
  createProject("demo");
  putKey("demo", "groq", "gsk_byok_GROQ0123456789abcdef0009");
  CallResult filed = file("demo", "groq");
  ASSERT_EQ(filed.response.status, 201);
  ASSERT_EQ(fulfill(filed.str("/id"), keyBody(kGroqPoolKey)).response.status, 200);

  CallResult provider = call("GET", "/api/v1/projects/demo/providers/groq");
  EXPECT_EQ(provider.str("/mode"), "byok");
  EXPECT_EQ(provider.str("/status"), "enabled");
}

TEST_F(ConciergeRoutesTest, SecondFulfilConflicts) {
  createProject("demo");
  CallResult filed = file("demo", "groq");
  std::string id = filed.str("/id");
  CallResult first = fulfill(id, keyBody(kGroqPoolKey));
  ASSERT_EQ(first.response.status, 200);
  int before = config_changes_;

  CallResult second = fulfill(id, keyBody("gsk_pool_GROQ0123456789abcdef0002"));
  EXPECT_EQ(second.response.status, 409);
  EXPECT_EQ(second.errorCode(), "conflict");
  EXPECT_EQ(second.errorMessage(),
            "concierge request " + id + " is already fulfilled; only open requests can change");

  CallResult rejected = reject(id, R"({"reason":"changed my mind"})");
  EXPECT_EQ(rejected.response.status, 409);
  EXPECT_EQ(rejected.errorCode(), "conflict");

  EXPECT_EQ(store_->listPoolCredentials("groq")->size(), 1u);
  EXPECT_EQ(store_->getConciergeRequest(id)->credential_id, first.str("/credential_id"));
  EXPECT_EQ(store_->getConciergeRequest(id)->status, "fulfilled");
  EXPECT_EQ(config_changes_, before);
}

TEST_F(ConciergeRoutesTest, RejectRecordsReason) {
  createProject("demo");
  CallResult filed = file("demo", "groq");
  std::string id = filed.str("/id");

  CallResult no_reason = reject(id, "{}");
  EXPECT_EQ(no_reason.response.status, 400);
  EXPECT_EQ(no_reason.errorMessage(), "\"reason\" is required");
  CallResult blank = reject(id, R"({"reason":"  "})");
  EXPECT_EQ(blank.response.status, 400);
  CallResult long_reason =
      reject(id, boost::json::serialize(boost::json::object{{"reason", std::string(1001, 'r')}}));
  EXPECT_EQ(long_reason.errorMessage(), "\"reason\" is longer than 1000 bytes");
  EXPECT_EQ(store_->getConciergeRequest(id)->status, "open");

  CallResult result = reject(id, R"({"reason":"no capacity this month"})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/status"), "rejected");
  EXPECT_EQ(result.str("/reason"), "no capacity this month");
  EXPECT_TRUE(result.json.at("credential_id").is_null());

  CallResult again = reject(id, R"({"reason":"again"})");
  EXPECT_EQ(again.response.status, 409);
  EXPECT_EQ(again.errorMessage(),
            "concierge request " + id + " is already rejected; only open requests can change");
  CallResult fulfilled = fulfill(id, keyBody(kGroqPoolKey));
  EXPECT_EQ(fulfilled.response.status, 409);
  EXPECT_EQ(fulfilled.errorCode(), "conflict");
  EXPECT_TRUE(store_->listPoolCredentials("groq")->empty());
}

TEST_F(ConciergeRoutesTest, FulfilBodyValidated) {
  createProject("demo");
  std::string id = file("demo", "groq").str("/id");

  EXPECT_EQ(fulfill(id, "{}").errorMessage(), "\"api_key\" is required");
  EXPECT_EQ(fulfill(id, R"({"api_key":")" + std::string(kGroqPoolKey) + R"(","rpm_limit":-5})")
                .errorMessage(),
            "\"rpm_limit\" must be from 0 (no limit of its own) to 1000000");
  CallResult unknown =
      fulfill(id, R"({"api_key":")" + std::string(kGroqPoolKey) + R"(","scope":"shared"})");
  EXPECT_EQ(unknown.response.status, 400);
  EXPECT_EQ(unknown.response.body.find(kGroqPoolKey), std::string::npos);
  EXPECT_EQ(fulfill(id, keyBody(maskCredential(kGroqPoolKey))).errorMessage(),
            "the value looks like a masked key; send the full key");
  EXPECT_EQ(store_->getConciergeRequest(id)->status, "open");

  CallResult missing = fulfill("cnc_000000000000000000000000", keyBody(kGroqPoolKey));
  EXPECT_EQ(missing.response.status, 404);
  EXPECT_EQ(missing.errorMessage(), "concierge request cnc_000000000000000000000000 not found");
}

TEST_F(ConciergeRoutesTest, FulfilWithCredentialFields) {
  createProject("demo");
  std::string id = file("demo", "twilio").str("/id");
  CallResult plain = fulfill(id, keyBody("twilio-auth-token-0123456789abcdef"));
  EXPECT_EQ(plain.response.status, 400);

  boost::json::object body{{"credential",
                            {{"account_sid", "AC0123456789abcdef0123456789abcdef"},
                             {"auth_token", "twilio-auth-token-0123456789abcdef"}}}};
  CallResult result = fulfill(id, boost::json::serialize(body));
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(poolPlaintext(result.str("/credential_id")),
            R"({"account_sid":"AC0123456789abcdef0123456789abcdef",)"
            R"("auth_token":"twilio-auth-token-0123456789abcdef"})");
}

TEST_F(ConciergeRoutesTest, ListsFilterByStatus) {
  std::string demo = createProject("demo");
  createProject("other");
  std::string open_id = file("demo", "groq").str("/id");
  std::string fulfilled_id = file("demo", "twilio").str("/id");
  std::string other_id = file("other", "groq").str("/id");
  boost::json::object twilio{{"credential",
                              {{"account_sid", "AC0123456789abcdef0123456789abcdef"},
                               {"auth_token", "twilio-auth-token-0123456789abcdef"}}}};
  ASSERT_EQ(fulfill(fulfilled_id, boost::json::serialize(twilio)).response.status, 200);

  auto ids = [](const CallResult& result) {
    std::set<std::string> found;
    for (const boost::json::value& entry : result.json.at("data").as_array()) {
      found.insert(std::string(entry.at("id").as_string()));
    }
    return found;
  };
  EXPECT_EQ(ids(call("GET", "/api/v1/projects/demo/concierge")),
            (std::set<std::string>{open_id, fulfilled_id}));
  EXPECT_EQ(ids(call("GET", "/api/v1/projects/demo/concierge?status=open")),
            (std::set<std::string>{open_id}));
  EXPECT_EQ(ids(callAsOperator("GET", "/api/v1/concierge?status=open")),
            (std::set<std::string>{open_id, other_id}));
  EXPECT_EQ(ids(callAsOperator("GET", "/api/v1/concierge")),
            (std::set<std::string>{open_id, fulfilled_id, other_id}));
  EXPECT_EQ(ids(callAsOperator("GET", "/api/v1/concierge?status=fulfilled")),
            (std::set<std::string>{fulfilled_id}));

  CallResult invalid = call("GET", "/api/v1/projects/demo/concierge?status=closed");
  EXPECT_EQ(invalid.response.status, 400);
  EXPECT_EQ(invalid.errorMessage(), "query parameter status must be open, fulfilled or rejected");
  EXPECT_EQ(callAsOperator("GET", "/api/v1/concierge?status=done").response.status, 400);
}

TEST_F(ConciergeRoutesTest, OtherOrganizationSeesNothing) {
  std::string project = createProject("demo");
  std::string id = file("demo", "groq").str("/id");

  CallResult list = callWithKey(key_b_, "GET", "/api/v1/projects/" + project + "/concierge");
  EXPECT_EQ(list.response.status, 404);
  EXPECT_EQ(list.errorCode(), "not_found");

  CallResult create = callWithKey(key_b_, "POST", "/api/v1/projects/" + project + "/concierge",
                                  R"({"provider":"twilio"})");
  EXPECT_EQ(create.response.status, 404);

  CallResult get = callWithKey(key_b_, "GET", "/api/v1/concierge/" + id);
  EXPECT_EQ(get.response.status, 404);
  EXPECT_EQ(get.errorMessage(), "concierge request " + id + " not found");

  CallResult own = call("GET", "/api/v1/concierge/" + id);
  ASSERT_EQ(own.response.status, 200);
  EXPECT_EQ(own.str("/provider"), "groq");

  // The operator serves every organization, its own included.
  CallResult created = callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"tenant-b"})");
  std::string other_id =
      callWithKey(key_b_, "POST", "/api/v1/projects/tenant-b/concierge", R"({"provider":"groq"})")
          .str("/id");
  ASSERT_FALSE(other_id.empty());
  EXPECT_EQ(callAsOperator("GET", "/api/v1/concierge/" + other_id).response.status, 200);
  EXPECT_EQ(call("GET", "/api/v1/concierge/" + other_id).response.status, 404);
  EXPECT_EQ(fulfill(other_id, keyBody(kGroqPoolKey)).response.status, 200);
  EXPECT_EQ(store_->getCredential(store_->getConciergeRequest(other_id)->credential_id)->project_id,
            created.str("/id"));
}

}  // namespace
}  // namespace keystore::admin
