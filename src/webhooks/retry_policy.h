// RetryPolicy: when a failed webhook delivery is attempted again.
//
// After the n-th failed attempt the next one waits base * 2^(n-1), at most kMaxRetryDelay,
// scaled by a random factor in [0.75, 1.0] so that deliveries failing together spread out.
// A delivery whose next attempt would start later than `window` after the delivery was
// created is given up as failed. Example with the defaults (30 s, 24 h): about 30 s, 1 min,
// 2 min, … up to hourly attempts, for one day.
//
// Immutable value; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace keystore::webhooks {

// The longest wait between two attempts, whatever the base.
inline constexpr int64_t kMaxRetryDelayMs = 3'600'000;

struct RetryPolicy {
  int64_t base_ms = 30'000;
  int64_t window_ms = 86'400'000;

  // The wait before attempt `failed_attempts` + 1, with `jitter` in [0, 1] choosing where in
  // the [0.75, 1.0] band it falls.
  int64_t delayMs(int64_t failed_attempts, double jitter) const;

  // The time of the next attempt after `failed_attempts` failures, or nullopt when it would
  // fall outside the window that began at `created_at`. Times are Unix milliseconds.
  std::optional<int64_t> nextAttemptAt(int64_t created_at, int64_t now, int64_t failed_attempts,
                                       double jitter) const;
};

}  // namespace keystore::webhooks
