// LoginThrottle: counts failed sign-ins per email and per source address in a sliding window
// and tells when either has reached its limit.
//
// Owns its counters in memory, so the limits hold per instance: with N instances behind a
// load balancer an attacker gets up to N times the limit.
// NOTE: the counters are not shared through the store or Redis yet, and a restart clears
// them.
//
// Thread-safe: a mutex guards the counters.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace keystore::accounts {

struct ThrottlePolicy {
  int max_failures_per_email = 5;
  // Higher than the per-email limit, because several people may share one address (a NAT).
  int max_failures_per_address = 20;
  int64_t window_ms = 15 * 60 * 1000;
};

class LoginThrottle {
 public:
  explicit LoginThrottle(ThrottlePolicy policy = {});

  // Seconds until the next attempt for this email and address may run, or nullopt when it
  // may run now. The email is compared without case.
  std::optional<int64_t> retryAfterSeconds(const std::string& email, const std::string& address,
                                           int64_t now);
  void recordFailure(const std::string& email, const std::string& address, int64_t now);
  // Clears the email's failures after a successful sign-in; the address keeps its count.
  void recordSuccess(const std::string& email);

 private:
  using Failures = std::deque<int64_t>;  // times in Unix milliseconds, oldest first

  void prune(Failures& failures, int64_t now) const;
  std::optional<int64_t> blockedFor(std::map<std::string, Failures>& counters,
                                    const std::string& key, int limit, int64_t now) const;
  // Drops keys whose failures all left the window, so memory stays bounded by recent traffic.
  void sweep(int64_t now);

  ThrottlePolicy policy_;
  std::mutex mutex_;
  std::map<std::string, Failures> by_email_;
  std::map<std::string, Failures> by_address_;
  int64_t last_sweep_ = 0;
};

}  // namespace keystore::accounts
