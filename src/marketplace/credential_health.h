// CredentialHealth: the live state of one marketplace credential, shared by every request
// and I/O thread of this instance: its circuit breaker and its request-rate window.
//
// Circuit: closed while the credential works. After `failure_threshold` consecutive
// failures (401, 403, 429 or 5xx responses) it opens and is skipped. Once `cooldown_ms` has
// passed, the next request may use it as the single probe (half-open). The probe's success
// closes the circuit, its failure opens it for another cool-down, and a probe that ends
// without a verdict (the client went away) lets the next request probe instead. A probe still
// running after the probe lease (the cool-down, at least kMinProbeLeaseMs) is presumed lost,
// for example to an upstream that never answers. The next request then probes too, so one
// hung request cannot keep the credential out of use for the whole response timeout.
//
// Rate: at most `rpm_limit` requests in any 60-second sliding window (0 = unlimited),
// estimated from the counts of the current and the previous fixed minute, weighted by how
// much of the previous minute the window still covers. The estimate never lets more than
// rpm_limit requests start within one fixed minute.
//
// Thread-safety: every method may be called from any thread; a small mutex guards the state.
// HealthRegistry hands out one CredentialHealth per credential id for the life of the
// process, so the state survives configuration reloads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace keystore::marketplace {

enum class CircuitState { kClosed, kOpen, kHalfOpen };

std::string_view circuitStateName(CircuitState state);

struct CircuitPolicy {
  int failure_threshold = 5;
  int64_t cooldown_ms = 30'000;
};

// The outcome of a request for the credential that carried it.
enum class Verdict {
  kSuccess,  // the upstream accepted the credential
  kFailure,  // rejected, throttled or failed upstream
  kNeutral,  // no verdict: the request ended before the upstream judged the credential
};

struct HealthView {
  CircuitState state = CircuitState::kClosed;
  int consecutive_failures = 0;
  int64_t opened_at_ms = 0;  // 0 unless open or half-open
  int64_t requests_last_minute = 0;
};

class CredentialHealth {
 public:
  static constexpr int64_t kMinProbeLeaseMs = 60'000;

  // Called with the credential id and the new state whenever the circuit opens, turns
  // half-open for a probe, or closes, outside the lock.
  using StateListener = std::function<void(const std::string&, CircuitState)>;

  CredentialHealth(std::string credential_id, const CircuitPolicy& policy,
                   const StateListener* listener)
      : id_(std::move(credential_id)), policy_(policy), listener_(listener) {}

  // Whether a new request may use the credential now: the circuit admits it and the rate
  // window has room. On true, the request is counted in the window and, in the half-open
  // state, becomes the probe; it must end with exactly one report().
  bool tryAcquire(int64_t now_ms, int64_t rpm_limit);
  void report(Verdict verdict, int64_t now_ms);

  // When the credential was last handed to a request (ms), for spreading load.
  int64_t lastAcquiredMs() const;
  HealthView view(int64_t now_ms) const;

 private:
  int64_t windowCount(int64_t now_ms) const;
  bool tryAcquireLocked(int64_t now_ms, int64_t rpm_limit, bool& half_opened);

  const std::string id_;
  const CircuitPolicy& policy_;
  const StateListener* listener_;
  mutable std::mutex mutex_;
  CircuitState state_ = CircuitState::kClosed;
  int consecutive_failures_ = 0;
  int64_t opened_at_ms_ = 0;
  bool probe_in_flight_ = false;
  int64_t probe_started_ms_ = 0;
  int64_t last_acquired_ms_ = 0;
  int64_t minute_ = 0;  // the fixed minute (now_ms / 60000) the current count belongs to
  int64_t current_count_ = 0;
  int64_t previous_count_ = 0;
};

class HealthRegistry {
 public:
  explicit HealthRegistry(CircuitPolicy policy = {}) : policy_(policy) {}

  // The state of `credential_id`, created on first use. Never null.
  std::shared_ptr<CredentialHealth> get(const std::string& credential_id);
  // nullptr when the credential has not been used or looked up yet.
  std::shared_ptr<CredentialHealth> find(const std::string& credential_id) const;

  // Set once at start-up, before any request.
  void setListener(CredentialHealth::StateListener listener) { listener_ = std::move(listener); }
  const CircuitPolicy& policy() const { return policy_; }

 private:
  CircuitPolicy policy_;
  CredentialHealth::StateListener listener_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<CredentialHealth>> entries_;
};

}  // namespace keystore::marketplace
