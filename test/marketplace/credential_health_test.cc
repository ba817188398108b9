#include "marketplace/credential_health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace keystore::marketplace {
namespace {

constexpr int64_t kStart = 1'800'000'000'000;  // a minute boundary (divisible by 60,000)

class CredentialHealthTest : public ::testing::Test {
 protected:
  CredentialHealthTest() : registry_(CircuitPolicy{.failure_threshold = 3, .cooldown_ms = 1000}) {
    registry_.setListener([this](const std::string& id, CircuitState state) {
      events_.push_back(id + ":" + std::string(circuitStateName(state)));
    });
  }

  // One request on the credential at `now` with `verdict`; false if it was refused.
  bool use(CredentialHealth& health, int64_t now, Verdict verdict) {
    if (!health.tryAcquire(now, 0)) {
      return false;
    }
    health.report(verdict, now);
    return true;
  }

  HealthRegistry registry_;
  std::vector<std::string> events_;
};

TEST_F(CredentialHealthTest, OpensAfterConsecutiveFailures) {
  auto health = registry_.get("c1");
  EXPECT_TRUE(use(*health, kStart, Verdict::kFailure));
  EXPECT_TRUE(use(*health, kStart + 1, Verdict::kFailure));
  EXPECT_EQ(health->view(kStart + 1).state, CircuitState::kClosed);
  EXPECT_TRUE(use(*health, kStart + 2, Verdict::kFailure));
  EXPECT_EQ(health->view(kStart + 2).state, CircuitState::kOpen);
  EXPECT_EQ(health->view(kStart + 2).consecutive_failures, 3);
  EXPECT_FALSE(health->tryAcquire(kStart + 500, 0));
  EXPECT_EQ(events_, (std::vector<std::string>{"c1:open"}));
}

TEST_F(CredentialHealthTest, SuccessResetsFailureCount) {
  auto health = registry_.get("c1");
  EXPECT_TRUE(use(*health, kStart, Verdict::kFailure));
  EXPECT_TRUE(use(*health, kStart, Verdict::kFailure));
  EXPECT_TRUE(use(*health, kStart, Verdict::kSuccess));
  EXPECT_TRUE(use(*health, kStart, Verdict::kFailure));
  EXPECT_TRUE(use(*health, kStart, Verdict::kFailure));
  EXPECT_EQ(health->view(kStart).state, CircuitState::kClosed);
  EXPECT_TRUE(events_.empty());
}

TEST_F(CredentialHealthTest, HalfOpenAdmitsOneProbeThenCloses) {
  auto health = registry_.get("c1");
  for (int i = 0; i < 3; ++i) {
    use(*health, kStart, Verdict::kFailure);
  }
  int64_t later = kStart + 1000;
  EXPECT_EQ(health->view(later).state, CircuitState::kHalfOpen);
  ASSERT_TRUE(health->tryAcquire(later, 0));
  EXPECT_FALSE(health->tryAcquire(later + 1, 0)) << "a second probe while one is in flight";
  health->report(Verdict::kSuccess, later + 2);
  EXPECT_EQ(health->view(later + 2).state, CircuitState::kClosed);
  EXPECT_TRUE(health->tryAcquire(later + 3, 0));
  EXPECT_EQ(events_, (std::vector<std::string>{"c1:open", "c1:half_open", "c1:closed"}));
}

TEST_F(CredentialHealthTest, FailedProbeReopensForAnotherCooldown) {
  auto health = registry_.get("c1");
  for (int i = 0; i < 3; ++i) {
    use(*health, kStart, Verdict::kFailure);
  }
  ASSERT_TRUE(health->tryAcquire(kStart + 1000, 0));
  health->report(Verdict::kFailure, kStart + 1100);
  EXPECT_FALSE(health->tryAcquire(kStart + 2000, 0)) << "cool-down counts from the probe";
  EXPECT_TRUE(health->tryAcquire(kStart + 2100, 0));
  EXPECT_EQ(events_,
            (std::vector<std::string>{"c1:open", "c1:half_open", "c1:open", "c1:half_open"}));
}

TEST_F(CredentialHealthTest, NeutralProbeLetsNextRequestProbe) {
  auto health = registry_.get("c1");
  for (int i = 0; i < 3; ++i) {
    use(*health, kStart, Verdict::kFailure);
  }
  ASSERT_TRUE(health->tryAcquire(kStart + 1000, 0));
  health->report(Verdict::kNeutral, kStart + 1001);
  EXPECT_TRUE(health->tryAcquire(kStart + 1002, 0));
}

TEST_F(CredentialHealthTest, HungProbeLetsAnotherProbeAfterLease) {
  auto health = registry_.get("c1");
  for (int i = 0; i < 3; ++i) {
    use(*health, kStart, Verdict::kFailure);
  }
  int64_t probe = kStart + 1000;
  ASSERT_TRUE(health->tryAcquire(probe, 0));  // never reports: its upstream hangs
  EXPECT_FALSE(health->tryAcquire(probe + CredentialHealth::kMinProbeLeaseMs - 1, 0));
  ASSERT_TRUE(health->tryAcquire(probe + CredentialHealth::kMinProbeLeaseMs, 0));
  health->report(Verdict::kSuccess, probe + CredentialHealth::kMinProbeLeaseMs + 5);
  EXPECT_EQ(health->view(probe + CredentialHealth::kMinProbeLeaseMs + 5).state,
            CircuitState::kClosed);
}

TEST_F(CredentialHealthTest, RateLimitSlidesAcrossMinutes) {
  auto health = registry_.get("c1");
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(health->tryAcquire(kStart + 50'000 + i, 10)) << i;
  }
  EXPECT_FALSE(health->tryAcquire(kStart + 50'100, 10));
  // 15 s into the next minute the window still covers 3/4 of the previous one: 7 of 10.
  int64_t next = kStart + 75'000;
  EXPECT_EQ(health->view(next).requests_last_minute, 7);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(health->tryAcquire(next + i, 10)) << i;
  }
  EXPECT_FALSE(health->tryAcquire(next + 5, 10));
  // Two minutes later the window is empty.
  EXPECT_TRUE(health->tryAcquire(kStart + 190'000, 10));
  EXPECT_EQ(health->view(kStart + 190'000).requests_last_minute, 1);
}

TEST_F(CredentialHealthTest, RateLimitHoldsUnderConcurrency) {
  auto health = registry_.get("c1");
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (health->tryAcquire(kStart + 10, 25)) {
          admitted.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(admitted.load(), 25);
}

TEST_F(CredentialHealthTest, RegistryKeepsStatePerId) {
  auto first = registry_.get("c1");
  EXPECT_EQ(registry_.get("c1"), first);
  EXPECT_NE(registry_.get("c2"), first);
  EXPECT_EQ(registry_.find("c3"), nullptr);
  EXPECT_TRUE(first->tryAcquire(kStart + 7, 0));
  EXPECT_EQ(registry_.find("c1")->lastAcquiredMs(), kStart + 7);
}

}  // namespace
}  // namespace keystore::marketplace
