// RedisLimits against a real redis-server started for each test, with two RedisLimits on two
// io_contexts standing for two Keystore instances.
#include "redis/redis_limits.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "limits/utc_calendar.h"

namespace keystore::redis {
namespace {

namespace asio = boost::asio;

uint16_t freePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

bool portOpen(uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  boost::system::error_code error;
  socket.connect({asio::ip::make_address("127.0.0.1"), port}, error);
  return !error;
}

// Starts redis-server on a free loopback port without persistence; stops it in the destructor.
class RedisServer {
 public:
  RedisServer() : port_(freePort()) {
    pid_ = fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning", "--logfile", "/dev/null",
             nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !portOpen(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~RedisServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

RedisEndpoint endpointAt(uint16_t port) {
  RedisEndpoint endpoint;
  endpoint.port = port;
  return endpoint;
}

// Runs `io` until `done` holds. A connected RedisConnection always has a read pending, so
// io_context::run() would never return.
void driveUntil(asio::io_context& io, const std::function<bool()>& done) {
  io.restart();
  while (!done()) {
    io.run_one_for(std::chrono::milliseconds(50));
  }
}

// Runs `body` as a coroutine on `io` to completion.
template <typename T>
T runOn(asio::io_context& io, asio::awaitable<T> body) {
  std::optional<T> result;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr error, T value) {
    if (error) {
      std::rethrow_exception(error);
    }
    result = std::move(value);
  });
  driveUntil(io, [&] { return result.has_value(); });
  return std::move(*result);
}

// One hour into the current UTC day: the day counter expires at the real end of the day, so the
// test's clock must not lie in the past.
const int64_t kNow = limits::utcDayStart(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count()) +
                     3'600'000;

class RedisLimitsTest : public ::testing::Test {
 protected:
  RedisServer server_;
  asio::io_context first_io_;
  asio::io_context second_io_;
  RedisLimits first_{first_io_, endpointAt(server_.port())};
  RedisLimits second_{second_io_, endpointAt(server_.port())};

