#include "limits/budget_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "limits/utc_calendar.h"

// Structs are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::limits {
namespace {

// 2026-05-10T12:00:00Z, 2026-06-01T00:00:00Z and 2026-07-01T00:00:00Z.
constexpr int64_t kMay10 = 1'778'414'400'000;
constexpr int64_t kJune1 = 1'780'272'000'000;
constexpr int64_t kJuly1 = 1'782'864'000'000;

// $1.00 for the project, no agent cap.
const BudgetCaps kProjectDollar{.agent = {}, .project = {.cents = 100}};

TEST(BudgetTrackerTest, CentsConvertToMicros) {
  EXPECT_EQ(centsToMicros(100), 1'000'000);
  EXPECT_EQ(centsToMicros(0), 0);
  EXPECT_EQ(centsToMicros(-3), 0);
  EXPECT_EQ(centsToMicros(std::numeric_limits<int64_t>::max()),
            std::numeric_limits<int64_t>::max());
}

TEST(BudgetTrackerTest, ReserveAdmitsUntilWorstCaseWouldPassCap) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {}, {{"p1", 950'000}});

  auto first = tracker.reserve("a1", "p1", 40'000, kProjectDollar, kMay10);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->micros, 40'000);
  // The tracker finds the accounts through the reservation id, so the ids are not copied.
  EXPECT_TRUE(first->agent_id.empty());
  EXPECT_TRUE(first->project_id.empty());

  auto second = tracker.reserve("a2", "p1", 40'000, kProjectDollar, kMay10);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().scope, BudgetScope::kProject);
  EXPECT_EQ(second.error().cap_micros, 1'000'000);
  EXPECT_EQ(second.error().spent_micros, 950'000);
  EXPECT_EQ(second.error().reserved_micros, 40'000);
  EXPECT_EQ(second.error().requested_micros, 40'000);
  EXPECT_EQ(second.error().resets_at_ms, kJune1);

  // Exactly the remaining 10,000 still fits.
  EXPECT_TRUE(tracker.reserve("a2", "p1", 10'000, kProjectDollar, kMay10).has_value());
  EXPECT_FALSE(tracker.reserve("a2", "p1", 1, kProjectDollar, kMay10).has_value());
}

TEST(BudgetTrackerTest, RefusalBecomesBudgetExceededError) {
  BudgetRefusal refusal{.scope = BudgetScope::kAgent,
                        .cap_micros = 1'000'000,
                        .spent_micros = 950'000,
                        .reserved_micros = 40'000,
                        .requested_micros = 40'000};
  Error error = refusal.toError();
  EXPECT_EQ(error.code, ErrorCode::kBudgetExceeded);
  EXPECT_EQ(error.message,
            "The agent's monthly budget of $1.000000 cannot cover this request, which may cost up "
            "to $0.040000: $0.950000 is spent and $0.040000 is reserved by requests in flight. "
            "The budget resets at 00:00 UTC on the first day of next month.");
}

TEST(BudgetTrackerTest, AgentAndProjectCapsBothApply) {
  BudgetTracker tracker;
  const BudgetCaps caps{.agent = {.cents = 10}, .project = {.cents = 15}};

  auto agent_full = tracker.reserve("a1", "p1", 100'000, caps, kMay10);
  ASSERT_TRUE(agent_full.has_value());
  auto over_agent = tracker.reserve("a1", "p1", 1, caps, kMay10);
  ASSERT_FALSE(over_agent.has_value());
  EXPECT_EQ(over_agent.error().scope, BudgetScope::kAgent);

  // Another agent of the project has 50,000 of the project's 150,000 left.
  auto over_project = tracker.reserve("a2", "p1", 50'001, caps, kMay10);
  ASSERT_FALSE(over_project.has_value());
  EXPECT_EQ(over_project.error().scope, BudgetScope::kProject);
  EXPECT_TRUE(tracker.reserve("a2", "p1", 50'000, caps, kMay10).has_value());
}

TEST(BudgetTrackerTest, NoCapIsUnlimitedButCounted) {
  BudgetTracker tracker;
  auto reserved = tracker.reserve("a1", "p1", 5'000'000'000'000, BudgetCaps{}, kMay10);
  ASSERT_TRUE(reserved.has_value());
  ASSERT_TRUE(tracker.settle(*reserved, 123, BudgetCaps{}, kMay10));

  EXPECT_EQ(tracker.agentUsage("a1", kMay10).spent_micros, 123);
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).spent_micros, 123);
  // A cap set later in the month counts what was spent before it.
  EXPECT_FALSE(
      tracker.reserve("a1", "p1", 1, BudgetCaps{.agent = {.cents = 0}, .project = {}}, kMay10)
          .has_value());
}

TEST(BudgetTrackerTest, SettleReplacesReservationByActual) {
  BudgetTracker tracker;
  auto reserved = tracker.reserve("a1", "p1", 40'000, kProjectDollar, kMay10);
  ASSERT_TRUE(reserved.has_value());
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).reserved_micros, 40'000);
  EXPECT_EQ(tracker.outstandingReservations(), 1u);

  auto settled = tracker.settle(*reserved, 12'345, kProjectDollar, kMay10);
  ASSERT_TRUE(settled.has_value()) << settled.error().message;
  EXPECT_EQ(*settled, BudgetEvents{});

  BudgetUsage project = tracker.projectUsage("p1", kMay10);
  EXPECT_EQ(project.spent_micros, 12'345);
  EXPECT_EQ(project.reserved_micros, 0);
  EXPECT_EQ(project.month_index, utcMonthIndex(kMay10));
  EXPECT_EQ(tracker.agentUsage("a1", kMay10).spent_micros, 12'345);
  EXPECT_EQ(tracker.outstandingReservations(), 0u);
}

TEST(BudgetTrackerTest, ReleaseDropsReservation) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {}, {{"p1", 950'000}});
  auto reserved = tracker.reserve("a1", "p1", 50'000, kProjectDollar, kMay10);
  ASSERT_TRUE(reserved.has_value());
  ASSERT_FALSE(tracker.reserve("a1", "p1", 50'000, kProjectDollar, kMay10).has_value());

  ASSERT_TRUE(tracker.release(*reserved));
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).reserved_micros, 0);
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).spent_micros, 950'000);
  EXPECT_TRUE(tracker.reserve("a1", "p1", 50'000, kProjectDollar, kMay10).has_value());
}

TEST(BudgetTrackerTest, SecondSettleOrReleaseNotFound) {
  BudgetTracker tracker;
  auto reserved = tracker.reserve("a1", "p1", 100, kProjectDollar, kMay10);
  ASSERT_TRUE(reserved.has_value());
  ASSERT_TRUE(tracker.settle(*reserved, 100, kProjectDollar, kMay10));

  auto again = tracker.settle(*reserved, 100, kProjectDollar, kMay10);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  auto released = tracker.release(*reserved);
  ASSERT_FALSE(released.has_value());
  EXPECT_EQ(released.error().code, ErrorCode::kNotFound);
  auto unknown = tracker.release(Reservation{.id = 999});
  ASSERT_FALSE(unknown.has_value());

  EXPECT_EQ(tracker.projectUsage("p1", kMay10).spent_micros, 100);
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).reserved_micros, 0);
}

TEST(BudgetTrackerTest, ZeroWorstCaseAdmittedAtCap) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {}, {{"p1", 1'000'000}});
  EXPECT_TRUE(tracker.reserve("a1", "p1", 0, kProjectDollar, kMay10).has_value());
  EXPECT_TRUE(tracker.reserve("a1", "p1", -5, kProjectDollar, kMay10).has_value());
  EXPECT_FALSE(tracker.reserve("a1", "p1", 1, kProjectDollar, kMay10).has_value());
}

TEST(BudgetTrackerTest, WarningAndExceededReportedOncePerMonth) {
  BudgetTracker tracker;
  const BudgetCaps caps{.agent = {.cents = 100, .warn_percent = 80},
                        .project = {.cents = 1000, .warn_percent = 50}};
  auto settleOne = [&](int64_t actual, int64_t now) {
    auto reserved = tracker.reserve("a1", "p1", 0, caps, now);
    EXPECT_TRUE(reserved.has_value());
    auto events = tracker.settle(*reserved, actual, caps, now);
    EXPECT_TRUE(events.has_value());
    return events.value_or(BudgetEvents{});
  };

  EXPECT_EQ(settleOne(799'999, kMay10), BudgetEvents{});
  EXPECT_EQ(settleOne(1, kMay10), (BudgetEvents{.agent_warning = true}));
  EXPECT_EQ(settleOne(100'000, kMay10), BudgetEvents{});
  EXPECT_EQ(settleOne(100'000, kMay10), (BudgetEvents{.agent_exceeded = true}));
  EXPECT_EQ(settleOne(4'000'000, kMay10), (BudgetEvents{.project_warning = true}));
  EXPECT_EQ(settleOne(5'000'000, kMay10), (BudgetEvents{.project_exceeded = true}));
  EXPECT_EQ(settleOne(1, kMay10), BudgetEvents{});

  // A new month starts from zero and reports again.
  EXPECT_EQ(settleOne(1'000'000, kJune1),
            (BudgetEvents{.agent_warning = true, .agent_exceeded = true}));
}

TEST(BudgetTrackerTest, MonthRolloverResetsSpend) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {{"a1", 2'000'000}}, {{"p1", 2'000'000}});
  ASSERT_FALSE(tracker.reserve("a1", "p1", 1, kProjectDollar, kJune1 - 1).has_value());

  auto june = tracker.reserve("a1", "p1", 1'000'000, kProjectDollar, kJune1);
  ASSERT_TRUE(june.has_value());
  EXPECT_EQ(tracker.projectUsage("p1", kJune1).spent_micros, 0);
  EXPECT_EQ(tracker.projectUsage("p1", kJune1).month_index, utcMonthIndex(kJune1));
  // Reading a later month shows zero spend without changing the state.
  EXPECT_EQ(tracker.agentUsage("a1", kJuly1).spent_micros, 0);
}

TEST(BudgetTrackerTest, ReservationSpanningMonthsSettlesInNewMonth) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {}, {{"p1", 900'000}});
  auto may = tracker.reserve("a1", "p1", 100'000, kProjectDollar, kJune1 - 1);
  ASSERT_TRUE(may.has_value());

  // The request is still in flight at midnight, so its reservation stays reserved in June.
  ASSERT_FALSE(tracker.reserve("a1", "p1", 900'001, kProjectDollar, kJune1).has_value());
  ASSERT_TRUE(tracker.settle(*may, 70'000, kProjectDollar, kJune1 + 5));
  EXPECT_EQ(tracker.projectUsage("p1", kJune1 + 5).spent_micros, 70'000);
  EXPECT_EQ(tracker.projectUsage("p1", kJune1 + 5).reserved_micros, 0);
}

TEST(BudgetTrackerTest, SettleFromEndedMonthOnlyReleases) {
  BudgetTracker tracker;
  auto may = tracker.reserve("a1", "p1", 100'000, kProjectDollar, kJune1 - 10);
  ASSERT_TRUE(may.has_value());
  auto june = tracker.reserve("a1", "p1", 100'000, kProjectDollar, kJune1);
  ASSERT_TRUE(june.has_value());

  // The May request's ledger row is dated May, so June's spend does not include it.
  ASSERT_TRUE(tracker.settle(*may, 100'000, kProjectDollar, kJune1 - 5));
  EXPECT_EQ(tracker.projectUsage("p1", kJune1).spent_micros, 0);
  EXPECT_EQ(tracker.projectUsage("p1", kJune1).reserved_micros, 100'000);
}

TEST(BudgetTrackerTest, SeedNeverLowersSpend) {
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {{"a1", 500}}, {{"p1", 500}});
  auto reserved = tracker.reserve("a1", "p1", 1000, kProjectDollar, kMay10);
  ASSERT_TRUE(reserved.has_value());
  ASSERT_TRUE(tracker.settle(*reserved, 1000, kProjectDollar, kMay10));

  tracker.seedSpend(kMay10, {{"a1", 700}}, {{"p1", 2000}});
  EXPECT_EQ(tracker.agentUsage("a1", kMay10).spent_micros, 1500);
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).spent_micros, 2000);

  // A seed for an earlier month than the counter's is ignored.
  tracker.seedSpend(kJune1, {}, {{"p1", 7}});
  tracker.seedSpend(kMay10, {}, {{"p1", 999'999}});
  EXPECT_EQ(tracker.projectUsage("p1", kJune1).spent_micros, 7);
}

// Runs `attempt(t)` on `threads` threads released together; returns how many returned true.
template <typename Attempt>
int runTogether(int threads, Attempt attempt) {
  std::barrier start(threads);
  std::atomic<int> succeeded{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      if (attempt(t)) {
        succeeded.fetch_add(1);
      }
    });
  }
  for (std::thread& worker : workers) {
    worker.join();
  }
  return succeeded.load();
}

TEST(BudgetTrackerTest, ConcurrentReservationsAdmitOnlyWhatFits) {
  // $1.00 budget with $0.95 spent, worst case $0.04 per request: room for exactly one.
  for (int round = 0; round < 20; ++round) {
    BudgetTracker tracker;
    tracker.seedSpend(kMay10, {}, {{"p1", 950'000}});
    int admitted = runTogether(50, [&](int) {
      return tracker.reserve("a1", "p1", 40'000, kProjectDollar, kMay10).has_value();
    });
    EXPECT_EQ(admitted, 1) << "round " << round;
    EXPECT_EQ(tracker.projectUsage("p1", kMay10).reserved_micros, 40'000);
  }
}

TEST(BudgetTrackerTest, ConcurrentSettledSpendNeverPassesCap) {
  // Every request costs exactly its estimate, so spend stays within the cap.
  BudgetTracker tracker;
  std::atomic<int> admitted{0};
  runTogether(50, [&](int) {
    for (;;) {
      auto reserved = tracker.reserve("a1", "p1", 40'000, kProjectDollar, kMay10);
      if (!reserved) {
        return true;
      }
      admitted += 1;
      EXPECT_TRUE(tracker.settle(*reserved, 40'000, kProjectDollar, kMay10));
    }
  });
  EXPECT_EQ(admitted.load(), 25);
  EXPECT_EQ(tracker.projectUsage("p1", kMay10).spent_micros, 1'000'000);
  EXPECT_EQ(tracker.outstandingReservations(), 0u);
}

TEST(BudgetTrackerTest, ConcurrentOvershootWithinExcessOfRequestsInFlight) {
  // Each request costs 7,000 more than its 40,000 estimate. With 50 threads at most 50
  // requests are in flight, so spend ends within cap + 50 * 7,000, and a thread stops only
  // when the budget has no room for another estimate.
  constexpr int kThreads = 50;
  constexpr int64_t kEstimate = 40'000;
  constexpr int64_t kExcess = 7'000;
  constexpr int64_t kCap = 1'000'000;
  for (int round = 0; round < 10; ++round) {
    BudgetTracker tracker;
    tracker.seedSpend(kMay10, {}, {{"p1", 200'000}});
    std::atomic<int> admitted{0};
    runTogether(kThreads, [&](int) {
      for (;;) {
        auto reserved = tracker.reserve("a1", "p1", kEstimate, kProjectDollar, kMay10);
        if (!reserved) {
          return true;
        }
        admitted += 1;
        EXPECT_TRUE(tracker.settle(*reserved, kEstimate + kExcess, kProjectDollar, kMay10));
      }
    });

    const int64_t spent = tracker.projectUsage("p1", kMay10).spent_micros;
    EXPECT_EQ(spent, 200'000 + admitted.load() * (kEstimate + kExcess)) << "round " << round;
    EXPECT_LE(spent, kCap + kThreads * kExcess) << "round " << round;
    EXPECT_GT(spent, kCap - kEstimate) << "round " << round;
    // The estimates alone never passed the cap.
    EXPECT_LE(200'000 + admitted.load() * kEstimate, kCap) << "round " << round;
  }
}

TEST(BudgetTrackerTest, ConcurrentAgentsShareProjectCap) {
  // 50 agents of one project, $0.50 left, each reserving $0.01: exactly 50 admissions in all.
  BudgetTracker tracker;
  tracker.seedSpend(kMay10, {}, {{"p1", 500'000}});
  std::atomic<int> admitted{0};
  runTogether(50, [&](int t) {
    std::string agent = "agent-" + std::to_string(t);
    for (int i = 0; i < 5; ++i) {
      admitted += tracker.reserve(agent, "p1", 10'000, kProjectDollar, kMay10).has_value();
    }
    return true;
  });
  EXPECT_EQ(admitted.load(), 50);
  EXPECT_EQ(tracker.outstandingReservations(), 50u);
}

}  // namespace
}  // namespace keystore::limits
