#include "limits/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <string>
#include <thread>
#include <vector>

#include "limits/utc_calendar.h"

// Structs are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::limits {
namespace {

// 2026-05-01T10:00:00Z.
constexpr int64_t kMorning = 1'777'629'600'000;
constexpr int64_t kNextMidnight = 1'777'680'000'000;  // 2026-05-02T00:00:00Z

TEST(RateLimiterTest, RpmAdmitsUpToLimitThenRejects) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 5};
  for (int i = 0; i < 5; ++i) {
    RateDecision decision = limiter.admit("a1", "openai", limits, kMorning + i);
    ASSERT_TRUE(decision.allowed) << "request " << i;
    EXPECT_EQ(decision.limit_type, LimitType::kRpm);
    EXPECT_EQ(decision.limit, 5);
    EXPECT_EQ(decision.remaining, 4 - i);
    EXPECT_EQ(decision.reset_at_ms, kMorning + 60'000);
  }

  RateDecision rejected = limiter.admit("a1", "openai", limits, kMorning + 10);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.limit_type, LimitType::kRpm);
  EXPECT_EQ(limitTypeName(rejected.limit_type), "rpm");
  EXPECT_EQ(rejected.limit, 5);
  EXPECT_EQ(rejected.remaining, 0);
  EXPECT_EQ(rejected.reset_at_ms, kMorning + 60'000);
  EXPECT_EQ(rejected.retryAfterSeconds(kMorning + 10), 60);
}

TEST(RateLimiterTest, RpmWindowSlidesExactly) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 3};
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 10'000).allowed);
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 20'000).allowed);

  RateDecision full = limiter.admit("a1", "openai", limits, kMorning + 59'999);
  EXPECT_FALSE(full.allowed);
  EXPECT_EQ(full.reset_at_ms, kMorning + 60'000);

  // The admission at kMorning counts until kMorning + 60 s, not a millisecond longer.
  RateDecision freed = limiter.admit("a1", "openai", limits, kMorning + 60'000);
  EXPECT_TRUE(freed.allowed);
  EXPECT_EQ(freed.remaining, 0);
  EXPECT_EQ(freed.reset_at_ms, kMorning + 70'000);

  RateDecision again = limiter.admit("a1", "openai", limits, kMorning + 60'001);
  EXPECT_FALSE(again.allowed);
  EXPECT_EQ(again.reset_at_ms, kMorning + 70'000);
}

TEST(RateLimiterTest, RpmRejectedRequestsNotCounted) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 2};
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 30'000).allowed);
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(limiter.admit("a1", "openai", limits, kMorning + 30'001 + i).allowed);
  }
  // Only the first admission has left the window, so exactly one more fits.
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 60'000).allowed);
  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kMorning + 60'001).allowed);
}

TEST(RateLimiterTest, RpmLargeLimitCountsEveryRequest) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 100'000};
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning + i / 2).allowed) << i;
  }
  RateDecision rejected = limiter.admit("a1", "openai", limits, kMorning + 50'000);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.reset_at_ms, kMorning + 60'000);
  // The first two admissions (both at kMorning) leave together.
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 60'000).allowed);
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 60'000).allowed);
  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kMorning + 60'000).allowed);
}

TEST(RateLimiterTest, RpdResetsAtUtcMidnight) {
  RateLimiter limiter;
  const RateLimits limits{.rpd = 2};
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  RateDecision second = limiter.admit("a1", "openai", limits, kMorning + 3'600'000);
  ASSERT_TRUE(second.allowed);
  EXPECT_EQ(second.limit_type, LimitType::kRpd);
  EXPECT_EQ(second.remaining, 0);
  EXPECT_EQ(second.reset_at_ms, kNextMidnight);

  RateDecision rejected = limiter.admit("a1", "openai", limits, kNextMidnight - 1);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.limit_type, LimitType::kRpd);
  EXPECT_EQ(rejected.limit, 2);
  EXPECT_EQ(rejected.reset_at_ms, kNextMidnight);
  EXPECT_EQ(rejected.retryAfterSeconds(kNextMidnight - 1), 1);

  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kNextMidnight).allowed);
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kNextMidnight + 1).allowed);
  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kNextMidnight + 2).allowed);
}

