#include "admin/permissions.h"

#include <string>

namespace keystore::admin {

namespace {

constexpr bool kProjectKeys = true;

// Roles follow the organization model: a viewer reads; a member also runs agents, tokens and
// concierge requests; an admin also manages projects, provider keys, modes and members;
// an owner also manages admin keys and owners. Members may also create projects. Operator
// routes need the operator flag.
constexpr RoutePermission kPermissions[] = {
    {"GET", "/healthz", Access::kPublic, kProjectKeys},
    {"GET", "/readyz", Access::kPublic, kProjectKeys},
    {"GET", "/api/v1/openapi.json", Access::kPublic, kProjectKeys},

    {"GET", "/api/v1/projects", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/projects", Access::kMember},
    {"GET", "/api/v1/projects/{}", Access::kViewer, kProjectKeys},
    {"PATCH", "/api/v1/projects/{}", Access::kAdmin, kProjectKeys},
    {"GET", "/api/v1/projects/{}/ledger", Access::kViewer, kProjectKeys},
    {"GET", "/api/v1/projects/{}/usage", Access::kViewer, kProjectKeys},
    {"GET", "/api/v1/projects/{}/invoices/{}", Access::kViewer, kProjectKeys},

    {"GET", "/api/v1/catalog", Access::kViewer, kProjectKeys},

    {"GET", "/api/v1/projects/{}/providers", Access::kViewer, kProjectKeys},
    {"GET", "/api/v1/projects/{}/providers/{}", Access::kViewer, kProjectKeys},
    {"PATCH", "/api/v1/projects/{}/providers/{}", Access::kAdmin, kProjectKeys},
    {"PUT", "/api/v1/projects/{}/providers/{}/key", Access::kAdmin, kProjectKeys},
    {"POST", "/api/v1/projects/{}/providers/{}/key", Access::kAdmin, kProjectKeys},

    {"GET", "/api/v1/projects/{}/agents", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/projects/{}/agents", Access::kMember, kProjectKeys},
    {"GET", "/api/v1/agents/{}", Access::kViewer, kProjectKeys},
    {"PATCH", "/api/v1/agents/{}", Access::kMember, kProjectKeys},
    {"DELETE", "/api/v1/agents/{}", Access::kMember, kProjectKeys},

    {"GET", "/api/v1/agents/{}/tokens", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/agents/{}/tokens", Access::kMember, kProjectKeys},
    {"GET", "/api/v1/tokens/{}", Access::kViewer, kProjectKeys},
    {"PATCH", "/api/v1/tokens/{}", Access::kMember, kProjectKeys},
    {"DELETE", "/api/v1/tokens/{}", Access::kMember, kProjectKeys},
    {"POST", "/api/v1/tokens/{}/revoke", Access::kMember, kProjectKeys},
    {"POST", "/api/v1/tokens/{}/rotate", Access::kMember, kProjectKeys},

    {"GET", "/api/v1/pools", Access::kOperator},
    {"POST", "/api/v1/pools/{}/credentials", Access::kOperator},
    {"POST", "/api/v1/pools/credentials/{}/disable", Access::kOperator},
    {"POST", "/api/v1/pools/credentials/{}/enable", Access::kOperator},

    {"GET", "/api/v1/prices", Access::kOperator},
    {"POST", "/api/v1/prices", Access::kOperator},
    {"GET", "/api/v1/prices/current", Access::kOperator},

    {"GET", "/api/v1/projects/{}/concierge", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/projects/{}/concierge", Access::kMember, kProjectKeys},
    {"GET", "/api/v1/concierge", Access::kOperator},
    {"GET", "/api/v1/concierge/{}", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/concierge/{}/fulfill", Access::kOperator},
    {"POST", "/api/v1/concierge/{}/reject", Access::kOperator},

    {"GET", "/api/v1/admin-keys", Access::kAdmin},
    {"POST", "/api/v1/admin-keys", Access::kOwner},
    {"DELETE", "/api/v1/admin-keys/{}", Access::kOwner},

    // Sign-in routes check their own credentials: login needs none, and logout clears the
    // cookie even when the session behind it has already ended.
    {"POST", "/api/v1/auth/login", Access::kPublic},
    {"POST", "/api/v1/auth/logout", Access::kPublic},
    {"GET", "/api/v1/auth/session", Access::kSignedIn},
    {"POST", "/api/v1/auth/password", Access::kSignedIn},

    {"GET", "/api/v1/organizations", Access::kSignedIn},
    {"POST", "/api/v1/organizations", Access::kSignedIn},
    {"GET", "/api/v1/organizations/{}/members", Access::kViewer},
    {"POST", "/api/v1/organizations/{}/members", Access::kAdmin},
    {"PATCH", "/api/v1/organizations/{}/members/{}", Access::kAdmin},
    {"DELETE", "/api/v1/organizations/{}/members/{}", Access::kAdmin},

    {"POST", "/api/v1/users/{}/operator", Access::kOperator},

    // Webhook endpoints carry a signing secret and receive project data, so they are managed
    // by admins; members may read them and their deliveries.
    {"GET", "/api/v1/projects/{}/webhooks", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/projects/{}/webhooks", Access::kAdmin, kProjectKeys},
    {"GET", "/api/v1/webhooks/{}", Access::kViewer, kProjectKeys},
    {"PATCH", "/api/v1/webhooks/{}", Access::kAdmin, kProjectKeys},
    {"DELETE", "/api/v1/webhooks/{}", Access::kAdmin, kProjectKeys},
    {"POST", "/api/v1/webhooks/{}/rotate-secret", Access::kAdmin, kProjectKeys},
    {"GET", "/api/v1/webhooks/{}/deliveries", Access::kViewer, kProjectKeys},
    {"POST", "/api/v1/webhooks/{}/test", Access::kAdmin, kProjectKeys},

    // The audit trail of the caller's organization; verify reports detail to operators only.
    {"GET", "/api/v1/audit", Access::kAdmin},
    {"GET", "/api/v1/audit/verify", Access::kAdmin},
};

int requiredRank(Access access) {
  switch (access) {
    case Access::kViewer:
      return roleRank("viewer");
    case Access::kMember:
      return roleRank("member");
    case Access::kAdmin:
      return roleRank("admin");
    case Access::kOwner:
      return roleRank("owner");
    default:
      return 0;
  }
}

}  // namespace

std::span<const RoutePermission> routePermissions() {
  return kPermissions;
}

const RoutePermission* findRoutePermission(std::string_view method, std::string_view path) {
  for (const RoutePermission& permission : kPermissions) {
    if (permission.method == method && permission.path == path) {
      return &permission;
    }
  }
  return nullptr;
}

int roleRank(std::string_view role) {
  if (role == "viewer") {
    return 1;
  }
  if (role == "member") {
    return 2;
  }
  if (role == "admin") {
    return 3;
  }
  if (role == "owner") {
    return 4;
  }
  return 0;
}

std::string_view accessName(Access access) {
  switch (access) {
    case Access::kPublic:
      return "public";
    case Access::kSignedIn:
      return "signed_in";
    case Access::kViewer:
      return "viewer";
    case Access::kMember:
      return "member";
    case Access::kAdmin:
      return "admin";
    case Access::kOwner:
      return "owner";
    case Access::kOperator:
      return "operator";
  }
  return "owner";
}

Result<void> checkAccess(const RoutePermission& permission, const store::AdminKey& authority) {
  const std::string who = (authority.user_id.empty() ? "admin API key " : "user ") +
                          (authority.user_id.empty() ? authority.id : authority.user_id);
  if (!authority.project_id.empty() && !permission.project_keys) {
    return fail(ErrorCode::kForbidden, who + " is limited to project " + authority.project_id +
                                           ", and this route reaches beyond one project");
  }
  if (permission.access == Access::kPublic || permission.access == Access::kSignedIn) {
    return {};
  }
  if (permission.access == Access::kOperator) {
    if (!authority.is_operator) {
      return fail(ErrorCode::kForbidden,
                  who +
                      " is not an operator; marketplace pools, prices, the concierge queue "
                      "and operator grants need an operator");
    }
    return {};
  }
  if (authority.organization_id.empty()) {
    return fail(ErrorCode::kForbidden,
                who +
                    " belongs to no organization; create one with POST /api/v1/organizations "
                    "or ask an owner to add you");
  }
  if (roleRank(authority.role) < requiredRank(permission.access)) {
    std::string needed(accessName(permission.access));
    std::string message = who + " has the " + authority.role + " role, which cannot " +
                          (authority.role == "viewer" && permission.method != "GET"
                               ? std::string("make changes")
                               : "use this route; it needs " + needed);
    return fail(ErrorCode::kForbidden, message);
  }
  return {};
}

}  // namespace keystore::admin
