// SqliteStore's webhook endpoints and deliveries: the outbox that survives restarts and is
// claimed with a lease so that instances sharing a database never send an attempt twice.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::store {
namespace {

class WebhookStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "webhook-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    store_ = open();
    ASSERT_NE(store_, nullptr);

    ASSERT_TRUE(store_->createOrganization(Organization{.id = "org1", .name = "org"}).has_value());
    auto project = store_->createProject(
        Project{.id = "prj1", .organization_id = "org1", .name = "p"},
        DataKey{
            .project_id = "prj1", .key_id = "prj1-key", .master_key_id = "mk1", .wrapped = "w"});
    ASSERT_TRUE(project.has_value()) << project.error().message;
    auto endpoint = store_->createWebhookEndpoint(endpoint_);
    ASSERT_TRUE(endpoint.has_value()) << endpoint.error().message;
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  std::unique_ptr<Store> open() {
    auto opened = openSqliteStore((directory_ / "keystore.db").string());
    EXPECT_TRUE(opened.has_value()) << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }

  static WebhookDelivery delivery(const std::string& id, int64_t created_at,
                                  int64_t next_attempt_at) {
    return WebhookDelivery{.id = id,
                           .endpoint_id = "whk_1",
                           .project_id = "prj1",
                           .event_id = "evt_" + id,
                           .event_type = "agent.created",
                           .payload = "{}",
                           .next_attempt_at = next_attempt_at,
                           .created_at = created_at};
  }

  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
  WebhookEndpoint endpoint_{.id = "whk_1",
                            .project_id = "prj1",
                            .url = "https://hooks.example.com/in",
                            .description = "d",
                            .events = {"agent.created", "budget.exceeded"},
                            .data_key_id = "prj1-key",
                            .secret_ciphertext = std::string("\x01\x00\xff", 3),
                            .created_at = 10};
};

TEST_F(WebhookStoreTest, EndpointRoundTrip) {
  auto stored = store_->getWebhookEndpoint("whk_1");
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(stored->url, "https://hooks.example.com/in");
  EXPECT_EQ(stored->events, (std::vector<std::string>{"agent.created", "budget.exceeded"}));
  EXPECT_EQ(stored->secret_ciphertext, std::string("\x01\x00\xff", 3));
  EXPECT_EQ(stored->status, "active");
  EXPECT_EQ(stored->updated_at, 10);
}

TEST_F(WebhookStoreTest, EndpointUnknownProjectNotFound) {
  WebhookEndpoint other = endpoint_;
  other.id = "whk_2";
  other.project_id = "prj_missing";
  auto created = store_->createWebhookEndpoint(other);
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kNotFound);
}

TEST_F(WebhookStoreTest, EndpointInvalidStatusRejected) {
  WebhookEndpoint changed = endpoint_;
  changed.status = "paused";
  auto updated = store_->updateWebhookEndpoint(changed);
  ASSERT_FALSE(updated.has_value());
  EXPECT_EQ(updated.error().code, ErrorCode::kInvalidRequest);
}

TEST_F(WebhookStoreTest, ClaimLeasesAndCountsAttempt) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 100)}).has_value());

  auto first = store_->claimWebhookDelivery(200, 1000);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->id, "whd_a");
  EXPECT_EQ((*first)->attempts, 1);
  EXPECT_EQ((*first)->lease_until, 1200);

  // Leased: no second claim, from this or another connection, until the lease ends.
  auto second = store_->claimWebhookDelivery(300, 1000);
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->has_value());
  auto other_instance = open();
  ASSERT_NE(other_instance, nullptr);
  auto from_other = other_instance->claimWebhookDelivery(1199, 1000);
  ASSERT_TRUE(from_other.has_value());
  EXPECT_FALSE(from_other->has_value());

  // An expired lease (a crashed sender) lets another instance take the next attempt.
  auto after_lease = other_instance->claimWebhookDelivery(1200, 1000);
  ASSERT_TRUE(after_lease.has_value());
  ASSERT_TRUE(after_lease->has_value());
  EXPECT_EQ((*after_lease)->attempts, 2);
}

TEST_F(WebhookStoreTest, NotYetDueNotClaimed) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 5000)}).has_value());
  auto claimed = store_->claimWebhookDelivery(4999, 1000);
  ASSERT_TRUE(claimed.has_value());
  EXPECT_FALSE(claimed->has_value());
}

TEST_F(WebhookStoreTest, OldestDueClaimedFirst) {
  ASSERT_TRUE(store_
                  ->enqueueWebhookDeliveries(
                      {delivery("whd_late", 100, 300), delivery("whd_early", 100, 200)})
                  .has_value());
  auto claimed = store_->claimWebhookDelivery(400, 1000);
  ASSERT_TRUE(claimed.has_value());
  ASSERT_TRUE(claimed->has_value());
  EXPECT_EQ((*claimed)->id, "whd_early");
}

