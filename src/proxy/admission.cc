#include "proxy/admission.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <optional>

#include "common/encoding.h"
#include "common/hash.h"
#include "proxy/field_scan.h"
#include "proxy/header_rules.h"
#include "tokens/agent_token.h"
#include "tokens/scope.h"
#include "vault/vault.h"

namespace keystore::proxy {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

// Fields with which a client asks the server to run a method other than the request line's.
// Some servers honour them, so there a GET carrying `X-HTTP-Method-Override: POST` writes.
constexpr std::array<std::string_view, 3> kMethodOverrideFields = {
    "x-http-method-override", "x-http-method", "x-method-override"};

// Returns whether a method-override field names a method other than GET, HEAD or OPTIONS. A value
// that is not a method name counts too, because an operation that cannot be determined is a
// write for the scope check.
bool overridesToWrite(const Fields& headers) {
  for (std::string_view name : kMethodOverrideFields) {
    auto [first, last] = headers.equal_range(name);
    for (auto field = first; field != last; ++field) {
      std::string_view value = trimOptionalWhitespace(field->value());
      if (tokens::operationForMethod(value) == tokens::Operation::kWrite) {
        return true;
      }
    }
  }
  return false;
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && beast::iequals(text.substr(0, prefix.size()), prefix);
}

// Collects candidates and remembers whether two different ones were seen. A candidate found in
// a header or the query is kept as a view, because the request outlives admission. One decoded
// from a Basic header lives in a buffer freed right after, so the first such candidate is
// copied into `decoded`.
class Candidates {
 public:
  explicit Candidates(Secret& decoded) : decoded_(decoded) {}

  void add(std::string_view value) {
    if (value.empty()) {
      return;
    }
    if (found_.empty()) {
      found_ = SecretView(value);
    } else if (!found_.equals(value)) {
      ambiguous_ = true;
    }
  }
  void addCopy(std::string_view value) {
    if (found_.empty() && !value.empty()) {
      decoded_ = Secret(value.data(), value.size());
      value = decoded_.reveal();
    }
    add(value);
  }
  void markAmbiguous() { ambiguous_ = true; }

  Result<std::string_view> result() const {
    if (ambiguous_) {
      return fail(ErrorCode::kAmbiguousCredentials,
                  "the request carries more than one credential; send the agent token in "
                  "exactly one place");
    }
    if (found_.empty()) {
      return fail(ErrorCode::kMissingToken,
                  "no agent token found; send it as 'Authorization: Bearer ks_…'");
    }
    return found_.reveal();
  }

