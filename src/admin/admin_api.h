// AdminApi: the management API under /api/v1, independent of the HTTP transport.
//
// The admin listener parses each HTTP request, hands it to handle() on a worker thread (the
// API calls the blocking Store) and writes the returned response. Every route except
// /healthz and /readyz requires an admin API key (`Authorization: Bearer ksa_…`).
//
// Thread-safety: handle() may be called concurrently; the API holds no mutable state of its
// own beyond what the Store serializes.
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"
#include "store/store.h"
#include "vault/vault.h"

namespace keystore::admin {

struct ApiRequest {
  std::string method;         // "GET", "POST", …
  std::string target;         // path and query, e.g. "/api/v1/projects?limit=10"
  std::string authorization;  // the Authorization header value, may be empty
  std::string body;
  std::string remote_address;
  std::string request_id;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct AdminApiOptions {
  // Called after every change that affects the proxy (tokens, agents, keys, modes), so the
  // proxy rebuilds its snapshot before the change is acknowledged.
  std::function<void()> on_config_change;
};

// One request as a route handler sees it, defined in admin/request_context.h.
struct RequestContext;

class AdminApi {
 public:
  AdminApi(store::Store& store, const vault::Vault& vault, const catalog::Catalog& catalog,
           AdminApiOptions options);

  // Routes, authenticates and runs one request. Never throws: a failure becomes an error body
  // with the status of its code, and an internal failure is logged with the request id.
  ApiResponse handle(const ApiRequest& request);

 private:
  using Handler = Result<ApiResponse> (AdminApi::*)(const RequestContext&);
  struct Route {
    std::string_view method;
    std::string_view path;  // template, "{}" stands for one path segment
    Handler handler;
    bool needs_key = true;  // false only for the health checks
  };
  static std::span<const Route> routes();

  Result<ApiResponse> dispatch(const ApiRequest& request);
  Result<store::AdminKey> authenticate(const ApiRequest& request, int64_t now);
  void notifyConfigChange();

  // Lookups confined to the caller's organization: an object of another organization is
  // kNotFound, exactly like one that does not exist.
  Result<store::Project> findProject(const RequestContext& context, const std::string& id_or_name);
  // Resolves {} by id or, when the query names a project (?project=P), by name in it.
  Result<store::Agent> findAgent(const RequestContext& context, const std::string& id_or_name);
  Result<store::AgentToken> findToken(const RequestContext& context, const std::string& token_id);
  const catalog::ProviderSpec* findProvider(const std::string& provider_id) const;

  // The project's data key, unwrapped. An empty `key_id` picks the project's newest key.
  struct DataKeyMaterial {
    std::string key_id;
    Secret key;
  };
  Result<DataKeyMaterial> projectDataKey(const std::string& project_id, std::string_view key_id);
  // The active BYOK credential of a provider in a project, or nullopt.
  Result<std::optional<store::Credential>> activeCredential(const std::string& project_id,
                                                            const std::string& provider);
  // Encrypts `api_key` as a new credential that replaces the active one.
  Result<store::Credential> storeCredential(const store::Project& project,
                                            const std::string& provider, const Secret& api_key,
                                            const std::string& label, int64_t now);
  Result<boost::json::object> providerEntry(const store::Project& project,
                                            const catalog::ProviderSpec& spec);

  Result<ApiResponse> healthz(const RequestContext& context);
  Result<ApiResponse> readyz(const RequestContext& context);

  Result<ApiResponse> createProject(const RequestContext& context);
  Result<ApiResponse> listProjects(const RequestContext& context);
  Result<ApiResponse> getProject(const RequestContext& context);
  Result<ApiResponse> queryLedger(const RequestContext& context);

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

  store::Store& store_;
  const vault::Vault& vault_;
  const catalog::Catalog& catalog_;
  AdminApiOptions options_;
};

}  // namespace keystore::admin
