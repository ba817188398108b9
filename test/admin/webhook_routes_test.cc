// The webhook endpoint routes, and the events that management changes publish.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

#include "admin_fixture.h"
#include "webhooks/endpoint_secret.h"
#include "webhooks/event.h"
#include "webhooks/publisher.h"

namespace keystore::admin {
namespace {

// A public IP literal, so creation needs no DNS.
constexpr std::string_view kPublicUrl = "https://93.184.216.34/hooks/keystore";

class WebhookRoutesTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    rebuildApi(false);
    project_ = createProject("hooks");
  }

  void rebuildApi(bool allow_private) {
    AdminApiOptions options;
    options.on_config_change = [this] { ++config_changes_; };
    options.publish_event = [this](webhooks::Event event) { events_.push_back(std::move(event)); };
    options.on_webhook_queued = [this] { ++wakes_; };
    options.allow_private_webhooks = allow_private;
    api_ = std::make_unique<AdminApi>(*store_, *vault_, *catalog_, std::move(options));
  }

  CallResult createWebhook(std::string_view url, const std::string& extra = "") {
    return call("POST", "/api/v1/projects/" + project_ + "/webhooks",
                R"({"url":")" + std::string(url) + "\"" + extra + "}");
  }

  // The event types published so far, in order.
  std::vector<std::string> eventTypes() const {
    std::vector<std::string> types;
    for (const webhooks::Event& event : events_) {
      types.push_back(event.type);
    }
    return types;
  }

  std::string project_;
  std::vector<webhooks::Event> events_;
  int wakes_ = 0;
};

TEST_F(WebhookRoutesTest, CreateShowsSecretOnce) {
  CallResult created =
      createWebhook(kPublicUrl, R"(,"events":["agent.paused"],"description":"ops")");
  ASSERT_EQ(created.response.status, 201) << created.response.body;
  std::string secret = created.str("/secret");
  EXPECT_TRUE(std::regex_match(secret, std::regex("^whsec_[0-9a-f]{64}$"))) << secret;
  std::string id = created.str("/id");
  EXPECT_TRUE(id.starts_with("whk_"));
  EXPECT_EQ(created.str("/url"), kPublicUrl);
  EXPECT_EQ(created.str("/events/0"), "agent.paused");
  EXPECT_EQ(created.str("/status"), "active");

  CallResult read = call("GET", "/api/v1/webhooks/" + id);
  ASSERT_EQ(read.response.status, 200);
  EXPECT_EQ(read.json.as_object().count("secret"), 0u);
  EXPECT_EQ(read.response.body.find(secret), std::string::npos);
  CallResult listed = call("GET", "/api/v1/projects/" + project_ + "/webhooks");
  ASSERT_EQ(listed.response.status, 200);
  EXPECT_EQ(listed.str("/data/0/id"), id);
  EXPECT_EQ(listed.response.body.find(secret), std::string::npos);
  EXPECT_EQ(listed.response.body.find("whsec_"), std::string::npos);

  // Stored only as ciphertext, which the vault opens to the same secret.
  auto stored = store_->getWebhookEndpoint(id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->secret_ciphertext.find(secret), std::string::npos);
  auto opened = webhooks::openEndpointSecret(*store_, *vault_, *stored);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->reveal(), secret);
}

TEST_F(WebhookRoutesTest, SecretBoundToEndpoint) {
  CallResult first = createWebhook(kPublicUrl);
  CallResult second = createWebhook(kPublicUrl);
  ASSERT_EQ(first.response.status, 201);
  ASSERT_EQ(second.response.status, 201);
  auto one = store_->getWebhookEndpoint(first.str("/id"));
  auto two = store_->getWebhookEndpoint(second.str("/id"));
  ASSERT_TRUE(one.has_value());
  ASSERT_TRUE(two.has_value());

  // A ciphertext copied to another endpoint's row does not open there.
  store::WebhookEndpoint swapped = *two;
  swapped.secret_ciphertext = one->secret_ciphertext;
  auto opened = webhooks::openEndpointSecret(*store_, *vault_, swapped);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kByokKeyUnreadable);
}

