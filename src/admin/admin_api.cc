#include "admin/admin_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "accounts/session_token.h"
#include "admin/audit_actions.h"
#include "admin/json_render.h"
#include "admin/pagination.h"
#include "admin/permissions.h"
#include "admin/request_context.h"
#include "admin/router.h"
#include "common/clock.h"
#include "tokens/agent_token.h"

namespace keystore::admin {

namespace {

std::string_view trimSpaces(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    return {};
  }
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

bool startsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

bool isReadMethod(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

ApiResponse errorResponse(const Error& error, std::string_view request_id) {
  return jsonResponse(httpStatus(error.code), renderError(error, request_id));
}

// Set while a mutating handler runs inside its audit transaction on this thread.
struct ConfigChangeDeferral {
  bool pending = false;
};
thread_local ConfigChangeDeferral* t_config_change_deferral = nullptr;

}  // namespace

std::optional<std::string> RequestContext::queryValue(std::string_view name) const {
  auto found = query.find(name);
  if (found == query.end()) {
    return std::nullopt;
  }
  return found->second;
}

Result<void> requireOperator(const RequestContext& context) {
  if (!context.admin_key.is_operator) {
    return fail(ErrorCode::kForbidden, "admin API key " + context.admin_key.id +
                                           " is not an operator key; marketplace pools, prices "
                                           "and the concierge queue need an operator key");
  }
  return {};
}

Result<int64_t> parseTimeBound(std::string_view name, const std::string& text, int64_t now) {
  if (std::optional<int64_t> time = parseRfc3339(text)) {
    return *time;
  }
  if (std::optional<int64_t> ago = parseDurationMillis(text)) {
    return now - *ago;
  }
  return fail(ErrorCode::kInvalidRequest,
              "query parameter " + std::string(name) +
                  " must be an RFC 3339 time such as 2025-01-31T12:00:00Z or a duration such "
                  "as 24h");
}

ApiResponse jsonResponse(int status, const boost::json::value& body) {
  ApiResponse response;
  response.status = status;
  response.body = boost::json::serialize(body);
  return response;
}

ApiResponse listResponse(boost::json::array items) {
  return jsonResponse(200, boost::json::object{{"data", std::move(items)}});
}

Result<void> validateName(std::string_view field, std::string_view name,
                          std::string_view id_prefix) {
  constexpr size_t kMaxNameLength = 64;
  auto is_alphanumeric = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };

  std::string quoted = "\"" + std::string(field) + "\"";
  if (name.empty()) {
    return fail(ErrorCode::kInvalidRequest, quoted + " must not be empty");
  }
  if (name.size() > kMaxNameLength) {
    return fail(ErrorCode::kInvalidRequest, quoted + " is longer than 64 characters");
  }
  bool valid_characters = std::all_of(name.begin(), name.end(), [&](char c) {
    return is_alphanumeric(c) || c == '.' || c == '-' || c == '_';
  });
  if (!valid_characters || !is_alphanumeric(name.front())) {
    return fail(ErrorCode::kInvalidRequest,
                quoted +
                    " may contain only letters, digits, '.', '-' and '_', and must start "
                    "with a letter or digit");
  }
  std::string reserved = std::string(id_prefix) + "_";
  if (name.starts_with(reserved)) {
    return fail(ErrorCode::kInvalidRequest,
                quoted + " must not start with \"" + reserved + "\", which marks ids");
  }
  return {};
}

AdminApi::AdminApi(store::Store& store, const vault::Vault& vault, const catalog::Catalog& catalog,
                   AdminApiOptions options)
    : store_(store),
      vault_(vault),
      catalog_(catalog),
      options_(std::move(options)),
      login_throttle_(std::make_unique<accounts::LoginThrottle>(options_.login_throttle)) {}

std::span<const AdminApi::Route> AdminApi::routes() {
  static const Route kRoutes[] = {
      {"GET", "/healthz", &AdminApi::healthz, false},
      {"GET", "/readyz", &AdminApi::readyz, false},
      {"GET", "/api/v1/openapi.json", &AdminApi::openapi, false},

      {"GET", "/api/v1/projects", &AdminApi::listProjects},
      {"POST", "/api/v1/projects", &AdminApi::createProject},
      {"GET", "/api/v1/projects/{}", &AdminApi::getProject},
      {"PATCH", "/api/v1/projects/{}", &AdminApi::patchProject},
      {"GET", "/api/v1/projects/{}/ledger", &AdminApi::queryLedger},
      {"GET", "/api/v1/projects/{}/usage", &AdminApi::usageReport},
      {"GET", "/api/v1/projects/{}/invoices/{}", &AdminApi::getInvoice},

      {"GET", "/api/v1/catalog", &AdminApi::listCatalog},

      {"GET", "/api/v1/projects/{}/providers", &AdminApi::listProviders},
      {"GET", "/api/v1/projects/{}/providers/{}", &AdminApi::getProvider},
      {"PATCH", "/api/v1/projects/{}/providers/{}", &AdminApi::patchProvider},
      {"PUT", "/api/v1/projects/{}/providers/{}/key", &AdminApi::putProviderKey},
      {"POST", "/api/v1/projects/{}/providers/{}/key", &AdminApi::putProviderKey},

      {"GET", "/api/v1/projects/{}/agents", &AdminApi::listAgents},
      {"POST", "/api/v1/projects/{}/agents", &AdminApi::createAgent},
      {"GET", "/api/v1/agents/{}", &AdminApi::getAgent},
      {"PATCH", "/api/v1/agents/{}", &AdminApi::patchAgent},

      {"GET", "/api/v1/agents/{}/tokens", &AdminApi::listTokens},
      {"POST", "/api/v1/agents/{}/tokens", &AdminApi::createToken},
      {"GET", "/api/v1/tokens/{}", &AdminApi::getToken},
      {"PATCH", "/api/v1/tokens/{}", &AdminApi::patchToken},
      {"DELETE", "/api/v1/tokens/{}", &AdminApi::revokeToken},
      {"POST", "/api/v1/tokens/{}/revoke", &AdminApi::revokeToken},
      {"POST", "/api/v1/tokens/{}/rotate", &AdminApi::rotateToken},

      {"GET", "/api/v1/pools", &AdminApi::listPools},
      {"POST", "/api/v1/pools/{}/credentials", &AdminApi::addPoolCredential},
      {"POST", "/api/v1/pools/credentials/{}/disable", &AdminApi::disablePoolCredential},
      {"POST", "/api/v1/pools/credentials/{}/enable", &AdminApi::enablePoolCredential},

      {"GET", "/api/v1/prices", &AdminApi::listPrices},
      {"POST", "/api/v1/prices", &AdminApi::createPrice},
      {"GET", "/api/v1/prices/current", &AdminApi::listCurrentPrices},

      {"GET", "/api/v1/projects/{}/concierge", &AdminApi::listProjectConciergeRequests},
      {"POST", "/api/v1/projects/{}/concierge", &AdminApi::createConciergeRequest},
      {"GET", "/api/v1/concierge", &AdminApi::listConciergeRequests},
      {"GET", "/api/v1/concierge/{}", &AdminApi::getConciergeRequest},
      {"POST", "/api/v1/concierge/{}/fulfill", &AdminApi::fulfillConciergeRequest},
      {"POST", "/api/v1/concierge/{}/reject", &AdminApi::rejectConciergeRequest},

      {"GET", "/api/v1/admin-keys", &AdminApi::listAdminKeys},
      {"POST", "/api/v1/admin-keys", &AdminApi::createAdminKey},
      {"DELETE", "/api/v1/admin-keys/{}", &AdminApi::revokeAdminKey},

      {"POST", "/api/v1/auth/login", &AdminApi::login, false},
      {"POST", "/api/v1/auth/logout", &AdminApi::logout, false},
      {"GET", "/api/v1/auth/session", &AdminApi::getSession},
      {"POST", "/api/v1/auth/password", &AdminApi::changePassword},
      {"GET", "/api/v1/organizations", &AdminApi::listOrganizations},
      {"POST", "/api/v1/organizations", &AdminApi::createOrganization},
      {"GET", "/api/v1/organizations/{}/members", &AdminApi::listMembers},
      {"POST", "/api/v1/organizations/{}/members", &AdminApi::addMember},
      {"PATCH", "/api/v1/organizations/{}/members/{}", &AdminApi::updateMember},
      {"DELETE", "/api/v1/organizations/{}/members/{}", &AdminApi::removeMember},
      {"POST", "/api/v1/users/{}/operator", &AdminApi::setUserOperator},
      {"GET", "/api/v1/audit", &AdminApi::listAudit},
      {"GET", "/api/v1/audit/verify", &AdminApi::verifyAudit},
      {"DELETE", "/api/v1/agents/{}", &AdminApi::deleteAgent},
      {"GET", "/api/v1/projects/{}/webhooks", &AdminApi::listWebhooks},
      {"POST", "/api/v1/projects/{}/webhooks", &AdminApi::createWebhook},
      {"GET", "/api/v1/webhooks/{}", &AdminApi::getWebhook},
      {"PATCH", "/api/v1/webhooks/{}", &AdminApi::patchWebhook},
      {"DELETE", "/api/v1/webhooks/{}", &AdminApi::deleteWebhook},
      {"POST", "/api/v1/webhooks/{}/rotate-secret", &AdminApi::rotateWebhookSecret},
      {"GET", "/api/v1/webhooks/{}/deliveries", &AdminApi::listWebhookDeliveries},
      {"POST", "/api/v1/webhooks/{}/test", &AdminApi::testWebhook},
  };
  return kRoutes;
}

ApiResponse AdminApi::handle(const ApiRequest& request) {
  Result<ApiResponse> response = dispatch(request);
  if (response) {
    return std::move(*response);
  }

  Error error = std::move(response.error());
  std::string path = request.target.substr(0, request.target.find('?'));
  if (error.code == ErrorCode::kInternal) {
    // Store and vault messages name tables and ids, never values, but they help operators
    // more than clients. The client gets the request id to quote instead.
    spdlog::error("admin API: {} {} failed (request {}): {}", request.method, path,
                  request.request_id, error.message);
    error.message =
        "internal error; the server log has the details under request id " + request.request_id;
  } else if (error.code == ErrorCode::kUnauthenticated || error.code == ErrorCode::kForbidden) {
    spdlog::warn("admin API: {} {} from {} rejected (request {}): {}", request.method, path,
                 request.remote_address, request.request_id, error.message);
  } else {
    spdlog::debug("admin API: {} {} failed with {} (request {}): {}", request.method, path,
                  errorCodeName(error.code), request.request_id, error.message);
  }

  ApiResponse failed = errorResponse(error, request.request_id);
  if (error.code == ErrorCode::kUnauthenticated) {
    failed.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return failed;
}

Result<ApiResponse> AdminApi::dispatch(const ApiRequest& request) {
  boost::system::result<boost::urls::url_view> target =
      boost::urls::parse_origin_form(request.target);
  if (!target) {
    return fail(ErrorCode::kInvalidRequest, "the request target is not a valid URL path");
  }

  std::vector<std::string> segments;
  for (std::string segment : target->segments()) {
    segments.push_back(std::move(segment));
  }
  // "/api/v1/projects/" names the same collection as "/api/v1/projects".
  if (segments.size() > 1 && segments.back().empty()) {
    segments.pop_back();
  }

  RouteLookup lookup = findRoute(routes(), request.method, segments);
  if (lookup.outcome == RouteLookup::Outcome::kNotFound) {
    return fail(ErrorCode::kNotFound, "API route not found: " + std::string(target->path()));
  }
  if (lookup.outcome == RouteLookup::Outcome::kMethodNotAllowed) {
    Error error{ErrorCode::kMethodNotAllowed, "method " + request.method + " is not allowed on " +
                                                  std::string(target->path()) + "; use " +
                                                  lookup.allow};
    ApiResponse response = errorResponse(error, request.request_id);
    response.headers.emplace_back("Allow", lookup.allow);
    return response;
  }

  const Route& route = routes()[lookup.index];
  RequestContext context{request, {}, std::move(lookup.params), {}, nowUnixMillis(), {}, {}};
  for (auto param : target->params()) {
    context.query[param.key] = param.value;
  }

  // A route missing from the permission table is refused, so a new route is closed until
  // someone decides who may call it.
  const RoutePermission* permission = findRoutePermission(route.method, route.path);
  if (permission == nullptr) {
    return fail(ErrorCode::kForbidden,
                "route " + std::string(route.path) + " has no entry in the permission table");
  }
  if (route.needs_key) {
    // An organization's own paths select that organization for a signed-in user.
    std::string organization_hint;
    if (route.path.starts_with("/api/v1/organizations/{}") && !context.params.empty()) {
      organization_hint = context.params[0];
    }
    Result<Principal> principal = authenticate(request, context.now, organization_hint);
    if (!principal) {
      return std::unexpected(principal.error());
    }
    if (principal->via_cookie && !isReadMethod(request.method) &&
        !accounts::csrfTokenMatches(principal->csrf_token, request.csrf_token)) {
      return fail(ErrorCode::kCsrfFailed,
                  "a change made with the session cookie needs the X-CSRF-Token header from "
                  "sign-in or GET /api/v1/auth/session");
    }
    context.admin_key = std::move(principal->authority);
    context.user_id = std::move(principal->user_id);
    context.session_id = std::move(principal->session_id);
    if (auto allowed = checkAccess(*permission, context.admin_key); !allowed) {
      return std::unexpected(allowed.error());
    }
  }
  if (isReadMethod(request.method) || !route.needs_key) {
    Result<ApiResponse> response = (this->*route.handler)(context);
    std::optional<std::string> limit = context.queryValue("limit");
    std::optional<std::string> cursor = context.queryValue("cursor");
    if (response && response->status == 200 && (limit || cursor) &&
        isPagedList(route.method, route.path)) {
      Result<std::string> page = pageList(response->body, limit, cursor);
      if (!page) {
        return std::unexpected(page.error());
      }
      response->body = std::move(*page);
    }
    return response;
  }

  const AuditAction* action = findAuditAction(route.method, route.path);
  if (action == nullptr) {
    // Fail closed: a change that cannot be recorded is not made.
    return fail(ErrorCode::kInternal,
                "route " + request.method + " " + std::string(route.path) + " has no audit action");
  }
  return runAudited(route, *action, context);
}

Result<ApiResponse> AdminApi::runAudited(const Route& route, const AuditAction& action,
                                         const RequestContext& context) {
  ConfigChangeDeferral deferral;
  t_config_change_deferral = &deferral;
  std::optional<Result<ApiResponse>> handled;
  Result<void> committed = store_.inTransaction([&]() -> Result<void> {
    handled = (this->*route.handler)(context);
    if (!*handled) {
      return std::unexpected(handled->error());
    }
    if ((*handled)->status >= 400) {
      return {};
    }
    return appendAuditEntry(action, context, **handled);
  });
  t_config_change_deferral = nullptr;

  if (!handled.has_value() || (*handled && !committed)) {
    // The handler succeeded but its entry or the commit failed, so the change was undone.
    Error error = committed ? Error{ErrorCode::kInternal, "the audit transaction did not run"}
                            : committed.error();
    return fail(
        ErrorCode::kInternal,
        "the change was rolled back because its audit entry could not be stored: " + error.message);
  }
  if (deferral.pending && committed) {
    notifyConfigChange();
  }
  return std::move(*handled);
}

Result<AdminApi::Principal> AdminApi::authenticate(const ApiRequest& request, int64_t now,
                                                   const std::string& organization_hint) {
  std::string_view header = trimSpaces(request.authorization);
  if (header.empty()) {
    std::string cookie = accounts::cookieValue(request.cookie, accounts::kSessionCookieName);
    if (!cookie.empty()) {
      return authenticateSession(request, cookie, true, now, organization_hint);
    }
    return fail(ErrorCode::kUnauthenticated,
                "missing admin API key; send the header Authorization: Bearer ksa_… or sign in");
  }
  constexpr std::string_view kScheme = "Bearer ";
  if (!startsWithIgnoringCase(header, kScheme)) {
    return fail(ErrorCode::kUnauthenticated,
                "the Authorization header must use the Bearer scheme with an admin API key");
  }

  std::string_view key = trimSpaces(header.substr(kScheme.size()));
  if (accounts::isSessionTokenShaped(key)) {
    return authenticateSession(request, key, false, now, organization_hint);
  }
  if (!tokens::isAdminKeyShaped(key)) {
    return fail(ErrorCode::kUnauthenticated,
                "invalid admin API key; admin API keys start with ksa_");
  }
  return authenticateAdminKey(key, now);
}

Result<AdminApi::Principal> AdminApi::authenticateAdminKey(std::string_view key, int64_t now) {
  Result<std::optional<store::AdminKey>> found = store_.findAdminKeyByHash(tokens::hashToken(key));
  if (!found) {
    return std::unexpected(found.error());
  }
  if (!found->has_value()) {
    return fail(ErrorCode::kUnauthenticated, "invalid admin API key");
  }

  store::AdminKey& admin_key = **found;
  if (admin_key.revoked_at != 0) {
    return fail(ErrorCode::kUnauthenticated,
                "admin API key " + admin_key.id + " has been revoked; use another key");
  }
  if (admin_key.expires_at != 0 && admin_key.expires_at <= now) {
    return fail(ErrorCode::kUnauthenticated,
                "admin API key " + admin_key.id + " has expired; use another key");
  }
  // A key of a disabled user stops working with its user.
  if (!admin_key.user_id.empty()) {
    Result<store::User> owner = store_.getUser(admin_key.user_id);
    if (!owner) {
      return std::unexpected(owner.error());
    }
    if (owner->disabled_at != 0) {
      return fail(ErrorCode::kUnauthenticated,
                  "admin API key " + admin_key.id + " belongs to a disabled user");
    }
  }
  Principal principal;
  principal.user_id = admin_key.user_id;
  principal.authority = std::move(admin_key);
  return principal;
}

Result<AdminApi::Principal> AdminApi::authenticateSession(const ApiRequest& request,
                                                          std::string_view token, bool via_cookie,
                                                          int64_t now,
                                                          const std::string& organization_hint) {
  // One message for every failure, so that a probe learns nothing about which check failed.
  auto signed_out = [] {
    return fail(ErrorCode::kUnauthenticated,
                "not signed in, or the session has ended; sign in again");
  };
  if (!accounts::isSessionTokenShaped(token)) {
    return signed_out();
  }
  Result<std::optional<store::Session>> found =
      store_.findSessionByHash(accounts::hashSessionToken(token));
  if (!found) {
    return std::unexpected(found.error());
  }
  if (!found->has_value()) {
    return signed_out();
  }
  store::Session& session = **found;
  bool idle = now - session.last_seen_at >= options_.session_idle_ms;
  if (session.revoked_at != 0 || session.expires_at <= now || idle) {
    return signed_out();
  }
  Result<store::User> user = store_.getUser(session.user_id);
  if (!user) {
    return std::unexpected(user.error());
  }
  if (user->disabled_at != 0) {
    return signed_out();
  }

  Result<std::vector<store::Membership>> memberships = store_.listUserMemberships(user->id);
  if (!memberships) {
    return std::unexpected(memberships.error());
  }
  const store::Membership* selected = nullptr;
  auto matches = [](const store::Membership& membership, const std::string& id_or_name) {
    return membership.organization_id == id_or_name || membership.organization_name == id_or_name;
  };
  if (!request.organization.empty()) {
    for (const store::Membership& membership : *memberships) {
      if (matches(membership, request.organization)) {
        selected = &membership;
      }
    }
    if (selected == nullptr) {
      return fail(ErrorCode::kForbidden, "user " + user->id +
                                             " is not a member of the organization named in "
                                             "X-Keystore-Organization");
    }
  }
  for (const store::Membership& membership : *memberships) {
    if (selected == nullptr && !organization_hint.empty() &&
        matches(membership, organization_hint)) {
      selected = &membership;
    }
  }
  if (selected == nullptr && !memberships->empty()) {
    selected = &memberships->front();
  }

  // Activity is recorded at most once a minute, which keeps writes down and is far finer
  // than any sensible idle timeout.
  constexpr int64_t kTouchIntervalMs = 60 * 1000;
  if (now - session.last_seen_at >= kTouchIntervalMs) {
    if (auto touched = store_.touchSession(session.id, now); !touched) {
      return std::unexpected(touched.error());
    }
  }

  Principal principal;
  principal.authority.id = user->id;
  principal.authority.name = user->email;
  principal.authority.user_id = user->id;
  principal.authority.is_operator = user->is_operator;
  principal.authority.expires_at = session.expires_at;
  principal.authority.created_at = session.created_at;
  principal.authority.role = selected != nullptr ? selected->role : "";
  principal.authority.organization_id = selected != nullptr ? selected->organization_id : "";
  principal.user_id = user->id;
  principal.session_id = session.id;
  principal.csrf_token = session.csrf_token;
  principal.via_cookie = via_cookie;
  return principal;
}

void AdminApi::notifyConfigChange() {
  // Inside an audited transaction the notice waits for the commit: the proxy's snapshot
  // rebuild reads the store from another thread, which would wait for this transaction, and
  // it must not see a change that may still roll back.
  if (t_config_change_deferral != nullptr) {
    t_config_change_deferral->pending = true;
    return;
  }
  if (options_.on_config_change) {
    options_.on_config_change();
  }
}

void AdminApi::publishEvent(std::string type, const std::string& project_id,
                            boost::json::object data) {
  if (!options_.publish_event) {
    return;
  }
  webhooks::Event event;
  event.type = std::move(type);
  event.project_id = project_id;
  event.data = std::move(data);
  options_.publish_event(std::move(event));
}

Result<ApiResponse> AdminApi::healthz(const RequestContext&) {
  return jsonResponse(200, boost::json::object{{"status", "ok"}});
}

Result<ApiResponse> AdminApi::readyz(const RequestContext& context) {
  // Ready means the store responds, so that an instance whose database is gone leaves the
  // load balancer's pool.
  Result<int64_t> generation = store_.configGeneration();
  if (!generation) {
    spdlog::warn("admin API: readiness check failed (request {}): {}", context.request.request_id,
                 generation.error().message);
    return jsonResponse(503, boost::json::object{{"status", "unavailable"}});
  }
  return jsonResponse(200, boost::json::object{{"status", "ok"}});
}

Result<store::Project> AdminApi::findProject(const RequestContext& context,
                                             const std::string& id_or_name) {
  Result<store::Project> project =
      store_.findProject(context.admin_key.organization_id, id_or_name);
  // A key limited to one project finds no other, exactly as if it did not exist.
  bool other_organization =
      project &&
      (project->organization_id != context.admin_key.organization_id ||
       (!context.admin_key.project_id.empty() && project->id != context.admin_key.project_id));
  if ((!project && project.error().code == ErrorCode::kNotFound) || other_organization) {
    return fail(ErrorCode::kNotFound, "project " + id_or_name + " not found");
  }
  return project;
}

Result<store::Agent> AdminApi::findAgent(const RequestContext& context,
                                         const std::string& id_or_name) {
  std::string project_id;
  if (std::optional<std::string> project_name = context.queryValue("project")) {
    Result<store::Project> project = findProject(context, *project_name);
    if (!project) {
      return std::unexpected(project.error());
    }
    project_id = project->id;
  }

  Result<store::Agent> agent = store_.findAgent(project_id, id_or_name);
  // Without a project the store searches every organization, so its kConflict ("several
  // projects have an agent of that name") would reveal other tenants' names. It is
  // reported as not found, like any other miss.
  bool searched_all = project_id.empty();
  if (!agent && agent.error().code != ErrorCode::kNotFound &&
      !(searched_all && agent.error().code == ErrorCode::kConflict)) {
    return agent;
  }
  // The agent's project must belong to the caller's organization. Anything else reads as
  // missing, so that ids of other tenants cannot be probed.
  // Without a project, only an id identifies an agent: names are unique per project only.
  bool identified =
      agent && (project_id.empty() ? agent->id == id_or_name : agent->project_id == project_id);
  if (identified) {
    Result<store::Project> owner = findProject(context, agent->project_id);
    if (owner) {
      return agent;
    }
    if (owner.error().code != ErrorCode::kNotFound) {
      return std::unexpected(owner.error());
    }
  }

  std::string hint = project_id.empty() ? "; to find an agent by name, also name its project" : "";
  return fail(ErrorCode::kNotFound, "agent " + id_or_name + " not found" + hint);
}

Result<store::AgentToken> AdminApi::findToken(const RequestContext& context,
                                              const std::string& token_id) {
  Result<store::AgentToken> token = store_.getToken(token_id);
  if (!token && token.error().code != ErrorCode::kNotFound) {
    return token;
  }
  if (token) {
    Result<store::Project> owner = findProject(context, token->project_id);
    if (owner) {
      return token;
    }
    if (owner.error().code != ErrorCode::kNotFound) {
      return std::unexpected(owner.error());
    }
  }
  return fail(ErrorCode::kNotFound, "token " + token_id + " not found");
}

Result<store::ConciergeRequest> AdminApi::findConciergeRequest(const RequestContext& context,
                                                               const std::string& request_id) {
  Result<store::ConciergeRequest> request = store_.getConciergeRequest(request_id);
  if (!request && request.error().code != ErrorCode::kNotFound) {
    return request;
  }
  if (request && context.admin_key.is_operator) {
    return request;
  }
  if (request) {
    Result<store::Project> owner = findProject(context, request->project_id);
    if (owner) {
      return request;
    }
    if (owner.error().code != ErrorCode::kNotFound) {
      return std::unexpected(owner.error());
    }
  }
  return fail(ErrorCode::kNotFound, "concierge request " + request_id + " not found");
}

Result<store::Project> AdminApi::findProjectForOperator(const RequestContext& context,
                                                        const std::string& id_or_name) {
  Result<store::Project> own = store_.findProject(context.admin_key.organization_id, id_or_name);
  if (own || own.error().code != ErrorCode::kNotFound) {
    return own;
  }

  // The store looks projects up within one organization, and an operator serves them all.
  // Only ids are tried elsewhere, because names repeat across organizations.
  Result<std::vector<store::Organization>> organizations = store_.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  for (const store::Organization& organization : *organizations) {
    if (organization.id == context.admin_key.organization_id) {
      continue;
    }
    Result<store::Project> project = store_.findProject(organization.id, id_or_name);
    if (project && project->id == id_or_name) {
      return project;
    }
    if (!project && project.error().code != ErrorCode::kNotFound) {
      return project;
    }
  }
  return fail(ErrorCode::kNotFound, "project " + id_or_name + " not found");
}

const catalog::ProviderSpec* AdminApi::findProvider(const std::string& provider_id) const {
  return catalog_.find(provider_id);
}

}  // namespace keystore::admin
