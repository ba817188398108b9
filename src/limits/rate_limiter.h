// RateLimiter: request and token rate limits per (agent, provider) key, decided in memory on
// the request path.
//
// Three limits, each optional and passed with every call, so a changed limit applies to the
// next request:
//   rpm  requests per minute over a true sliding window. A request admitted at time t counts
//        until t + 60 s. The limiter keeps the admission times of the last 60 s per key, never
//        more than the limit, so memory is bounded by min(limit, requests in the last minute).
//   rpd  requests per UTC day, a fixed window that resets at 00:00 UTC.
//   tpm  tokens per minute over the same sliding window. recordTokens() adds the actual count
//        after the response, and a request is rejected while the last 60 s have already used
//        the whole budget. Requests in flight are not counted, so the tokens of one minute can
//        exceed tpm by what the requests admitted before the budget ran out use.
// A limit of 0 rejects every request.
//
// admit() checks every limit and counts the request against rpm and rpd in one step under the
// key's lock, so concurrent callers never pass a limit together: with rpm 5 and 20 concurrent
// callers exactly 5 are admitted. A rejected request is not counted.
//
// Times are Unix milliseconds from the caller's wall clock (the day boundary is UTC). A time
// earlier than one already recorded for the key (threads racing with slightly different
// clocks) is treated as the recorded one, which can only make the limiter stricter.
//
// Thread-safety: every method may be called from any thread. Keys are spread over shards,
// each with its own mutex.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace keystore::limits {

enum class LimitType {
  kNone,  // no limit applies (allowed, and nothing to report)
  kRpm,
  kRpd,
  kTpm,
};

// "rpm", "rpd", "tpm", or "" for kNone: the limit_type of a rate_limited error body.
std::string_view limitTypeName(LimitType type);

struct RateLimits {
  std::optional<int64_t> rpm;
  std::optional<int64_t> rpd;
  std::optional<int64_t> tpm;
};

// The outcome of admit(), with what the X-RateLimit-* headers report.
//
// Rejected: limit_type is the limit that rejected the request. When several did, it is the
// one that resets last, so a client that waits until reset_at_ms finds all of them clear
// unless other requests take the room first. remaining is 0.
//
// Allowed: limit_type is whichever of rpm and rpd has fewer requests remaining after this one
// (rpm on a tie), or tpm when only tpm is set, or kNone when no limit is set.
struct RateDecision {
  bool allowed = false;
  LimitType limit_type = LimitType::kNone;
  int64_t limit = 0;
  int64_t remaining = 0;
  // When a slot or token frees up for rpm and tpm (the oldest counted entry leaves the
  // window), or the next 00:00 UTC for rpd. Unix milliseconds.
  int64_t reset_at_ms = 0;

  // Whole seconds from `now_ms` until reset_at_ms, rounded up and at least 1: the value of a
  // Retry-After header.
  int64_t retryAfterSeconds(int64_t now_ms) const;
};

class RateLimiter {
 public:
  static constexpr int64_t kWindowMillis = 60'000;

  RateLimiter() = default;
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Admits the request of `agent_id` to `provider` if no limit in `limits` rejects it, and
  // counts it against rpm and rpd. A rejected request changes nothing.
  RateDecision admit(std::string_view agent_id, std::string_view provider, const RateLimits& limits,
                     int64_t now_ms);

  // Records the tokens a finished request used (input and output, as the provider reported
  // them), for the tpm limit. Non-positive counts are ignored.
  void recordTokens(std::string_view agent_id, std::string_view provider, int64_t tokens,
                    int64_t now_ms);

  // Drops the state of keys that have nothing in their windows at `now_ms` (no request in the
  // last minute or today, no tokens in the last minute), so idle agents cost no memory.
  // Returns how many keys were dropped.
  size_t prune(int64_t now_ms);

  // Keys with state, for tests and metrics.
  size_t keyCount() const;

 private:
  struct TokenEntry {
    int64_t time = 0;
    int64_t tokens = 0;
  };

  struct KeyState {
    std::deque<int64_t> admissions;  // admission times within the last minute, ascending
    int64_t day_start = 0;           // the UTC day that day_count counts
    int64_t day_count = 0;
    std::deque<TokenEntry> token_entries;  // within the last minute, ascending
    int64_t window_tokens = 0;             // sum of token_entries' tokens
    int64_t latest_time = 0;               // the latest time recorded, see the header comment
  };

  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, KeyState> keys;
  };

  static constexpr size_t kShardCount = 16;

  Shard& shardFor(const std::string& key);
  // Removes what has left the windows at `now` and rolls the day over.
  static void expire(KeyState& state, int64_t now);

  std::array<Shard, kShardCount> shards_;
};

}  // namespace keystore::limits
