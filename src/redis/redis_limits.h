// RedisLimits: the rate limits and budget reservations of limits::RateLimiter and
// limits::BudgetTracker, kept in Redis so that every Keystore instance sharing one Redis
// enforces one limit and one budget together.
//
// Each decision is one Lua script, which Redis runs atomically. Concurrent requests on any
// number of instances therefore never pass a limit or a cap together. With rpm 5 and 20
// concurrent requests spread over two instances, exactly 5 are admitted. Rules, limit types,
// Retry-After values and the overshoot bound are those of the in-memory classes (see their
// headers), with these differences:
// - Budget counters are per UTC month of the request's start, and a reservation settles into
//   that month even when the request ends in the next one.
// - Spend is seeded from the ledger: each call passes the instance's view of the month's
//   ledger spend, and Redis keeps the larger of that and its own counter, so a Redis restart
//   or flush loses no spend that reached the ledger.
// - A reservation is a lease (kReservationLease). An instance that dies with requests in
//   flight cannot settle them; their reservations lapse when the lease ends, instead of
//   holding budget forever. A request that runs longer than the lease settles its actual cost
//   all the same.
// - Time comes from the instance's clock; instances are expected to keep NTP time. An
//   admission time earlier than the newest one recorded for the key counts as the newest.
// Keys live under `prefix` and expire on their own once their window or month is over.
//
// When Redis cannot be reached, admit() and reserve() fail with kLimitsUnavailable and the
// proxy refuses the request (503 limits_unavailable): with real money behind the budgets,
// admitting requests unchecked is the worse failure. settle() and release() are then lost for
// that request; a lost reservation lapses with its lease.
//
// Not thread-safe: one RedisLimits per proxy worker thread, used on the thread that runs the
// io_context it was built with.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "limits/budget_tracker.h"
#include "limits/rate_limiter.h"
#include "redis/redis_connection.h"

namespace keystore::redis {

class RedisLimits {
 public:
  static constexpr std::chrono::milliseconds kReservationLease{15 * 60 * 1000};

  RedisLimits(boost::asio::io_context& io, RedisEndpoint endpoint, std::string prefix = "ks:");

  boost::asio::awaitable<Result<limits::RateDecision>> admit(std::string_view agent_id,
                                                             std::string_view provider,
                                                             limits::RateLimits limits,
                                                             int64_t now_ms);

  // Adds the tokens of a finished request to the tpm window; fire and forget.
  void recordTokens(std::string_view agent_id, std::string_view provider, int64_t tokens,
                    int64_t now_ms);

  // The outcome of reserve(): a reservation, or the refusal naming the cap.
  using ReserveOutcome = std::expected<limits::Reservation, limits::BudgetRefusal>;

  // Reserves `worst_case_micros` against both caps. `agent_spend_micros` and
  // `project_spend_micros` are the month's spend as this instance last read it from the ledger.
  boost::asio::awaitable<Result<ReserveOutcome>> reserve(std::string_view agent_id,
                                                         std::string_view project_id,
                                                         int64_t worst_case_micros,
                                                         limits::BudgetCaps caps, int64_t now_ms,
                                                         int64_t agent_spend_micros,
                                                         int64_t project_spend_micros);

  // Replaces the reservation by the actual cost and reports the thresholds crossed for the
  // first time this month (across all instances) to `done`, which may be empty.
  void settle(const limits::Reservation& reservation, int64_t actual_micros,
              const limits::BudgetCaps& caps, int64_t now_ms,
              std::move_only_function<void(Result<limits::BudgetEvents>)> done);

  // Drops the reservation of a request that never reached the upstream; fire and forget.
  void release(const limits::Reservation& reservation);

 private:
  // Runs a script by its SHA-1, loading it on the server the first time (NOSCRIPT).
  boost::asio::awaitable<Result<RedisValue>> evalScript(const struct Script& script,
                                                        std::vector<std::string> keys,
                                                        std::vector<std::string> args);
  void evalScriptDetached(const struct Script& script, std::vector<std::string> keys,
                          std::vector<std::string> args, RedisConnection::Callback done);
  std::vector<std::string> budgetKeys(const limits::Reservation& reservation) const;
  std::string newMember();

  RedisConnection connection_;
  std::string prefix_;
  uint64_t member_counter_ = 0;
  std::string member_prefix_;
};

}  // namespace keystore::redis
