// Admission: pipeline steps 1 to 6 for one proxied request, before any upstream connection.
//
// Given the request line and headers and the current snapshot, admission routes the request,
// finds the agent token in exactly one place, checks it, its agent and its scopes, and
// decrypts the credential the project uses for the provider. Every failure is an Error whose
// code is the client-facing error code. Nothing here does I/O or takes a lock, so it runs on
// the proxy's I/O threads.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"
#include "proxy/header_arena.h"
#include "proxy/route.h"
#include "proxy/snapshot.h"

namespace keystore::proxy {

// Facts admission learned about the request, filled in as far as it got, so that logs of
// rejected requests still name the token, agent and project.
//
// It contains views into itself and into the client's request, which outlives it, so it is
// neither copied nor moved.
struct AdmissionContext {
  AdmissionContext() = default;
  AdmissionContext(const AdmissionContext&) = delete;
  AdmissionContext& operator=(const AdmissionContext&) = delete;

  Route route;
  const catalog::ProviderSpec* provider = nullptr;
  const TokenEntry* token = nullptr;  // points into `snapshot`
  // The token as sent, so that no copy of it is forwarded upstream: a view into the client's
  // header or query (route.query), or into decoded_agent_token for a token sent in a Basic
  // header, which has to be decoded.
  SecretView agent_token;
  Secret decoded_agent_token;
  std::string mode;
  std::string_view credential_id;  // the id of the credential in use, inside `snapshot`
  std::shared_ptr<const Snapshot> snapshot;
  // The project and its provider setting, both inside `snapshot`, once admission found them.
  const ProjectEntry* project = nullptr;
  const ProviderEntry* setting = nullptr;
  // Marketplace mode: the credentials the request may use, the project's dedicated ones
  // first, the ids already tried, and the health of the one in use, to which the proxy
  // reports the upstream's verdict.
  PoolCredentials dedicated_candidates;
  PoolCredentials shared_candidates;
  std::vector<std::string> tried_credentials;
  std::shared_ptr<marketplace::CredentialHealth> health;
};

// The SHA-256 digest of the agent token last admitted on one client connection. An agent sends
// the same token with every request of a keep-alive connection, so the proxy hashes it once per
// connection rather than once per request.
struct TokenDigestMemo {
  Secret token;
  std::array<char, 64> digest{};
};

// Finds the agent token among the places the provider's SDK may put it. kMissingToken when
// there is none, kAmbiguousCredentials when two places (or two Authorization headers, or a
// comma-joined value) carry different candidates. The result views `headers` or `query`, or
// `decoded` when the token came from a Basic header.
Result<std::string_view> findAgentToken(const Fields& headers, std::string_view query,
                                        const catalog::ProviderSpec& provider, Secret& decoded);

// Marketplace mode: picks the next usable pool credential (dedicated before shared, the least
// recently used first, none tried before by this request, its circuit and rate window
// admitting it), decrypts it and records it in `context`. kNoCapacity when none is usable.
Result<CredentialPlaintextPtr> nextPoolCredential(AdmissionContext& context, int64_t now_millis);

// Runs steps 1 to 4 and checks that the provider is enabled in a mode its tier allows. The
// caller then applies rate limits and budgets (step 5) and calls resolveCredential.
// `memo`, when given, is the connection's digest memo, which this reads and updates.
Result<void> admitRequest(std::string_view method, std::string_view target, const Fields& headers,
                          const catalog::Catalog& catalog, int64_t now_millis,
                          AdmissionContext& context, TokenDigestMemo* memo = nullptr);

// Step 6 for an admitted request: decrypts the project's BYOK key or picks a pool credential,
// from the source the mode names and no other, and returns the plaintext to inject (a key, or
// a JSON object of fields for multi-field credentials). It is the snapshot's cached plaintext,
// shared, not a copy.
Result<CredentialPlaintextPtr> resolveCredential(AdmissionContext& context, int64_t now_millis);

}  // namespace keystore::proxy