TEST_F(WebhookRoutesTest, RotateReplacesSecret) {
  CallResult created = createWebhook(kPublicUrl);
  ASSERT_EQ(created.response.status, 201);
  std::string id = created.str("/id");

  CallResult rotated = call("POST", "/api/v1/webhooks/" + id + "/rotate-secret");
  ASSERT_EQ(rotated.response.status, 200) << rotated.response.body;
  std::string secret = rotated.str("/secret");
  EXPECT_TRUE(secret.starts_with("whsec_"));
  EXPECT_NE(secret, created.str("/secret"));
  auto stored = store_->getWebhookEndpoint(id);
  ASSERT_TRUE(stored.has_value());
  auto opened = webhooks::openEndpointSecret(*store_, *vault_, *stored);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->reveal(), secret);
}

TEST_F(WebhookRoutesTest, SecretNeverLogged) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  CallResult created = createWebhook(kPublicUrl);
  std::string id = created.str("/id");
  CallResult rotated = call("POST", "/api/v1/webhooks/" + id + "/rotate-secret");
  call("PATCH", "/api/v1/webhooks/" + id, R"({"url":"ftp://x"})");
  call("GET", "/api/v1/webhooks/whk_missing");
  spdlog::set_default_logger(previous);

  ASSERT_EQ(created.response.status, 201);
  ASSERT_EQ(rotated.response.status, 200);
  EXPECT_FALSE(log.str().empty());  // the failures above were logged
  EXPECT_EQ(log.str().find(created.str("/secret")), std::string::npos);
  EXPECT_EQ(log.str().find(rotated.str("/secret")), std::string::npos);
  EXPECT_EQ(log.str().find("whsec_"), std::string::npos);
}

TEST_F(WebhookRoutesTest, PrivateUrlsRejected) {
  for (std::string_view url :
       {"http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook", "http://10.0.0.5/", "http://169.254.169.254/"}) {
    CallResult result = createWebhook(url);
    EXPECT_EQ(result.response.status, 400) << url;
    EXPECT_EQ(result.errorCode(), "invalid_request") << url;
  }
  CallResult listed = call("GET", "/api/v1/projects/" + project_ + "/webhooks");
  EXPECT_EQ(listed.response.body, R"({"data":[]})");
}

TEST_F(WebhookRoutesTest, PrivateUrlAllowedWhenEnabled) {
  rebuildApi(true);
  CallResult result = createWebhook("http://127.0.0.1:9000/hook");
  EXPECT_EQ(result.response.status, 201) << result.response.body;
}

TEST_F(WebhookRoutesTest, MalformedInputRejected) {
  EXPECT_EQ(createWebhook("ftp://93.184.216.34/").response.status, 400);
  EXPECT_EQ(createWebhook("https://user:pw@93.184.216.34/").response.status, 400);
  EXPECT_EQ(createWebhook(kPublicUrl, R"(,"events":["agent.updated"])").response.status, 400);
  EXPECT_EQ(createWebhook(kPublicUrl, R"(,"status":"paused")").response.status, 400);
  EXPECT_EQ(createWebhook(kPublicUrl, R"(,"secret":"whsec_x")").response.status, 400);
  CallResult missing = call("POST", "/api/v1/projects/" + project_ + "/webhooks", "{}");
  EXPECT_EQ(missing.response.status, 400);
  EXPECT_EQ(missing.errorCode(), "invalid_request");
}

