// AdminApi: the management API under /api/v1, independent of the HTTP transport.
//
// The admin listener parses each HTTP request, hands it to handle() on a worker thread (the
// API calls the blocking Store) and writes the returned response. Every route except
// /healthz, /readyz, /api/v1/openapi.json and sign-in requires a credential: an admin API
// key (`Authorization: Bearer ksa_…`), a CLI session (`Authorization: Bearer kss_…`) or the
// ks_session cookie of a browser session, which must send X-CSRF-Token on every change.
//
// Thread-safety: handle() may be called concurrently; the API holds no mutable state of its
// own beyond what the Store serializes.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accounts/login_throttle.h"
#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"
#include "store/store.h"
#include "vault/vault.h"
#include "webhooks/event.h"

namespace keystore::admin {

struct ApiRequest {
  std::string method;         // "GET", "POST", …
  std::string target;         // path and query, e.g. "/api/v1/projects?limit=10"
  std::string authorization;  // the Authorization header value, may be empty
  std::string body;
  std::string remote_address;
  std::string request_id;
  // Browser sign-in: the Cookie header (carrying ks_session), the X-CSRF-Token header, and
  // the X-Keystore-Organization header that selects the organization a user acts in.
  std::string cookie;
  std::string csrf_token;
  std::string organization;
  bool tls = false;  // the listener served this request over TLS, so cookies get Secure
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The proxy's circuit-breaker state of one pool credential, as tracked by this instance.
struct CredentialHealth {
  std::string state = "closed";  // "closed" | "open" | "half_open"
  int64_t consecutive_failures = 0;
  int64_t opened_at = 0;  // Unix milliseconds when the circuit last opened; 0 = never
};

struct AdminApiOptions {
  // Called after every change that affects the proxy (tokens, agents, keys, modes, pool
  // credentials, fulfilled concierge requests, limits, budgets, prices), so the proxy rebuilds
  // its snapshot before the change is acknowledged.
  std::function<void()> on_config_change;
  // Reports a pool credential's circuit state for GET /pools. When unset, every credential
  // reads as closed with no failures.
  std::function<CredentialHealth(const std::string& credential_id)> credential_health;
  // Session lifetime: absolute from sign-in, and idle since the last request.
  int64_t session_ttl_ms = 12 * 60 * 60 * 1000;
  int64_t session_idle_ms = 2 * 60 * 60 * 1000;
  accounts::ThrottlePolicy login_throttle;
  // Hands a webhook event to the publisher after the change it reports was stored. Must not
  // block. When unset, no events are published.
  std::function<void(webhooks::Event)> publish_event;
  // Called after the API stored a webhook delivery itself (POST /webhooks/{id}/test), so the
  // dispatcher sends it without waiting for its next poll.
  std::function<void()> on_webhook_queued;
  // Accept webhook URLs on loopback and private addresses (serve --allow-private-webhooks).
  bool allow_private_webhooks = false;
};

// One request as a route handler sees it, defined in admin/request_context.h.
struct RequestContext;
// A credential read from a request body, defined in admin/credential_input.h.
struct CredentialInput;
// A mutating route's audit action, defined in admin/audit_actions.h.
struct AuditAction;

class AdminApi {
 public:
  AdminApi(store::Store& store, const vault::Vault& vault, const catalog::Catalog& catalog,
           AdminApiOptions options);

  // Routes, authenticates and runs one request. Never throws: a failure becomes an error body
  // with the status of its code, and an internal failure is logged with the request id.
  ApiResponse handle(const ApiRequest& request);

  // One entry of the route table, for tests and documentation checks.
  struct RouteInfo {
    std::string_view method;
    std::string_view path;  // template, "{}" stands for one path segment
    bool needs_key = true;
  };
  // Every route handle() serves, in table order.
  static std::vector<RouteInfo> routeTable();

 private:
  using Handler = Result<ApiResponse> (AdminApi::*)(const RequestContext&);
  struct Route {
    std::string_view method;
    std::string_view path;  // template, "{}" stands for one path segment
    Handler handler;
    bool needs_key = true;  // false only for the health checks and the OpenAPI document
  };
  static std::span<const Route> routes();

