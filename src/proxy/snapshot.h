// Snapshot: an immutable, in-memory view of everything the proxy needs to admit a request
// (tokens, agents, provider settings, credential ciphertexts, unwrapped data keys).
//
// SnapshotHolder builds a new Snapshot from the Store after every change and swaps it in
// atomically, so the request path never takes a lock or touches the database and never sees
// half an update. A request keeps the shared_ptr it started with, so requests in flight
// finish on the credential they were admitted with.
//
// Thread-safety: current() may be called from any thread; refresh() serializes builds.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"
#include "common/secure_zero.h"
#include "common/string_map.h"
#include "limits/budget_tracker.h"
#include "limits/cost_estimate.h"
#include "limits/rate_limiter.h"
#include "marketplace/credential_health.h"
#include "proxy/header_rules.h"
#include "store/store.h"
#include "tokens/scope.h"
#include "vault/vault.h"

namespace keystore::proxy {

struct TokenEntry {
  std::string token_id;
  std::string agent_id;
  std::string project_id;
  std::string hint;  // last 4 hex digits of the token hash
  std::vector<tokens::Scope> scopes;
  std::vector<std::string> models;  // models the token may request; empty = any model
  int64_t expires_at = 0;           // 0 = never
  int64_t revoked_at = 0;           // 0 = live
};

struct AgentEntry {
  std::string status;  // "active" | "paused" | "revoked"
  // The agent's own limits and budget; unset ones fall back to the project's defaults.
  limits::RateLimits limits;
  limits::BudgetCap budget;
};

// A decrypted credential, and the strings inside it that a response must not echo to the
// client (see credentialNeedles). Both are wiped when the last holder lets go.
struct CredentialPlaintext {
  CredentialPlaintext(Secret value, std::vector<std::string> echo_forms)
      : secret(std::move(value)), needles(std::move(echo_forms)) {}
  ~CredentialPlaintext() {
    for (auto& needle : needles) {
      secureZero(needle.data(), needle.size());
    }
  }
  CredentialPlaintext(const CredentialPlaintext&) = delete;
  CredentialPlaintext& operator=(const CredentialPlaintext&) = delete;

  Secret secret;
  std::vector<std::string> needles;
};

// Shared, so that a request uses the cached plaintext itself: a copy would be one more place
// with the key in memory, and one more allocation and wipe per request.
using CredentialPlaintextPtr = std::shared_ptr<const CredentialPlaintext>;

// The plaintext of one credential, decrypted on first use and kept until the snapshot entry
// that owns it and every request using it let go, when it is wiped. A rotated or deleted
// credential thus leaves memory with the last snapshot or request that held it. Only successes
// are kept: a credential that fails to decrypt is decrypted again, and fails again, on every
// request.
//
// Thread-safety: plaintext() may be called from any thread. Two threads that race on the first
// use both decrypt, and the first result stored is kept.
class CachedPlaintext {
 public:
  CachedPlaintext() = default;
  // A copied entry starts without a plaintext, so a copy never shares a Secret's lifetime.
  CachedPlaintext(const CachedPlaintext& /*other*/) {}
  CachedPlaintext& operator=(const CachedPlaintext& /*other*/) {
    plaintext_.store(nullptr, std::memory_order_release);
    return *this;
  }

  // Returns the stored plaintext. Without one, it calls `decrypt()` (a Result<Secret>), adds the
  // needles of `provider`, and stores the result when decryption succeeded.
  template <typename Decrypt>
  Result<CredentialPlaintextPtr> plaintext(const catalog::ProviderSpec& provider,
                                           Decrypt&& decrypt) const {
    if (CredentialPlaintextPtr cached = plaintext_.load(std::memory_order_acquire)) {
      return cached;
    }
    Result<Secret> decrypted = decrypt();
    if (!decrypted) {
      return std::unexpected(std::move(decrypted.error()));
    }
    std::vector<std::string> needles = credentialNeedles(provider, *decrypted);
    auto fresh =
        std::make_shared<const CredentialPlaintext>(std::move(*decrypted), std::move(needles));
    CredentialPlaintextPtr expected;
    if (!plaintext_.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
      return expected;
    }
    return fresh;
  }

