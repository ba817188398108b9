#include "proxy/snapshot.h"

#include <spdlog/spdlog.h>

#include <set>
#include <tuple>

#include "common/clock.h"
#include "tokens/agent_token.h"

namespace keystore::proxy {

SnapshotHolder::SnapshotHolder(store::Store& store, const vault::Vault& vault,
                               marketplace::HealthRegistry* health)
    : store_(store), vault_(vault) {
  if (health == nullptr) {
    own_health_ = std::make_unique<marketplace::HealthRegistry>();
    health = own_health_.get();
  }
  health_ = health;
}

Result<void> SnapshotHolder::refresh(bool force) {
  std::lock_guard lock(refresh_mutex_);
  auto result = refreshLocked(force);
  if (result) {
    failing_since_ms_.store(0, std::memory_order_relaxed);
  } else if (failing_since_ms_.load(std::memory_order_relaxed) == 0) {
    failing_since_ms_.store(nowUnixMillis(), std::memory_order_relaxed);
  }
  return result;
}

Result<void> SnapshotHolder::refreshLocked(bool force) {
  auto generation = store_.configGeneration();
  if (!generation) {
    return std::unexpected(generation.error());
  }
  auto previous = current();
  // A scheduled price change needs a rebuild when it takes effect, even though nothing was
  // written at that moment.
  bool prices_due = previous && previous->prices_valid_until != 0 &&
                    nowUnixMillis() >= previous->prices_valid_until;
  if (!force && !prices_due && previous && previous->generation == *generation) {
    return {};
  }
  // The generation is read before the data, so a change committed during the build bumps
  // the generation past this snapshot's and the next refresh picks it up.
  auto snapshot = build(*generation);
  if (!snapshot) {
    return std::unexpected(snapshot.error());
  }
  current_.store(std::move(*snapshot), std::memory_order_release);
  return {};
}

Result<std::shared_ptr<Snapshot>> SnapshotHolder::build(int64_t generation) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->generation = generation;

  auto data_keys = store_.listDataKeys();
  if (!data_keys) {
    return std::unexpected(data_keys.error());
  }
  for (const auto& data_key : *data_keys) {
    auto unwrapped = vault_.unwrapDataKey(data_key.project_id, data_key.key_id, data_key.wrapped);
    if (!unwrapped) {
      spdlog::error("data key {} of {} cannot be unwrapped: {}", data_key.key_id,
                    data_key.project_id.empty() ? std::string("the marketplace pool")
                                                : "project " + data_key.project_id,
                    unwrapped.error().message);
      continue;
    }
    auto key = std::make_shared<const Secret>(std::move(*unwrapped));
    if (data_key.project_id.empty()) {
      snapshot->pool_data_key = std::move(key);
    } else {
      snapshot->projects[data_key.project_id].data_key = std::move(key);
    }
  }

  auto settings = store_.listAllProviderSettings();
  if (!settings) {
    return std::unexpected(settings.error());
  }
  for (const auto& setting : *settings) {
    auto& provider = snapshot->projects[setting.project_id].providers[setting.provider];
    provider.mode = setting.mode;
    provider.enabled = setting.status == "enabled";
  }

  auto credentials = store_.listActiveCredentials();
  if (!credentials) {
    return std::unexpected(credentials.error());
  }
  for (const auto& credential : *credentials) {
    if (credential.scope == "byok" && !credential.project_id.empty()) {
      auto& provider = snapshot->projects[credential.project_id].providers[credential.provider];
      provider.byok_credential = std::make_shared<const CredentialEntry>(
          CredentialEntry{credential.id, credential.ciphertext});
      continue;
    }
    auto entry = std::make_shared<const PoolCredentialEntry>(
        PoolCredentialEntry{credential.id, credential.project_id, credential.ciphertext,
                            credential.rpm_limit, health_->get(credential.id)});
    if (credential.scope == "shared") {
      snapshot->shared_pools[credential.provider].push_back(std::move(entry));
    } else if (credential.scope == "dedicated" && !credential.project_id.empty()) {
      snapshot->projects[credential.project_id].providers[credential.provider].dedicated.push_back(
          std::move(entry));
    }
  }

  auto agents = store_.listAllAgents();
  if (!agents) {
    return std::unexpected(agents.error());
  }
  for (const auto& agent : *agents) {
    AgentEntry entry;
    entry.status = agent.status;
    entry.limits = limits::RateLimits{agent.rpm_limit, agent.rpd_limit, agent.tpm_limit};
    entry.budget = limits::BudgetCap{agent.budget_cents, agent.budget_warn_percent};
    snapshot->agents[agent.id] = std::move(entry);
  }

  auto project_limits = store_.listProjectLimits();
  if (!project_limits) {
    return std::unexpected(project_limits.error());
  }
  for (const auto& limits : *project_limits) {
    auto& project = snapshot->projects[limits.project_id];
    project.default_limits =
        limits::RateLimits{limits.default_rpm, limits.default_rpd, limits.default_tpm};
    project.budget = limits::BudgetCap{limits.budget_cents, limits.budget_warn_percent};
  }

  auto prices = store_.listPrices();
  if (!prices) {
    return std::unexpected(prices.error());
  }
  // listPrices is newest first, so the first row seen for a (provider, model, unit) that is
  // already in effect is the one that applies.
  int64_t now = nowUnixMillis();
  std::set<std::tuple<std::string, std::string, std::string>> priced;
  for (const auto& price : *prices) {
    if (price.effective_from > now) {
      if (snapshot->prices_valid_until == 0 ||
          price.effective_from < snapshot->prices_valid_until) {
        snapshot->prices_valid_until = price.effective_from;
      }
      continue;
    }
    if (!priced.emplace(price.provider, price.model, price.unit).second) {
      continue;
    }
    if (auto set =
            snapshot->prices.set(price.provider, price.model, price.unit, price.micros_per_million);
        !set) {
      spdlog::error("price {} cannot be used: {}", price.id, set.error().message);
    }
  }

  auto all_tokens = store_.listAllTokens();
  if (!all_tokens) {
    return std::unexpected(all_tokens.error());
  }
  for (const auto& token : *all_tokens) {
    TokenEntry entry;
    entry.token_id = token.id;
    entry.agent_id = token.agent_id;
    entry.project_id = token.project_id;
    entry.hint = tokens::tokenHint(token.token_hash);
    entry.expires_at = token.expires_at;
    entry.revoked_at = token.revoked_at;
    entry.models = token.models;
    bool scopes_valid = true;
    for (const auto& text : token.scopes) {
      auto scope = tokens::parseScope(text);
      if (!scope) {
        scopes_valid = false;
        break;
      }
      entry.scopes.push_back(std::move(*scope));
    }
    if (!scopes_valid) {
      // Fail closed: a token whose scopes cannot be read must not turn into an
      // all-providers token, so it is left out and gets invalid_token.
      spdlog::error("token {} has an unreadable scope and is disabled", token.id);
      continue;
    }
    snapshot->tokens_by_hash.emplace(token.token_hash, std::move(entry));
  }
  return snapshot;
}

}  // namespace keystore::proxy