TEST(RateLimiterTest, TpmRejectsOnceWindowTokensReachLimit) {
  RateLimiter limiter;
  const RateLimits limits{.tpm = 1000};
  RateDecision first = limiter.admit("a1", "openai", limits, kMorning);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.limit_type, LimitType::kTpm);
  EXPECT_EQ(first.remaining, 1000);

  limiter.recordTokens("a1", "openai", 600, kMorning + 1000);
  RateDecision second = limiter.admit("a1", "openai", limits, kMorning + 1500);
  ASSERT_TRUE(second.allowed);
  EXPECT_EQ(second.remaining, 400);
  limiter.recordTokens("a1", "openai", 500, kMorning + 2000);

  RateDecision rejected = limiter.admit("a1", "openai", limits, kMorning + 2500);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.limit_type, LimitType::kTpm);
  EXPECT_EQ(limitTypeName(rejected.limit_type), "tpm");
  EXPECT_EQ(rejected.limit, 1000);
  EXPECT_EQ(rejected.remaining, 0);
  // Once the 600 tokens leave the window, 500 remain, below the limit.
  EXPECT_EQ(rejected.reset_at_ms, kMorning + 61'000);

  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kMorning + 60'999).allowed);
  RateDecision freed = limiter.admit("a1", "openai", limits, kMorning + 61'000);
  EXPECT_TRUE(freed.allowed);
  EXPECT_EQ(freed.remaining, 500);
}

TEST(RateLimiterTest, TpmIgnoresNonPositiveTokens) {
  RateLimiter limiter;
  const RateLimits limits{.tpm = 1};
  limiter.recordTokens("a1", "openai", 0, kMorning);
  limiter.recordTokens("a1", "openai", -5, kMorning);
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  limiter.recordTokens("a1", "openai", 1, kMorning);
  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kMorning).allowed);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 1};
  EXPECT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  EXPECT_FALSE(limiter.admit("a1", "openai", limits, kMorning).allowed);
  EXPECT_TRUE(limiter.admit("a1", "anthropic", limits, kMorning).allowed);
  EXPECT_TRUE(limiter.admit("a2", "openai", limits, kMorning).allowed);
  // The key is the pair, so ("a", "bopenai") and ("ab", "openai") do not collide.
  EXPECT_TRUE(limiter.admit("a", "bopenai", limits, kMorning).allowed);
  EXPECT_TRUE(limiter.admit("ab", "openai", limits, kMorning).allowed);
  EXPECT_EQ(limiter.keyCount(), 5u);
}

TEST(RateLimiterTest, RejectionReportsLimitThatResetsLast) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 1, .rpd = 1};
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning).allowed);

  RateDecision rejected = limiter.admit("a1", "openai", limits, kMorning + 1);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.limit_type, LimitType::kRpd);
  EXPECT_EQ(rejected.reset_at_ms, kNextMidnight);
}

TEST(RateLimiterTest, AllowedReportsFewestRemaining) {
  RateLimiter limiter;
  RateDecision day_tighter = limiter.admit("a1", "openai", {.rpm = 10, .rpd = 3}, kMorning);
  ASSERT_TRUE(day_tighter.allowed);
  EXPECT_EQ(day_tighter.limit_type, LimitType::kRpd);
  EXPECT_EQ(day_tighter.remaining, 2);

  RateDecision minute_tighter = limiter.admit("a2", "openai", {.rpm = 2, .rpd = 100}, kMorning);
  ASSERT_TRUE(minute_tighter.allowed);
  EXPECT_EQ(minute_tighter.limit_type, LimitType::kRpm);
  EXPECT_EQ(minute_tighter.remaining, 1);

  RateDecision unlimited = limiter.admit("a3", "openai", {}, kMorning);
  EXPECT_TRUE(unlimited.allowed);
  EXPECT_EQ(unlimited.limit_type, LimitType::kNone);
  EXPECT_EQ(limitTypeName(unlimited.limit_type), "");
}

TEST(RateLimiterTest, ZeroLimitRejectsEveryRequest) {
  RateLimiter limiter;
  RateDecision rpm = limiter.admit("a1", "openai", {.rpm = 0}, kMorning);
  EXPECT_FALSE(rpm.allowed);
  EXPECT_EQ(rpm.limit_type, LimitType::kRpm);
  EXPECT_EQ(rpm.limit, 0);
  EXPECT_FALSE(limiter.admit("a1", "openai", {.rpd = 0}, kMorning).allowed);
  EXPECT_FALSE(limiter.admit("a1", "openai", {.tpm = 0}, kMorning).allowed);
}

