#include "webhooks/retry_policy.h"

#include <algorithm>

namespace keystore::webhooks {

int64_t RetryPolicy::delayMs(int64_t failed_attempts, double jitter) const {
  int64_t delay = std::max<int64_t>(base_ms, 1);
  // Doubling stops at the cap, so large attempt counts cannot overflow.
  for (int64_t i = 1; i < failed_attempts && delay < kMaxRetryDelayMs; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, kMaxRetryDelayMs);
  double factor = 0.75 + 0.25 * std::clamp(jitter, 0.0, 1.0);
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(delay) * factor));
}

std::optional<int64_t> RetryPolicy::nextAttemptAt(int64_t created_at, int64_t now,
                                                  int64_t failed_attempts, double jitter) const {
  int64_t next = now + delayMs(failed_attempts, jitter);
  if (next > created_at + window_ms) {
    return std::nullopt;
  }
  return next;
}

}  // namespace keystore::webhooks
