// The audit action of every mutating management API route: which action name an entry gets,
// which object it names as target, which project it belongs to, and which response fields it
// copies into its details. Kept apart from the route table so that other per-route tables can
// be added beside it without touching the same lines.
//
// Details are built only from the response fields listed here and from the names (never the
// values) of the request body's members, so a credential, token or key sent or returned never
// reaches the audit trail. A field listed here must never hold a secret: responses carry keys
// and tokens only as "key" (admin key creation) and "token", and neither is listed.
//
// Constant data and free functions, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <span>
#include <string>
#include <string_view>

namespace keystore::admin {

struct AuditAction {
  enum class Target {
    kResponseId,      // the created or changed object's "id" in the response body
    kPathParam0,      // the route's first "{}"
    kPathParam1,      // the route's second "{}" (the provider of a project's provider routes)
    kResponseUserId,  // the response's "user_id" (a membership)
    kActor,           // the caller (a change to one's own account)
  };
  enum class ProjectSource {
    kNone,                  // installation-wide objects: pools without a project, prices, keys
    kResponseId,            // the response is the project itself
    kResponseProjectId,     // the response's "project_id" (null means none)
    kPathProject,           // the route's first "{}", a project id or name
    kResponseOrganization,  // the response is an organization, whose trail gets the entry
  };

  std::string_view method;
  std::string_view path;  // the route table's template, "{}" for one segment
  std::string_view action;
  Target target = Target::kResponseId;
  ProjectSource project = ProjectSource::kNone;
  // Comma-separated names of response members copied into the details.
  std::string_view detail_fields;
  // When set, picks the action from the request body's member names instead of `action`, for
  // routes that make different kinds of change (a PATCH that switches a mode or stores a key).
  std::string_view (*choose_action)(const boost::json::object& request_body) = nullptr;
};

// Every audited route, one entry per mutating route of AdminApi::routeTable().
std::span<const AuditAction> auditActions();

// The entry for a route of the route table, or null when the route has none.
const AuditAction* findAuditAction(std::string_view method, std::string_view path_template);

// The action name for one request: choose_action's pick when set, else `action`.
std::string_view auditActionName(const AuditAction& action,
                                 const boost::json::object& request_body);

// {"request_fields": [names of the request body's members], <each detail field present in the
// response>: value}.
boost::json::object auditDetails(const AuditAction& action, const boost::json::object& request_body,
                                 const boost::json::object& response_body);

}  // namespace keystore::admin
