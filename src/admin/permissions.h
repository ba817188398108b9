// The management API's permission table: for each route of AdminApi::routeTable() (method
// and path template), the least a caller needs and whether a project-limited admin key may
// call it. dispatch() checks it once, before any handler runs, so a caller without the right
// learns nothing about the objects a path names.
//
// The table is kept apart from the route table on purpose, so that other per-route tables
// (audit actions, for one) can be added beside it without editing the same lines.
//
// Immutable data and pure functions; thread-safe.
#pragma once

#include <span>
#include <string_view>

#include "common/error.h"
#include "store/records.h"

namespace keystore::admin {

// The least a caller needs, from nothing to the installation's operator.
enum class Access {
  kPublic,    // no credential at all
  kSignedIn,  // any valid credential, with or without an organization
  kViewer,    // a role in the organization: viewer, member, admin or owner
  kMember,
  kAdmin,
  kOwner,
  kOperator,  // the installation-wide operator flag, whatever the role
};

struct RoutePermission {
  std::string_view method;
  std::string_view path;  // the route's template, "{}" for one segment
  Access access = Access::kOwner;
  // A key limited to one project may call the route; lookups then find only that project.
  bool project_keys = false;
};

// Every entry, one per route of AdminApi::routeTable().
std::span<const RoutePermission> routePermissions();

// The entry for a route, or nullptr when the table lacks it (dispatch then rejects the call).
const RoutePermission* findRoutePermission(std::string_view method, std::string_view path);

// kForbidden naming what is missing when `authority` (the caller's key, or the user's role in
// the selected organization) may not call a route that needs `permission`.
Result<void> checkAccess(const RoutePermission& permission, const store::AdminKey& authority);

// The rank of an organization role, viewer 1 to owner 4, and 0 for none.
int roleRank(std::string_view role);

std::string_view accessName(Access access);

}  // namespace keystore::admin