  Result<ApiResponse> dispatch(const ApiRequest& request);
  // The caller behind a request: an admin key, or a signed-in user with the role of the
  // selected organization, in the form of an admin key.
  struct Principal {
    store::AdminKey authority;
    std::string user_id;
    std::string session_id;
    std::string csrf_token;  // the session's, empty for admin keys
    bool via_cookie = false;
  };
  // `organization_hint` selects the organization of a signed-in user when the request has
  // no X-Keystore-Organization header (the {org} of an organization's path).
  Result<Principal> authenticate(const ApiRequest& request, int64_t now,
                                 const std::string& organization_hint);
  Result<Principal> authenticateAdminKey(std::string_view key, int64_t now);
  Result<Principal> authenticateSession(const ApiRequest& request, std::string_view token,
                                        bool via_cookie, int64_t now,
                                        const std::string& organization_hint);
  // The response body of login and GET /auth/session.
  Result<boost::json::object> sessionBody(const store::User& user, const store::Session& session);
  // The organization named by {org} (id or name), if the caller acts in it; kNotFound
  // otherwise, like an organization that does not exist.
  Result<store::Organization> findCallerOrganization(const RequestContext& context,
                                                     const std::string& id_or_name);
  void notifyConfigChange();
  // Publishes a webhook event of the project through options_.publish_event, if set.
  void publishEvent(std::string type, const std::string& project_id, boost::json::object data);

  // Lookups confined to the caller's organization: an object of another organization is
  // kNotFound, exactly like one that does not exist.
  Result<store::Project> findProject(const RequestContext& context, const std::string& id_or_name);
  // Resolves {} by id or, when the query names a project (?project=P), by name in it.
  Result<store::Agent> findAgent(const RequestContext& context, const std::string& id_or_name);
  Result<store::AgentToken> findToken(const RequestContext& context, const std::string& token_id);
  // A concierge request of a project in the caller's organization; operators reach every
  // organization's.
  Result<store::ConciergeRequest> findConciergeRequest(const RequestContext& context,
                                                       const std::string& request_id);
  // A project by id in any organization, or by name in the caller's, for operator routes.
  Result<store::Project> findProjectForOperator(const RequestContext& context,
                                                const std::string& id_or_name);
  const catalog::ProviderSpec* findProvider(const std::string& provider_id) const;
  // The ?provider= filter of a list: "" when absent, kUnknownProvider when not in the catalog.
  Result<std::string> readProviderFilter(const RequestContext& context) const;

  // The project's data key, unwrapped. An empty `key_id` picks the project's newest key.
  struct DataKeyMaterial {
    std::string key_id;
    Secret key;
  };
  Result<DataKeyMaterial> projectDataKey(const std::string& project_id, std::string_view key_id);
  // The shared pool's data key, unwrapped; created on first use. Every pool credential,
  // shared or dedicated, is encrypted under it, because the operator owns them all.
  Result<DataKeyMaterial> poolDataKey(int64_t now);
  // The active BYOK credential of a provider in a project, or nullopt.
  Result<std::optional<store::Credential>> activeCredential(const std::string& project_id,
                                                            const std::string& provider);
  // Encrypts `input` as a new BYOK credential that replaces the active one.
  Result<store::Credential> storeCredential(const store::Project& project,
                                            const std::string& provider,
                                            const CredentialInput& input, const std::string& label,
                                            int64_t now);
  // Encrypts `input` under the pool data key as a credential of `scope` ("shared", or
  // "dedicated" to `project_id`). The result is not stored yet.
  Result<store::Credential> sealPoolCredential(
      const CredentialInput& input, const std::string& scope, const std::string& project_id,
      const std::string& provider, const std::string& label, int64_t rpm_limit, int64_t now);
  Result<boost::json::object> providerEntry(const store::Project& project,
                                            const catalog::ProviderSpec& spec);
  // kConflict naming the provider's availability tier when the project may not use `mode`.
  Result<void> checkModeAllowed(const store::Project& project, const catalog::ProviderSpec& spec,
                                const std::string& mode);
  boost::json::object poolEntry(const store::Credential& credential) const;

  Result<ApiResponse> healthz(const RequestContext& context);
  Result<ApiResponse> readyz(const RequestContext& context);
  // The OpenAPI document, without a key: it holds no data.
  Result<ApiResponse> openapi(const RequestContext& context);

  Result<ApiResponse> createProject(const RequestContext& context);
  Result<ApiResponse> listProjects(const RequestContext& context);
  Result<ApiResponse> getProject(const RequestContext& context);
  Result<ApiResponse> patchProject(const RequestContext& context);
  Result<ApiResponse> queryLedger(const RequestContext& context);
  Result<ApiResponse> usageReport(const RequestContext& context);
  Result<ApiResponse> getInvoice(const RequestContext& context);

  Result<ApiResponse> listCatalog(const RequestContext& context);

  Result<ApiResponse> listProviders(const RequestContext& context);
  Result<ApiResponse> getProvider(const RequestContext& context);
  Result<ApiResponse> putProviderKey(const RequestContext& context);
  Result<ApiResponse> patchProvider(const RequestContext& context);
  // PUT/POST …/key (`key_route`: api_key required, label optional) and PATCH share one path.
  Result<ApiResponse> changeProvider(const RequestContext& context, bool key_route);