TEST_F(WebhookRoutesTest, PatchChangesFields) {
  std::string id = createWebhook(kPublicUrl).str("/id");
  CallResult patched =
      call("PATCH", "/api/v1/webhooks/" + id,
           R"({"status":"disabled","events":["budget.exceeded","budget.exceeded"],)"
           R"("description":"new","url":"https://93.184.216.35/x"})");
  ASSERT_EQ(patched.response.status, 200) << patched.response.body;
  EXPECT_EQ(patched.str("/status"), "disabled");
  EXPECT_EQ(patched.str("/description"), "new");
  EXPECT_EQ(patched.str("/url"), "https://93.184.216.35/x");
  EXPECT_EQ(patched.json.at_pointer("/events").as_array().size(), 1u);

  EXPECT_EQ(call("PATCH", "/api/v1/webhooks/" + id, "{}").response.status, 400);
  EXPECT_EQ(
      call("PATCH", "/api/v1/webhooks/" + id, R"({"url":"http://127.0.0.1/"})").response.status,
      400);
  CallResult after = call("GET", "/api/v1/webhooks/" + id);
  EXPECT_EQ(after.str("/url"), "https://93.184.216.35/x");
}

TEST_F(WebhookRoutesTest, OtherOrganizationGetsNotFound) {
  std::string id = createWebhook(kPublicUrl).str("/id");
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/api/v1/webhooks/" + id},
      {"PATCH", "/api/v1/webhooks/" + id},
      {"DELETE", "/api/v1/webhooks/" + id},
      {"POST", "/api/v1/webhooks/" + id + "/rotate-secret"},
      {"GET", "/api/v1/webhooks/" + id + "/deliveries"},
      {"POST", "/api/v1/webhooks/" + id + "/test"},
      {"GET", "/api/v1/projects/" + project_ + "/webhooks"},
      {"POST", "/api/v1/projects/" + project_ + "/webhooks"},
  };
  for (const auto& [method, target] : requests) {
    CallResult result = callWithKey(key_b_, method, target, R"({"status":"disabled"})");
    EXPECT_EQ(result.response.status, 404) << method << " " << target;
    EXPECT_EQ(result.errorCode(), "not_found") << method << " " << target;
  }
  auto stored = store_->getWebhookEndpoint(id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->status, "active");
}

TEST_F(WebhookRoutesTest, DeleteRemovesEndpoint) {
  std::string id = createWebhook(kPublicUrl).str("/id");
  CallResult deleted = call("DELETE", "/api/v1/webhooks/" + id);
  ASSERT_EQ(deleted.response.status, 200);
  EXPECT_EQ(deleted.response.body, R"({"id":")" + id + R"(","deleted":true})");
  EXPECT_EQ(call("GET", "/api/v1/webhooks/" + id).response.status, 404);
}

TEST_F(WebhookRoutesTest, TestQueuesOneDelivery) {
  std::string id = createWebhook(kPublicUrl, R"(,"events":["agent.paused"])").str("/id");
  CallResult queued = call("POST", "/api/v1/webhooks/" + id + "/test");
  ASSERT_EQ(queued.response.status, 202) << queued.response.body;
  EXPECT_EQ(wakes_, 1);

  CallResult deliveries = call("GET", "/api/v1/webhooks/" + id + "/deliveries");
  ASSERT_EQ(deliveries.response.status, 200);
  EXPECT_EQ(deliveries.json.at_pointer("/data").as_array().size(), 1u);
  EXPECT_EQ(deliveries.str("/data/0/id"), queued.str("/delivery_id"));
  EXPECT_EQ(deliveries.str("/data/0/event_type"), "webhook.test");
  EXPECT_EQ(deliveries.str("/data/0/status"), "pending");
  EXPECT_TRUE(deliveries.json.at_pointer("/next_cursor").is_null());

  call("PATCH", "/api/v1/webhooks/" + id, R"({"status":"disabled"})");
  CallResult disabled = call("POST", "/api/v1/webhooks/" + id + "/test");
  EXPECT_EQ(disabled.response.status, 409);
}

TEST_F(WebhookRoutesTest, DeliveriesPaginate) {
  CallResult created = createWebhook(kPublicUrl);
  std::string id = created.str("/id");
  auto endpoint = store_->getWebhookEndpoint(id);
  ASSERT_TRUE(endpoint.has_value());
  std::vector<store::WebhookDelivery> deliveries;
  for (int i = 0; i < 3; ++i) {
    webhooks::Event event{.id = "evt_" + std::to_string(i),
                          .type = "agent.created",
                          .project_id = project_,
                          .created_at = 1000 + i,
                          .data = {}};
    deliveries.push_back(webhooks::makeDelivery(event, *endpoint, 1000 + i));
  }
  ASSERT_TRUE(store_->enqueueWebhookDeliveries(deliveries).has_value());

  CallResult first = call("GET", "/api/v1/webhooks/" + id + "/deliveries?limit=2");
  ASSERT_EQ(first.response.status, 200);
  ASSERT_EQ(first.json.at_pointer("/data").as_array().size(), 2u);
  EXPECT_EQ(first.str("/data/0/event_id"), "evt_2");
  EXPECT_EQ(first.str("/data/1/event_id"), "evt_1");
  std::string cursor = first.str("/next_cursor");
  EXPECT_EQ(cursor, deliveries[1].id);

  CallResult second =
      call("GET", "/api/v1/webhooks/" + id + "/deliveries?limit=2&before=" + cursor);
  ASSERT_EQ(second.response.status, 200);
  ASSERT_EQ(second.json.at_pointer("/data").as_array().size(), 1u);
  EXPECT_EQ(second.str("/data/0/event_id"), "evt_0");
  EXPECT_TRUE(second.json.at_pointer("/next_cursor").is_null());

  EXPECT_EQ(call("GET", "/api/v1/webhooks/" + id + "/deliveries?limit=0").response.status, 400);
  EXPECT_EQ(call("GET", "/api/v1/webhooks/" + id + "/deliveries?limit=101").response.status, 400);
}

TEST_F(WebhookRoutesTest, AgentChangesPublishEvents) {
  std::string agent = createAgent(project_, "worker");
  ASSERT_EQ(call("PATCH", "/api/v1/agents/" + agent, R"({"status":"paused"})").response.status,
            200);
  ASSERT_EQ(call("PATCH", "/api/v1/agents/" + agent, R"({"name":"renamed"})").response.status, 200);
  CallResult deleted = call("DELETE", "/api/v1/agents/" + agent);
  ASSERT_EQ(deleted.response.status, 200) << deleted.response.body;
  EXPECT_EQ(deleted.str("/status"), "revoked");
  ASSERT_EQ(call("DELETE", "/api/v1/agents/" + agent).response.status, 200);

  EXPECT_EQ(eventTypes(),
            (std::vector<std::string>{"agent.created", "agent.paused", "agent.deleted"}));
  for (const webhooks::Event& event : events_) {
    EXPECT_EQ(event.project_id, project_);
    EXPECT_EQ(event.data.at("agent_id").as_string(), agent);
  }
}

TEST_F(WebhookRoutesTest, TokenRevokePublishesOnce) {
  std::string agent = createAgent(project_, "worker");
  CallResult token = call("POST", "/api/v1/agents/" + agent + "/tokens", "{}");
  ASSERT_EQ(token.response.status, 201) << token.response.body;
  std::string token_id = token.str("/id");
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + token_id).response.status, 200);
  ASSERT_EQ(call("POST", "/api/v1/tokens/" + token_id + "/revoke").response.status, 200);

  EXPECT_EQ(eventTypes(), (std::vector<std::string>{"agent.created", "token.revoked"}));
  EXPECT_EQ(events_.back().data.at("token_id").as_string(), token_id);
}

TEST_F(WebhookRoutesTest, ReplacedKeyPublishesRotation) {
  putKey(project_, "openai", "sk-test-FIRST-0001");
  EXPECT_TRUE(events_.empty());
  putKey(project_, "openai", "sk-test-SECOND-0002");
  ASSERT_EQ(eventTypes(), (std::vector<std::string>{"credential.rotated"}));
  const boost::json::object& data = events_[0].data;
  EXPECT_EQ(data.at("provider").as_string(), "openai");
  EXPECT_NE(data.at("credential_id").as_string(), data.at("previous_credential_id").as_string());
  std::string serialized = boost::json::serialize(data);
  EXPECT_EQ(serialized.find("sk-test-"), std::string::npos);
}

}  // namespace
}  // namespace keystore::admin
