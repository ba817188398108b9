#include "accounts/login_throttle.h"

#include <algorithm>
#include <cctype>

namespace keystore::accounts {

namespace {

std::string lowerCase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

LoginThrottle::LoginThrottle(ThrottlePolicy policy) : policy_(policy) {}

void LoginThrottle::prune(Failures& failures, int64_t now) const {
  while (!failures.empty() && failures.front() <= now - policy_.window_ms) {
    failures.pop_front();
  }
}

std::optional<int64_t> LoginThrottle::blockedFor(std::map<std::string, Failures>& counters,
                                                 const std::string& key, int limit,
                                                 int64_t now) const {
  auto found = counters.find(key);
  if (found == counters.end()) {
    return std::nullopt;
  }
  Failures& failures = found->second;
  prune(failures, now);
  if (static_cast<int>(failures.size()) < limit) {
    return std::nullopt;
  }
  // The attempt may run once enough failures left the window to fall below the limit.
  int64_t frees_at = failures[failures.size() - static_cast<size_t>(limit)] + policy_.window_ms;
  return std::max<int64_t>(1, (frees_at - now + 999) / 1000);
}

std::optional<int64_t> LoginThrottle::retryAfterSeconds(const std::string& email,
                                                        const std::string& address, int64_t now) {
  std::lock_guard lock(mutex_);
  std::optional<int64_t> by_email =
      blockedFor(by_email_, lowerCase(email), policy_.max_failures_per_email, now);
  std::optional<int64_t> by_address =
      blockedFor(by_address_, address, policy_.max_failures_per_address, now);
  if (by_email && by_address) {
    return std::max(*by_email, *by_address);
  }
  return by_email ? by_email : by_address;
}

void LoginThrottle::recordFailure(const std::string& email, const std::string& address,
                                  int64_t now) {
  std::lock_guard lock(mutex_);
  by_email_[lowerCase(email)].push_back(now);
  by_address_[address].push_back(now);
  if (now - last_sweep_ >= policy_.window_ms) {
    sweep(now);
  }
}

void LoginThrottle::recordSuccess(const std::string& email) {
  std::lock_guard lock(mutex_);
  by_email_.erase(lowerCase(email));
}

void LoginThrottle::sweep(int64_t now) {
  last_sweep_ = now;
  for (auto* counters : {&by_email_, &by_address_}) {
    for (auto entry = counters->begin(); entry != counters->end();) {
      prune(entry->second, now);
      entry = entry->second.empty() ? counters->erase(entry) : std::next(entry);
    }
  }
}

}  // namespace keystore::accounts