  Result<ApiResponse> createAgent(const RequestContext& context);
  Result<ApiResponse> listAgents(const RequestContext& context);
  Result<ApiResponse> getAgent(const RequestContext& context);
  Result<ApiResponse> patchAgent(const RequestContext& context);

  Result<ApiResponse> createToken(const RequestContext& context);
  Result<ApiResponse> listTokens(const RequestContext& context);
  Result<ApiResponse> getToken(const RequestContext& context);
  Result<ApiResponse> revokeToken(const RequestContext& context);
  Result<ApiResponse> patchToken(const RequestContext& context);
  Result<ApiResponse> rotateToken(const RequestContext& context);

  Result<ApiResponse> addPoolCredential(const RequestContext& context);
  Result<ApiResponse> listPools(const RequestContext& context);
  Result<ApiResponse> disablePoolCredential(const RequestContext& context);
  Result<ApiResponse> enablePoolCredential(const RequestContext& context);
  Result<ApiResponse> setPoolCredentialStatus(const RequestContext& context,
                                              const std::string& status);

  Result<ApiResponse> createPrice(const RequestContext& context);
  Result<ApiResponse> listPrices(const RequestContext& context);
  Result<ApiResponse> listCurrentPrices(const RequestContext& context);

  Result<ApiResponse> createConciergeRequest(const RequestContext& context);
  Result<ApiResponse> listProjectConciergeRequests(const RequestContext& context);
  Result<ApiResponse> listConciergeRequests(const RequestContext& context);
  Result<ApiResponse> getConciergeRequest(const RequestContext& context);
  Result<ApiResponse> fulfillConciergeRequest(const RequestContext& context);
  Result<ApiResponse> rejectConciergeRequest(const RequestContext& context);

  // Sets the agent's status to revoked, like PATCH {"status":"revoked"}.
  Result<ApiResponse> deleteAgent(const RequestContext& context);

  // Webhook endpoints, in webhook_routes.cc. findWebhook confines the lookup to the caller's
  // organization like findProject.
  Result<store::WebhookEndpoint> findWebhook(const RequestContext& context,
                                             const std::string& endpoint_id);
  Result<ApiResponse> listWebhooks(const RequestContext& context);
  Result<ApiResponse> createWebhook(const RequestContext& context);
  Result<ApiResponse> getWebhook(const RequestContext& context);
  Result<ApiResponse> patchWebhook(const RequestContext& context);
  Result<ApiResponse> deleteWebhook(const RequestContext& context);
  Result<ApiResponse> rotateWebhookSecret(const RequestContext& context);
  Result<ApiResponse> listWebhookDeliveries(const RequestContext& context);
  Result<ApiResponse> testWebhook(const RequestContext& context);

  Result<ApiResponse> createAdminKey(const RequestContext& context);
  Result<ApiResponse> listAdminKeys(const RequestContext& context);
  Result<ApiResponse> revokeAdminKey(const RequestContext& context);

  Result<ApiResponse> login(const RequestContext& context);
  // Appends a sign-in event of `user_id` (auth.login, auth.login_failed, auth.logout) to the
  // audit trail of every organization the user belongs to.
  Result<void> appendSignInEntries(const RequestContext& context, const std::string& user_id,
                                   std::string_view action, const std::string& session_id);
  Result<ApiResponse> logout(const RequestContext& context);
  Result<ApiResponse> getSession(const RequestContext& context);
  Result<ApiResponse> changePassword(const RequestContext& context);
  Result<ApiResponse> listOrganizations(const RequestContext& context);
  Result<ApiResponse> createOrganization(const RequestContext& context);
  Result<ApiResponse> listMembers(const RequestContext& context);
  Result<ApiResponse> addMember(const RequestContext& context);
  Result<ApiResponse> updateMember(const RequestContext& context);
  Result<ApiResponse> removeMember(const RequestContext& context);
  Result<ApiResponse> setUserOperator(const RequestContext& context);
  // Runs a mutating route's handler and appends its audit entry in one store transaction, so
  // a change whose entry cannot be written is rolled back and fails with kInternal. Config
  // change notices are held back until the transaction has committed.
  Result<ApiResponse> runAudited(const Route& route, const AuditAction& action,
                                 const RequestContext& context);
  // Appends the entry for a successful response of an audited route.
  Result<void> appendAuditEntry(const AuditAction& action, const RequestContext& context,
                                const ApiResponse& response);
  Result<ApiResponse> listAudit(const RequestContext& context);
  Result<ApiResponse> verifyAudit(const RequestContext& context);

  store::Store& store_;
  const vault::Vault& vault_;
  const catalog::Catalog& catalog_;
  AdminApiOptions options_;
  std::unique_ptr<accounts::LoginThrottle> login_throttle_;
};

}  // namespace keystore::admin