  // Admits `count` requests concurrently on each instance and returns how many were allowed.
  int admitConcurrently(int count, const limits::RateLimits& rate_limits,
                        std::vector<limits::RateDecision>* decisions = nullptr) {
    int allowed = 0;
    std::vector<limits::RateDecision> seen;
    std::mutex mutex;  // the two instances run on two threads
    for (auto* pair : {&first_io_, &second_io_}) {
      RedisLimits& limits = pair == &first_io_ ? first_ : second_;
      for (int i = 0; i < count; ++i) {
        asio::co_spawn(
            *pair,
            [&limits, &allowed, &seen, &mutex, rate_limits]() -> asio::awaitable<void> {
              auto decision = co_await limits.admit("agt_1", "openai", rate_limits, kNow);
              std::lock_guard lock(mutex);
              EXPECT_TRUE(decision.has_value());
              if (decision) {
                allowed += decision->allowed ? 1 : 0;
                seen.push_back(*decision);
              }
            },
            asio::detached);
      }
    }
    // Both instances' requests are in flight at once before either runs to completion.
    auto all_seen = [&] {
      std::lock_guard lock(mutex);
      return seen.size() == static_cast<size_t>(2 * count);
    };
    std::thread other([&] { driveUntil(second_io_, all_seen); });
    driveUntil(first_io_, all_seen);
    other.join();
    if (decisions != nullptr) {
      *decisions = seen;
    }
    return allowed;
  }
};

TEST_F(RedisLimitsTest, RpmAdmitsExactlyTheLimitAcrossTwoInstances) {
  std::vector<limits::RateDecision> decisions;
  int allowed =
      admitConcurrently(10, limits::RateLimits{5, std::nullopt, std::nullopt}, &decisions);
  EXPECT_EQ(allowed, 5);
  ASSERT_EQ(decisions.size(), 20u);
  for (const auto& decision : decisions) {
    EXPECT_EQ(decision.limit_type, limits::LimitType::kRpm);
    EXPECT_EQ(decision.limit, 5);
    if (!decision.allowed) {
      EXPECT_EQ(decision.remaining, 0);
      EXPECT_EQ(decision.reset_at_ms, kNow + 60'000);
    }
  }
}

TEST_F(RedisLimitsTest, RpmWindowSlides) {
  limits::RateLimits rpm{2, std::nullopt, std::nullopt};
  for (int64_t offset : {0, 1'000}) {
    auto decision = runOn(first_io_, first_.admit("agt_1", "openai", rpm, kNow + offset));
    ASSERT_TRUE(decision);
    EXPECT_TRUE(decision->allowed);
  }
  auto full = runOn(second_io_, second_.admit("agt_1", "openai", rpm, kNow + 59'999));
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->allowed);
  EXPECT_EQ(full->reset_at_ms, kNow + 60'000);
  // At kNow + 60 s the first admission has left the window.
  auto reopened = runOn(second_io_, second_.admit("agt_1", "openai", rpm, kNow + 60'000));
  ASSERT_TRUE(reopened);
  EXPECT_TRUE(reopened->allowed);
  EXPECT_EQ(reopened->remaining, 0);
  // Another provider has its own window.
  auto other = runOn(first_io_, first_.admit("agt_1", "anthropic", rpm, kNow + 60'000));
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->allowed);
  EXPECT_EQ(other->remaining, 1);
}

TEST_F(RedisLimitsTest, RpdRejectsUntilTheNextUtcDay) {
  limits::RateLimits rpd{std::nullopt, 3, std::nullopt};
  int64_t day_end = limits::utcNextDayStart(kNow);
  for (int i = 0; i < 3; ++i) {
    auto decision = runOn(first_io_, first_.admit("agt_1", "openai", rpd, kNow + i));
    ASSERT_TRUE(decision);
    EXPECT_TRUE(decision->allowed);
    EXPECT_EQ(decision->limit_type, limits::LimitType::kRpd);
    EXPECT_EQ(decision->remaining, 2 - i);
    EXPECT_EQ(decision->reset_at_ms, day_end);
  }
  auto rejected = runOn(second_io_, second_.admit("agt_1", "openai", rpd, kNow + 10));
  ASSERT_TRUE(rejected);
  EXPECT_FALSE(rejected->allowed);
  EXPECT_EQ(rejected->limit_type, limits::LimitType::kRpd);
  EXPECT_EQ(rejected->reset_at_ms, day_end);
  auto next_day = runOn(second_io_, second_.admit("agt_1", "openai", rpd, day_end));
  ASSERT_TRUE(next_day);
  EXPECT_TRUE(next_day->allowed);
}

TEST_F(RedisLimitsTest, TpmCountsTokensRecordedByEveryInstance) {
  limits::RateLimits tpm{std::nullopt, std::nullopt, 1'000};
  first_.recordTokens("agt_1", "openai", 600, kNow);
  second_.recordTokens("agt_1", "openai", 400, kNow + 5);
  // Replies come in order on one connection, so a completed admit means the tokens sent before
  // it were stored.
  (void)runOn(second_io_, second_.admit("agt_2", "openai", limits::RateLimits{}, kNow));
  auto rejected = runOn(first_io_, first_.admit("agt_1", "openai", tpm, kNow + 10));
  ASSERT_TRUE(rejected);
  EXPECT_FALSE(rejected->allowed);
  EXPECT_EQ(rejected->limit_type, limits::LimitType::kTpm);
  // Dropping the 600 of kNow leaves 400 < 1,000.
  EXPECT_EQ(rejected->reset_at_ms, kNow + 60'000);
}

TEST_F(RedisLimitsTest, BudgetAdmitsOnlyWhatFitsAcrossTwoInstances) {
  // $1.00 cap, $0.95 spent by the ledger, $0.04 worst case each: one fits.
  limits::BudgetCaps caps{limits::BudgetCap{std::nullopt, std::nullopt},
                          limits::BudgetCap{100, 80}};
  int admitted = 0;
  int refused = 0;
  std::vector<limits::Reservation> held;
  for (auto* io : {&first_io_, &second_io_}) {
    RedisLimits& limits = io == &first_io_ ? first_ : second_;
    for (int i = 0; i < 10; ++i) {
      asio::co_spawn(
          *io,
          [&]() -> asio::awaitable<void> {
            auto outcome =
                co_await limits.reserve("agt_1", "prj_1", 40'000, caps, kNow, 0, 950'000);
            EXPECT_TRUE(outcome.has_value());
            if (outcome && outcome->has_value()) {
              ++admitted;
              held.push_back(**outcome);
            } else if (outcome) {
              ++refused;
              const limits::BudgetRefusal& refusal = outcome->error();
              EXPECT_EQ(refusal.scope, limits::BudgetScope::kProject);
              EXPECT_EQ(refusal.cap_micros, 1'000'000);
              EXPECT_EQ(refusal.spent_micros, 950'000);
              EXPECT_EQ(refusal.reserved_micros, 40'000);
              EXPECT_EQ(refusal.requested_micros, 40'000);
            }
          },
          asio::detached);
    }
  }
  auto all_answered = [&] { return admitted + refused == 20; };
  driveUntil(first_io_, [&] { return admitted + refused >= 10; });
  driveUntil(second_io_, all_answered);
  driveUntil(first_io_, all_answered);
  EXPECT_EQ(admitted, 1);
  EXPECT_EQ(refused, 19);
  ASSERT_EQ(held.size(), 1u);

  // Settling at $0.03 crosses the 80 % warning and no other threshold.
  std::optional<limits::BudgetEvents> events;
  first_.settle(held[0], 30'000, caps, kNow, [&](Result<limits::BudgetEvents> settled) {
    ASSERT_TRUE(settled);
    events = *settled;
  });
  driveUntil(first_io_, [&] { return events.has_value(); });
  ASSERT_TRUE(events);
  EXPECT_TRUE(events->project_warning);
  EXPECT_FALSE(events->project_exceeded);
  EXPECT_FALSE(events->agent_warning);

  // $0.98 spent, nothing reserved: $0.02 fits, $0.03 does not.
  auto fits = runOn(second_io_, second_.reserve("agt_1", "prj_1", 20'000, caps, kNow, 0, 0));
  ASSERT_TRUE(fits);
  EXPECT_TRUE(fits->has_value());
  auto too_much = runOn(second_io_, second_.reserve("agt_1", "prj_1", 30'000, caps, kNow, 0, 0));
  ASSERT_TRUE(too_much);
  ASSERT_FALSE(too_much->has_value());
  EXPECT_EQ(too_much->error().spent_micros, 980'000);
  EXPECT_EQ(too_much->error().reserved_micros, 20'000);

  // Releasing frees the $0.02 without spending it.
  second_.release(**fits);
  auto after_release =
      runOn(second_io_, second_.reserve("agt_1", "prj_1", 20'000, caps, kNow, 0, 0));
  ASSERT_TRUE(after_release);
  EXPECT_TRUE(after_release->has_value());
}

TEST_F(RedisLimitsTest, ExceededIsReportedOnceAcrossInstances) {
  limits::BudgetCaps caps{limits::BudgetCap{10, std::nullopt}, limits::BudgetCap{}};
  auto a = runOn(first_io_, first_.reserve("agt_1", "prj_1", 60'000, caps, kNow, 0, 0));
  auto b = runOn(second_io_, second_.reserve("agt_1", "prj_1", 40'000, caps, kNow, 0, 0));
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->has_value());
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->has_value());
  int exceeded = 0;
  int settled_count = 0;
  first_.settle(**a, 60'000, caps, kNow, [&](Result<limits::BudgetEvents> settled) {
    ASSERT_TRUE(settled);
    exceeded += settled->agent_exceeded ? 1 : 0;
    ++settled_count;
  });
  driveUntil(first_io_, [&] { return settled_count == 1; });
  EXPECT_EQ(exceeded, 0);
  second_.settle(**b, 40'000, caps, kNow, [&](Result<limits::BudgetEvents> settled) {
    ASSERT_TRUE(settled);
    exceeded += settled->agent_exceeded ? 1 : 0;
    ++settled_count;
  });
  driveUntil(second_io_, [&] { return settled_count == 2; });
  EXPECT_EQ(exceeded, 1);
  auto more = runOn(first_io_, first_.reserve("agt_1", "prj_1", 60'000, caps, kNow, 0, 0));
  ASSERT_TRUE(more);
  EXPECT_FALSE(more->has_value());
}

TEST_F(RedisLimitsTest, LapsedReservationStopsHoldingBudget) {
  limits::BudgetCaps caps{limits::BudgetCap{10, std::nullopt}, limits::BudgetCap{}};
  int64_t long_ago = kNow - RedisLimits::kReservationLease.count() - 1;
  // An instance that died holding the whole budget.
  auto orphan = runOn(first_io_, first_.reserve("agt_1", "prj_1", 100'000, caps, long_ago, 0, 0));
  ASSERT_TRUE(orphan);
  ASSERT_TRUE(orphan->has_value());
  auto now = runOn(second_io_, second_.reserve("agt_1", "prj_1", 100'000, caps, kNow, 0, 0));
  ASSERT_TRUE(now);
  EXPECT_TRUE(now->has_value());
}

TEST_F(RedisLimitsTest, LedgerSeedNeverLowersSpend) {
  limits::BudgetCaps caps{limits::BudgetCap{10, std::nullopt}, limits::BudgetCap{}};
  auto seeded = runOn(first_io_, first_.reserve("agt_1", "prj_1", 0, caps, kNow, 90'000, 0));
  ASSERT_TRUE(seeded);
  ASSERT_TRUE(seeded->has_value());
  // A lower seed from an instance with an older view keeps the 90,000 already counted.
  auto refused = runOn(second_io_, second_.reserve("agt_1", "prj_1", 20'000, caps, kNow, 10, 0));
  ASSERT_TRUE(refused);
  ASSERT_FALSE(refused->has_value());
  EXPECT_EQ(refused->error().spent_micros, 90'000);
}

TEST(RedisLimitsUnreachableTest, AdmitFailsWithLimitsUnavailable) {
  asio::io_context io;
  RedisLimits limits(io, endpointAt(freePort()));
  auto decision = runOn(
      io, limits.admit("agt_1", "openai", limits::RateLimits{5, std::nullopt, std::nullopt}, kNow));
  ASSERT_FALSE(decision);
  EXPECT_EQ(decision.error().code, ErrorCode::kLimitsUnavailable);
  EXPECT_NE(decision.error().message.find("redis://127.0.0.1:"), std::string::npos);
}

TEST(RedisUrlTest, ParsesHostPortDatabaseAndPassword) {
  auto endpoint = parseRedisUrl("redis://:s3cret-pass@cache.internal:6380/2");
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(endpoint->host, "cache.internal");
  EXPECT_EQ(endpoint->port, 6380);
  EXPECT_EQ(endpoint->database, 2);
  EXPECT_EQ(endpoint->password.reveal(), "s3cret-pass");
  EXPECT_EQ(endpoint->display(), "redis://cache.internal:6380/2");

  auto defaults = parseRedisUrl("redis://127.0.0.1");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->port, 6379);
  EXPECT_EQ(defaults->database, 0);
  EXPECT_TRUE(defaults->password.empty());
}

TEST(RedisUrlTest, RejectsOtherSchemesAndDatabases) {
  for (std::string_view url : {"http://127.0.0.1:6379", "redis://", "redis://h:6379/16",
                               "redis://h:6379/x", "not a url"}) {
    auto endpoint = parseRedisUrl(url);
    ASSERT_FALSE(endpoint) << url;
    EXPECT_EQ(endpoint.error().code, ErrorCode::kInvalidRequest) << url;
  }
  auto with_password = parseRedisUrl("ftp://:hunter2-secret@h");
  ASSERT_FALSE(with_password);
  EXPECT_EQ(with_password.error().message.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace keystore::redis