 private:
  Secret& decoded_;
  SecretView found_;
  bool ambiguous_ = false;
};

// A value that could hold two credentials (comma-joined headers) is ambiguous, not parsed.
bool hasSeparator(std::string_view value) {
  return value.find(',') != std::string_view::npos || value.find(' ') != std::string_view::npos;
}

void addBearer(const Fields& headers, Candidates& candidates) {
  forEachValue(headers, http::field::authorization, [&candidates](std::string_view value) {
    value = trimOptionalWhitespace(value);
    if (!startsWithNoCase(value, "bearer ")) {
      return;
    }
    std::string_view token = trimOptionalWhitespace(value.substr(7));
    if (hasSeparator(token)) {
      candidates.markAmbiguous();
      return;
    }
    candidates.add(token);
  });
}

void addHeader(const Fields& headers, std::string_view name, Candidates& candidates) {
  for (const auto& field : headers) {
    if (!beast::iequals(field.name_string(), name)) {
      continue;
    }
    std::string_view value = trimOptionalWhitespace(field.value());
    if (hasSeparator(value)) {
      candidates.markAmbiguous();
      continue;
    }
    candidates.add(value);
  }
}

void addBasic(const Fields& headers, bool want_password, Candidates& candidates) {
  for (const auto& field : headers) {
    if (field.name() != http::field::authorization) {
      continue;
    }
    std::string_view value = trimOptionalWhitespace(field.value());
    if (!startsWithNoCase(value, "basic ")) {
      continue;
    }
    auto decoded = base64Decode(trimOptionalWhitespace(value.substr(6)));
    if (!decoded) {
      candidates.markAmbiguous();
      continue;
    }
    Secret pair(std::move(*decoded));
    size_t colon = pair.reveal().find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    candidates.addCopy(want_password ? pair.reveal().substr(colon + 1)
                                     : pair.reveal().substr(0, colon));
  }
}

void addQuery(std::string_view query, std::string_view name, Candidates& candidates) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      candidates.add(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

Result<std::string_view> findAgentToken(const Fields& headers, std::string_view query,
                                        const catalog::ProviderSpec& provider, Secret& decoded) {
  using Kind = catalog::TokenLocation::Kind;
  Candidates candidates(decoded);
  for (const auto& location : provider.token_locations) {
    switch (location.kind) {
      case Kind::kBearer:
        addBearer(headers, candidates);
        break;
      case Kind::kHeader:
        addHeader(headers, location.name, candidates);
        break;
      case Kind::kBasicPassword:
        addBasic(headers, true, candidates);
        break;
      case Kind::kBasicUsername:
        addBasic(headers, false, candidates);
        break;
      case Kind::kQuery:
        addQuery(query, location.name, candidates);
        break;
    }
  }
  return candidates.result();
}

Result<void> admitRequest(std::string_view method, std::string_view target, const Fields& headers,
                          const catalog::Catalog& catalog, int64_t now_millis,
                          AdmissionContext& context, TokenDigestMemo* memo) {
  // A TRACE response echoes the request it received, and RFC 9110 (section 9.3.8) forbids
  // sensitive fields in a TRACE request. The upstream request would carry the injected
  // credential, so TRACE is never forwarded.
  if (method == "TRACE") {
    return fail(ErrorCode::kInvalidRequest,
                "TRACE requests are not forwarded, because the upstream would echo the injected "
                "provider credential");
  }

  // Step 1: route.
  auto route = parseProxyTarget(target);
  if (!route) {
    return std::unexpected(route.error());
  }
  context.route = std::move(*route);
  context.provider = catalog.find(context.route.provider);
  if (context.provider == nullptr) {
    return fail(ErrorCode::kUnknownProvider, "unknown provider '" + context.route.provider + "'");
  }

  // Step 2: the agent token, from exactly one place.
  auto token_text =
      findAgentToken(headers, context.route.query, *context.provider, context.decoded_agent_token);
  if (!token_text) {
    return std::unexpected(token_text.error());
  }

  // Step 3: look it up by hash.
  std::string_view presented = *token_text;
  if (!tokens::isAgentTokenShaped(presented)) {
    return fail(ErrorCode::kInvalidToken, "the agent token is not valid");
  }
  const Snapshot& snapshot = *context.snapshot;
  std::array<char, 64> token_hash;
  if (memo != nullptr && memo->token.equals(presented)) {
    token_hash = memo->digest;
  } else {
    token_hash = tokens::hashTokenDigits(presented);
    if (memo != nullptr) {
      memo->token = Secret(presented.data(), presented.size());
      memo->digest = token_hash;
    }
  }
  auto found = snapshot.tokens_by_hash.find(std::string_view(token_hash.data(), token_hash.size()));
  if (found == snapshot.tokens_by_hash.end()) {
    return fail(ErrorCode::kInvalidToken, "the agent token is not valid");
  }
  const TokenEntry& token = found->second;
  context.token = &token;
  context.agent_token = SecretView(presented);
  if (token.revoked_at != 0) {
    return fail(ErrorCode::kTokenRevoked, "agent token " + token.token_id + " was revoked");
  }
  if (token.expires_at != 0 && token.expires_at <= now_millis) {
    return fail(ErrorCode::kTokenExpired, "agent token " + token.token_id + " has expired");
  }
  auto agent = snapshot.agents.find(token.agent_id);
  if (agent == snapshot.agents.end() || agent->second.status != "active") {
    std::string status = agent == snapshot.agents.end() ? "revoked" : agent->second.status;
    return fail(ErrorCode::kAgentPaused, "agent " + token.agent_id + " is " + status);
  }

  // Step 4: scope.
  auto project = snapshot.projects.find(token.project_id);
  const ProviderEntry* setting = nullptr;
  if (project != snapshot.projects.end()) {
    auto entry = project->second.providers.find(context.provider->id);
    if (entry != project->second.providers.end()) {
      setting = &entry->second;
    }
  }
  auto operation = tokens::operationForMethod(method);
  // Only a read method needs the override check: a write is checked as a write already.
  bool overridden = operation == tokens::Operation::kRead && overridesToWrite(headers);
  if (overridden) {
    operation = tokens::Operation::kWrite;
  }
  if (!tokens::scopesAllow(token.scopes, context.provider->id, operation)) {
    return fail(ErrorCode::kScopeDenied,
                "agent token " + token.token_id + " may not " +
                    (operation == tokens::Operation::kRead ? "read" : "write") + " provider " +
                    context.provider->id +
                    (overridden ? " (the request carries a method-override field naming a "
                                  "write method)"
                                : ""));
  }

  // The provider must be enabled in a mode its tier allows. The credential itself is
  // resolved by resolveCredential(), after the rate limits and budgets.
  if (setting == nullptr || !setting->enabled) {
    return fail(
        ErrorCode::kProviderNotConfigured,
        "provider " + context.provider->id + " is not enabled in project " + token.project_id);
  }
  context.mode = setting->mode;
  context.setting = setting;
  context.project = &project->second;
  auto availability = context.provider->availability;
  if (setting->mode == "marketplace") {
    // The tier is checked again here, so a catalog change that withdrew the marketplace
    // never leaves an old setting drawing on the pool.
    if (availability == catalog::Availability::kByok) {
      return fail(ErrorCode::kProviderNotConfigured,
                  "provider " + context.provider->id + " is available only with your own key");
    }
    return {};
  }
  if (setting->mode != "byok") {
    return fail(
        ErrorCode::kProviderNotConfigured,
        "provider " + context.provider->id + " is in an unknown mode '" + setting->mode + "'");
  }
  if (availability == catalog::Availability::kMarketplace) {
    return fail(ErrorCode::kProviderNotConfigured,
                "provider " + context.provider->id + " is available only through the marketplace");
  }
  return {};
}

Result<CredentialPlaintextPtr> resolveCredential(AdmissionContext& context, int64_t now_millis) {
  // Step 6: the credential, from the source the project's mode names and no other.
  const ProviderEntry& setting = *context.setting;
  const std::string& project_id = context.token->project_id;
  if (context.mode == "marketplace") {
    context.dedicated_candidates = setting.dedicated;
    const Snapshot& snapshot = *context.snapshot;
    if (auto shared = snapshot.shared_pools.find(context.provider->id);
        shared != snapshot.shared_pools.end()) {
      context.shared_candidates = shared->second;
    }
    return nextPoolCredential(context, now_millis);
  }
  if (!setting.byok_credential) {
    return fail(
        ErrorCode::kByokKeyMissing,
        "project " + project_id + " has no key stored for provider " + context.provider->id);
  }
  context.credential_id = setting.byok_credential->id;
  if (!context.project->data_key) {
    return fail(ErrorCode::kByokKeyUnreadable, "the stored key for provider " +
                                                   context.provider->id +
                                                   " cannot be decrypted; store it again");
  }
  const CredentialEntry& credential = *setting.byok_credential;
  auto plaintext = credential.plaintext.plaintext(*context.provider, [&] {
    return vault::Vault::decryptCredential(
        *context.project->data_key,
        vault::CredentialBinding{project_id, context.provider->id, credential.id},
        credential.ciphertext);
  });
  if (!plaintext) {
    return fail(ErrorCode::kByokKeyUnreadable, "the stored key for provider " +
                                                   context.provider->id +
                                                   " cannot be decrypted; store it again");
  }
  return std::move(*plaintext);
}

Result<CredentialPlaintextPtr> nextPoolCredential(AdmissionContext& context, int64_t now_millis) {
  // The credential in use stays recorded until another one is secured, so a request that
  // finds no other keeps its own for the ledger and the circuit breaker.
  std::string in_use(context.credential_id);
  if (!in_use.empty()) {
    context.tried_credentials.push_back(in_use);
  }
  const Snapshot& snapshot = *context.snapshot;
  for (const PoolCredentials* tier : {&context.dedicated_candidates, &context.shared_candidates}) {
    // Least recently used first spreads requests over the tier's credentials.
    std::vector<std::pair<int64_t, const PoolCredentialEntry*>> order;
    order.reserve(tier->size());
    for (const auto& candidate : *tier) {
      if (std::find(context.tried_credentials.begin(), context.tried_credentials.end(),
                    candidate->id) == context.tried_credentials.end()) {
        order.emplace_back(candidate->health->lastAcquiredMs(), candidate.get());
      }
    }
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [last_used, candidate] : order) {
      if (!candidate->health->tryAcquire(now_millis, candidate->rpm_limit)) {
        continue;
      }
      std::optional<Result<CredentialPlaintextPtr>> plaintext;
      if (snapshot.pool_data_key) {
        plaintext = candidate->plaintext.plaintext(*context.provider, [&] {
          return vault::Vault::decryptCredential(
              *snapshot.pool_data_key,
              vault::CredentialBinding{candidate->project_id, context.provider->id, candidate->id},
              candidate->ciphertext);
        });
      }
      if (!plaintext || !*plaintext) {
        // A pool credential that cannot be decrypted is as good as a rejected one: it counts
        // as a failure towards its circuit, and the next candidate is tried.
        spdlog::error("marketplace credential {} of provider {} cannot be decrypted", candidate->id,
                      context.provider->id);
        candidate->health->report(marketplace::Verdict::kFailure, now_millis);
        context.tried_credentials.push_back(candidate->id);
        continue;
      }
      context.credential_id = candidate->id;
      context.health = candidate->health;
      return std::move(**plaintext);
    }
  }
  if (!in_use.empty()) {
    context.tried_credentials.erase(
        std::find(context.tried_credentials.begin(), context.tried_credentials.end(), in_use));
  }
  return fail(ErrorCode::kNoCapacity, "no marketplace credential for provider " +
                                          context.provider->id +
                                          " is available right now; retry later");
}

}  // namespace keystore::proxy
