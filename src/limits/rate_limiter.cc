#include "limits/rate_limiter.h"

#include <algorithm>
#include <functional>
#include <limits>

#include "limits/utc_calendar.h"

namespace keystore::limits {
namespace {

// Agent and provider ids never contain NUL, so the pair maps to one key unambiguously. The key
// is built in a per-thread string that keeps its capacity, so looking up a known key
// allocates nothing. The returned reference is valid until the thread's next call.
const std::string& makeKey(std::string_view agent_id, std::string_view provider) {
  thread_local std::string key;
  key.clear();
  key.append(agent_id);
  key.push_back('\0');
  key.append(provider);
  return key;
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return std::numeric_limits<int64_t>::max();
  }
  return sum;
}

}  // namespace

std::string_view limitTypeName(LimitType type) {
  switch (type) {
    case LimitType::kRpm:
      return "rpm";
    case LimitType::kRpd:
      return "rpd";
    case LimitType::kTpm:
      return "tpm";
    case LimitType::kNone:
      break;
  }
  return "";
}

int64_t RateDecision::retryAfterSeconds(int64_t now_ms) const {
  int64_t wait = reset_at_ms - now_ms;
  if (wait <= 0) {
    return 1;
  }
  return (wait + 999) / 1000;
}

RateLimiter::Shard& RateLimiter::shardFor(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShardCount];
}

void RateLimiter::expire(KeyState& state, int64_t now) {
  const int64_t cutoff = now - kWindowMillis;
  while (!state.admissions.empty() && state.admissions.front() <= cutoff) {
    state.admissions.pop_front();
  }
  while (!state.token_entries.empty() && state.token_entries.front().time <= cutoff) {
    state.window_tokens -= state.token_entries.front().tokens;
    state.token_entries.pop_front();
  }
  int64_t day_start = utcDayStart(now);
  if (day_start > state.day_start) {
    state.day_start = day_start;
    state.day_count = 0;
  }
}

RateDecision RateLimiter::admit(std::string_view agent_id, std::string_view provider,
                                const RateLimits& limits, int64_t now_ms) {
  const std::string& key = makeKey(agent_id, provider);
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  KeyState& state = shard.keys[key];
  const int64_t now = std::max(now_ms, state.latest_time);
  expire(state, now);

  // Every limit that rejects the request; the one that resets last is reported.
  std::optional<RateDecision> rejection;
  auto reject = [&](LimitType type, int64_t limit, int64_t remaining, int64_t reset_at) {
    if (!rejection || reset_at > rejection->reset_at_ms) {
      rejection = RateDecision{.allowed = false,
                               .limit_type = type,
                               .limit = limit,
                               .remaining = remaining,
                               .reset_at_ms = reset_at};
    }
  };

  const int64_t in_minute = static_cast<int64_t>(state.admissions.size());
  if (limits.rpm && in_minute >= *limits.rpm) {
    // Room opens when the admission at index in_minute - rpm leaves the window, since the
    // ones after it number rpm - 1. A limit of 0 never opens.
    int64_t reset_at = *limits.rpm > 0 ? state.admissions[in_minute - *limits.rpm] + kWindowMillis
                                       : now + kWindowMillis;
    reject(LimitType::kRpm, *limits.rpm, 0, reset_at);
  }
  if (limits.rpd && state.day_count >= *limits.rpd) {
    reject(LimitType::kRpd, *limits.rpd, 0, state.day_start + kMillisPerDay);
  }
  if (limits.tpm && state.window_tokens >= *limits.tpm) {
    // Room opens when enough of the oldest entries have left for the sum to drop below tpm.
    int64_t reset_at = now + kWindowMillis;
    int64_t left = state.window_tokens;
    for (const TokenEntry& entry : state.token_entries) {
      left -= entry.tokens;
      if (left < *limits.tpm) {
        reset_at = entry.time + kWindowMillis;
        break;
      }
    }
    reject(LimitType::kTpm, *limits.tpm, 0, reset_at);
  }
  if (rejection) {
    return *rejection;
  }

  // Admission times are only kept while an rpm limit needs them, which bounds their number.
  if (limits.rpm) {
    state.admissions.push_back(now);
  }
  state.day_count += 1;
  state.latest_time = now;

  RateDecision allowed{.allowed = true};
  if (limits.rpm) {
    allowed.limit_type = LimitType::kRpm;
    allowed.limit = *limits.rpm;
    allowed.remaining = *limits.rpm - static_cast<int64_t>(state.admissions.size());
    allowed.reset_at_ms = state.admissions.front() + kWindowMillis;
  }
  if (limits.rpd && (!limits.rpm || *limits.rpd - state.day_count < allowed.remaining)) {
    allowed.limit_type = LimitType::kRpd;
    allowed.limit = *limits.rpd;
    allowed.remaining = *limits.rpd - state.day_count;
    allowed.reset_at_ms = state.day_start + kMillisPerDay;
  }
  if (!limits.rpm && !limits.rpd && limits.tpm) {
    allowed.limit_type = LimitType::kTpm;
    allowed.limit = *limits.tpm;
    allowed.remaining = *limits.tpm - state.window_tokens;
    allowed.reset_at_ms =
        state.token_entries.empty() ? now : state.token_entries.front().time + kWindowMillis;
  }
  return allowed;
}

void RateLimiter::recordTokens(std::string_view agent_id, std::string_view provider, int64_t tokens,
                               int64_t now_ms) {
  if (tokens <= 0) {
    return;
  }
  const std::string& key = makeKey(agent_id, provider);
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  KeyState& state = shard.keys[key];
  const int64_t now = std::max(now_ms, state.latest_time);
  expire(state, now);

  // Entries of the same millisecond share one, which bounds the entries by 60,000 per key.
  if (!state.token_entries.empty() && state.token_entries.back().time == now) {
    state.token_entries.back().tokens = saturatingAdd(state.token_entries.back().tokens, tokens);
  } else {
    state.token_entries.push_back(TokenEntry{.time = now, .tokens = tokens});
  }
  state.window_tokens = saturatingAdd(state.window_tokens, tokens);
  state.latest_time = now;
}

size_t RateLimiter::prune(int64_t now_ms) {
  size_t dropped = 0;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (auto entry = shard.keys.begin(); entry != shard.keys.end();) {
      KeyState& state = entry->second;
      expire(state, std::max(now_ms, state.latest_time));
      if (state.admissions.empty() && state.token_entries.empty() && state.day_count == 0) {
        entry = shard.keys.erase(entry);
        ++dropped;
      } else {
        ++entry;
      }
    }
  }
  return dropped;
}

size_t RateLimiter::keyCount() const {
  size_t count = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    count += shard.keys.size();
  }
  return count;
}

}  // namespace keystore::limits
