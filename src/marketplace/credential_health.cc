#include "marketplace/credential_health.h"

#include <algorithm>
#include <optional>

namespace keystore::marketplace {

namespace {
constexpr int64_t kMinuteMs = 60'000;
}  // namespace

std::string_view circuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

int64_t CredentialHealth::windowCount(int64_t now_ms) const {
  int64_t minute = now_ms / kMinuteMs;
  int64_t current = minute == minute_ ? current_count_ : 0;
  int64_t previous = minute == minute_       ? previous_count_
                     : minute == minute_ + 1 ? current_count_
                                             : 0;
  // The part of the previous fixed minute that the sliding window still covers.
  int64_t elapsed = now_ms % kMinuteMs;
  return current + (previous * (kMinuteMs - elapsed)) / kMinuteMs;
}

bool CredentialHealth::tryAcquire(int64_t now_ms, int64_t rpm_limit) {
  bool half_opened = false;
  bool acquired = tryAcquireLocked(now_ms, rpm_limit, half_opened);
  if (half_opened && listener_ != nullptr && *listener_) {
    (*listener_)(id_, CircuitState::kHalfOpen);
  }
  return acquired;
}

bool CredentialHealth::tryAcquireLocked(int64_t now_ms, int64_t rpm_limit, bool& half_opened) {
  std::lock_guard lock(mutex_);
  if (state_ == CircuitState::kOpen) {
    if (now_ms - opened_at_ms_ < policy_.cooldown_ms) {
      return false;
    }
    state_ = CircuitState::kHalfOpen;
    half_opened = true;
  }
  if (state_ == CircuitState::kHalfOpen && probe_in_flight_ &&
      now_ms - probe_started_ms_ < std::max(policy_.cooldown_ms, kMinProbeLeaseMs)) {
    return false;
  }
  if (rpm_limit > 0 && windowCount(now_ms) >= rpm_limit) {
    return false;
  }
  int64_t minute = now_ms / kMinuteMs;
  if (minute != minute_) {
    previous_count_ = minute == minute_ + 1 ? current_count_ : 0;
    current_count_ = 0;
    minute_ = minute;
  }
  ++current_count_;
  if (state_ == CircuitState::kHalfOpen) {
    probe_in_flight_ = true;
    probe_started_ms_ = now_ms;
  }
  last_acquired_ms_ = now_ms;
  return true;
}

void CredentialHealth::report(Verdict verdict, int64_t now_ms) {
  std::optional<CircuitState> changed;
  {
    std::lock_guard lock(mutex_);
    bool was_probe = state_ == CircuitState::kHalfOpen && probe_in_flight_;
    switch (verdict) {
      case Verdict::kSuccess:
        consecutive_failures_ = 0;
        if (state_ != CircuitState::kClosed) {
          state_ = CircuitState::kClosed;
          opened_at_ms_ = 0;
          changed = state_;
        }
        break;
      case Verdict::kFailure:
        ++consecutive_failures_;
        if (was_probe || (state_ == CircuitState::kClosed &&
                          consecutive_failures_ >= policy_.failure_threshold)) {
          state_ = CircuitState::kOpen;
          opened_at_ms_ = now_ms;
          changed = state_;
        }
        break;
      case Verdict::kNeutral:
        break;
    }
    if (was_probe) {
      probe_in_flight_ = false;
    }
  }
  if (changed && listener_ != nullptr && *listener_) {
    (*listener_)(id_, *changed);
  }
}

int64_t CredentialHealth::lastAcquiredMs() const {
  std::lock_guard lock(mutex_);
  return last_acquired_ms_;
}

HealthView CredentialHealth::view(int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  HealthView view;
  view.state = state_;
  // An open circuit whose cool-down has passed admits the next request as its probe.
  if (state_ == CircuitState::kOpen && now_ms - opened_at_ms_ >= policy_.cooldown_ms) {
    view.state = CircuitState::kHalfOpen;
  }
  view.consecutive_failures = consecutive_failures_;
  view.opened_at_ms = opened_at_ms_;
  view.requests_last_minute = windowCount(now_ms);
  return view;
}

std::shared_ptr<CredentialHealth> HealthRegistry::get(const std::string& credential_id) {
  std::lock_guard lock(mutex_);
  auto& entry = entries_[credential_id];
  if (!entry) {
    entry = std::make_shared<CredentialHealth>(credential_id, policy_, &listener_);
  }
  return entry;
}

std::shared_ptr<CredentialHealth> HealthRegistry::find(const std::string& credential_id) const {
  std::lock_guard lock(mutex_);
  auto found = entries_.find(credential_id);
  return found == entries_.end() ? nullptr : found->second;
}

}  // namespace keystore::marketplace