TEST(RateLimiterTest, EarlierClockCountsAsLatestTime) {
  RateLimiter limiter;
  const RateLimits limits{.rpm = 1};
  ASSERT_TRUE(limiter.admit("a1", "openai", limits, kMorning + 5000).allowed);
  // A racing thread's older clock reading does not open the window early.
  RateDecision rejected = limiter.admit("a1", "openai", limits, kMorning);
  EXPECT_FALSE(rejected.allowed);
  EXPECT_EQ(rejected.reset_at_ms, kMorning + 65'000);
}

TEST(RateLimiterTest, PruneDropsOnlyIdleKeys) {
  RateLimiter limiter;
  ASSERT_TRUE(limiter.admit("minute", "openai", {.rpm = 5}, kMorning).allowed);
  limiter.recordTokens("tokens", "openai", 10, kMorning);
  ASSERT_FALSE(limiter.admit("rejected", "openai", {.rpm = 0}, kMorning).allowed);
  EXPECT_EQ(limiter.keyCount(), 3u);

  // The key with a request today stays until midnight; the other two are idle a minute later.
  EXPECT_EQ(limiter.prune(kMorning + 60'000), 2u);
  EXPECT_EQ(limiter.keyCount(), 1u);
  EXPECT_EQ(limiter.prune(kNextMidnight), 1u);
  EXPECT_EQ(limiter.keyCount(), 0u);
}

TEST(RateLimiterTest, RetryAfterRoundsUpToWholeSeconds) {
  RateDecision decision{.reset_at_ms = 10'001};
  EXPECT_EQ(decision.retryAfterSeconds(0), 11);
  EXPECT_EQ(decision.retryAfterSeconds(9'001), 1);
  EXPECT_EQ(decision.retryAfterSeconds(10'001), 1);
  EXPECT_EQ(decision.retryAfterSeconds(20'000), 1);
}

// Runs `attempt` once on each of `threads` threads released together, and returns how many
// attempts returned true.
template <typename Attempt>
int runTogether(int threads, Attempt attempt) {
  std::barrier start(threads);
  std::atomic<int> admitted{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      if (attempt(t)) {
        admitted.fetch_add(1);
      }
    });
  }
  for (std::thread& worker : workers) {
    worker.join();
  }
  return admitted.load();
}

TEST(RateLimiterTest, ConcurrentCallersAdmittedExactlyToLimit) {
  RateLimiter limiter;
  for (int round = 0; round < 50; ++round) {
    std::string agent = "agent-" + std::to_string(round);
    int admitted = runTogether(
        20, [&](int) { return limiter.admit(agent, "openai", {.rpm = 5}, kMorning).allowed; });
    EXPECT_EQ(admitted, 5) << "round " << round;
  }
}

TEST(RateLimiterTest, ConcurrentDailyLimitExact) {
  RateLimiter limiter;
  std::atomic<int> total{0};
  runTogether(32, [&](int t) {
    for (int i = 0; i < 500; ++i) {
      total += limiter.admit("a1", "openai", {.rpd = 7'777}, kMorning + t * 1000 + i).allowed;
    }
    return true;
  });
  // 16,000 attempts in one day.
  EXPECT_EQ(total.load(), 7'777);
}

TEST(RateLimiterTest, ConcurrentMinuteLimitExactUnderLoad) {
  RateLimiter limiter;
  std::atomic<int> total{0};
  runTogether(32, [&](int t) {
    for (int i = 0; i < 500; ++i) {
      total += limiter.admit("a1", "openai", {.rpm = 10'000}, kMorning + (t + i) % 7).allowed;
    }
    return true;
  });
  // 16,000 attempts within 7 ms.
  EXPECT_EQ(total.load(), 10'000);
}

TEST(RateLimiterTest, ConcurrentTokensAllRecorded) {
  RateLimiter limiter;
  runTogether(16, [&](int) {
    for (int i = 0; i < 1000; ++i) {
      limiter.recordTokens("a1", "openai", 3, kMorning);
    }
    return true;
  });
  // 48,000 tokens recorded: a limit of 48,000 is used up, one of 48,001 is not.
  EXPECT_FALSE(limiter.admit("a1", "openai", {.tpm = 48'000}, kMorning).allowed);
  RateDecision below = limiter.admit("a1", "openai", {.tpm = 48'001}, kMorning);
  EXPECT_TRUE(below.allowed);
  EXPECT_EQ(below.remaining, 1);
}

}  // namespace
}  // namespace keystore::limits