TEST_F(WebhookStoreTest, StaleFinishConflicts) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 100)}).has_value());
  ASSERT_TRUE(store_->claimWebhookDelivery(100, 10).has_value());
  auto retaken = store_->claimWebhookDelivery(200, 10);
  ASSERT_TRUE(retaken.has_value());
  ASSERT_TRUE(retaken->has_value());
  EXPECT_EQ((*retaken)->attempts, 2);

  auto stale = store_->finishWebhookAttempt(WebhookAttemptResult{.delivery_id = "whd_a",
                                                                 .attempt = 1,
                                                                 .status = "delivered",
                                                                 .status_code = 200,
                                                                 .finished_at = 250});
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);

  auto current = store_->finishWebhookAttempt(WebhookAttemptResult{.delivery_id = "whd_a",
                                                                   .attempt = 2,
                                                                   .status = "delivered",
                                                                   .status_code = 204,
                                                                   .finished_at = 260});
  ASSERT_TRUE(current.has_value()) << current.error().message;
  auto listed = store_->listWebhookDeliveries("whk_1", "", 10);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].status, "delivered");
  EXPECT_EQ((*listed)[0].last_status_code, 204);
  EXPECT_EQ((*listed)[0].delivered_at, 260);
  EXPECT_EQ((*listed)[0].lease_until, 0);
}

TEST_F(WebhookStoreTest, RetryReschedulesUntilDue) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 100)}).has_value());
  ASSERT_TRUE(store_->claimWebhookDelivery(100, 1000).has_value());
  auto finished =
      store_->finishWebhookAttempt(WebhookAttemptResult{.delivery_id = "whd_a",
                                                        .attempt = 1,
                                                        .status = "pending",
                                                        .status_code = 500,
                                                        .error = "the receiver answered HTTP 500",
                                                        .next_attempt_at = 700,
                                                        .finished_at = 150});
  ASSERT_TRUE(finished.has_value()) << finished.error().message;

  auto early = store_->claimWebhookDelivery(699, 1000);
  ASSERT_TRUE(early.has_value());
  EXPECT_FALSE(early->has_value());
  auto due = store_->claimWebhookDelivery(700, 1000);
  ASSERT_TRUE(due.has_value());
  ASSERT_TRUE(due->has_value());
  EXPECT_EQ((*due)->attempts, 2);
  EXPECT_EQ((*due)->last_status_code, 500);
  EXPECT_EQ((*due)->last_error, "the receiver answered HTTP 500");
}

TEST_F(WebhookStoreTest, PendingSurvivesReopen) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 100)}).has_value());
  ASSERT_TRUE(store_->claimWebhookDelivery(100, 500).has_value());
  store_.reset();  // the instance dies holding the lease

  auto restarted = open();
  ASSERT_NE(restarted, nullptr);
  auto claimed = restarted->claimWebhookDelivery(600, 500);
  ASSERT_TRUE(claimed.has_value()) << claimed.error().message;
  ASSERT_TRUE(claimed->has_value());
  EXPECT_EQ((*claimed)->id, "whd_a");
  EXPECT_EQ((*claimed)->attempts, 2);
}

TEST_F(WebhookStoreTest, DeliveriesNewestFirstWithCursor) {
  ASSERT_TRUE(
      store_
          ->enqueueWebhookDeliveries({delivery("whd_1", 100, 100), delivery("whd_2", 200, 200),
                                      delivery("whd_3", 300, 300)})
          .has_value());
  auto page = store_->listWebhookDeliveries("whk_1", "", 2);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].id, "whd_3");
  EXPECT_EQ((*page)[1].id, "whd_2");

  auto next = store_->listWebhookDeliveries("whk_1", "whd_2", 2);
  ASSERT_TRUE(next.has_value());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].id, "whd_1");
}

TEST_F(WebhookStoreTest, DeleteEndpointRemovesDeliveries) {
  ASSERT_TRUE(store_->enqueueWebhookDeliveries({delivery("whd_a", 100, 100)}).has_value());
  ASSERT_TRUE(store_->deleteWebhookEndpoint("whk_1").has_value());

  auto claimed = store_->claimWebhookDelivery(1000, 1000);
  ASSERT_TRUE(claimed.has_value());
  EXPECT_FALSE(claimed->has_value());
  auto missing = store_->getWebhookEndpoint("whk_1");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto again = store_->deleteWebhookEndpoint("whk_1");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace keystore::store