 private:
  mutable std::atomic<CredentialPlaintextPtr> plaintext_;
};

struct CredentialEntry {
  std::string id;
  std::string ciphertext;
  CachedPlaintext plaintext{};
};

// An active marketplace credential. Its health is shared with every snapshot and request
// that names the same credential id.
struct PoolCredentialEntry {
  std::string id;
  std::string project_id;  // the project a dedicated credential serves; empty when shared
  std::string ciphertext;  // encrypted with the pool's data key
  int64_t rpm_limit = 0;   // 0 = no limit of its own
  std::shared_ptr<marketplace::CredentialHealth> health;
  CachedPlaintext plaintext{};  // decrypted with the pool's data key
};

using PoolCredentials = std::vector<std::shared_ptr<const PoolCredentialEntry>>;

struct ProviderEntry {
  std::string mode;  // "byok" | "marketplace"
  bool enabled = false;
  std::shared_ptr<const CredentialEntry> byok_credential;  // null when none is stored
  PoolCredentials dedicated;  // marketplace credentials reserved for this project
};

struct ProjectEntry {
  limits::RateLimits default_limits;  // per agent and provider, when the agent sets none
  limits::BudgetCap budget;
  // Null when the data key could not be unwrapped (wrong master key, damaged row): every
  // credential of the project is then unreadable, and requests fail closed.
  std::shared_ptr<const Secret> data_key;
  std::unordered_map<std::string, ProviderEntry> providers;
};

struct Snapshot {
  int64_t generation = 0;
  // The data key of the marketplace pool; null when there is none or it cannot be unwrapped.
  std::shared_ptr<const Secret> pool_data_key;
  std::unordered_map<std::string, PoolCredentials> shared_pools;  // by provider id
  // The operator's prices in effect when the snapshot was built, and the time the next
  // scheduled price change takes effect (0 = none), after which the snapshot is rebuilt.
  limits::PriceTable prices;
  int64_t prices_valid_until = 0;
  // Key: the token hash in 64 hex digits.
  StringMap<TokenEntry> tokens_by_hash;
  std::unordered_map<std::string, AgentEntry> agents;
  std::unordered_map<std::string, ProjectEntry> projects;
};

class SnapshotHolder {
 public:
  // `health` keeps the state of marketplace credentials across rebuilds; without one the
  // holder keeps its own.
  SnapshotHolder(store::Store& store, const vault::Vault& vault,
                 marketplace::HealthRegistry* health = nullptr);

  marketplace::HealthRegistry& health() { return *health_; }

  // The newest snapshot. Never null after the first successful refresh().
  std::shared_ptr<const Snapshot> current() const {
    return current_.load(std::memory_order_acquire);
  }

  // Rebuilds from the store when its generation moved (or always, with force). A failed
  // build keeps the previous snapshot and returns the error.
  Result<void> refresh(bool force = false);

  // True when refreshes have failed for longer than `limit_ms`. The snapshot in service may
  // then miss a revocation or a key change, so the proxy refuses requests (fails closed)
  // instead of serving from it.
  bool staleFor(int64_t now_ms, int64_t limit_ms) const {
    int64_t since = failing_since_ms_.load(std::memory_order_relaxed);
    return since != 0 && now_ms - since > limit_ms;
  }

 private:
  Result<void> refreshLocked(bool force);
  Result<std::shared_ptr<Snapshot>> build(int64_t generation);

  store::Store& store_;
  const vault::Vault& vault_;
  std::unique_ptr<marketplace::HealthRegistry> own_health_;
  marketplace::HealthRegistry* health_;
  std::mutex refresh_mutex_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::atomic<int64_t> failing_since_ms_{0};  // 0 while refreshes succeed
};

}  // namespace keystore::proxy
