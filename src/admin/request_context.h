// RequestContext: what a management API route handler receives once the request is routed
// and authenticated, plus the helpers that build responses. Internal to src/admin.
//
// A RequestContext lives for one call of AdminApi::handle() and is used by one thread.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_api.h"
#include "store/records.h"

namespace keystore::admin {

struct RequestContext {
  const ApiRequest& request;
  store::AdminKey admin_key;        // empty for the health checks
  std::vector<std::string> params;  // decoded path segments captured by the route's "{}"
  std::map<std::string, std::string, std::less<>>
      query;        // decoded, the last of a repeated name wins
  int64_t now = 0;  // Unix milliseconds when the request arrived
  // The signed-in user, or the user an admin key belongs to; empty for installation keys.
  std::string user_id;
  // The session of a signed-in user; empty for admin keys.
  std::string session_id;

  // The decoded query parameter, or nullopt when absent.
  std::optional<std::string> queryValue(std::string_view name) const;
  // Who makes the request, as the audit trail records it: the signed-in user, else the admin
  // key (a key that belongs to a user is recorded as its own id, which names the user too).
  std::string actor() const { return session_id.empty() ? admin_key.id : user_id; }
  // "user" for a signed-in user, "admin_key" otherwise.
  std::string_view actorKind() const { return session_id.empty() ? "admin_key" : "user"; }
};

// A response whose body is `body` serialized.
ApiResponse jsonResponse(int status, const boost::json::value& body);
// {"data": items}, the shape of every list.
ApiResponse listResponse(boost::json::array items);

// kForbidden unless the caller's admin key is an operator key. Operator routes check this
// before reading anything, so a non-operator learns nothing about the objects named.
Result<void> requireOperator(const RequestContext& context);

// A time bound of a query (since, until): RFC 3339 text, a date ("2025-01-31", midnight UTC), or
// a duration meaning that long before `now` ("24h"). kInvalidRequest naming `name` otherwise.
Result<int64_t> parseTimeBound(std::string_view name, const std::string& text, int64_t now);

// Checks a project or agent name: 1 to 64 letters, digits, '.', '-' or '_', starting with a
// letter or digit, so it can stand in a URL path and a shell command unquoted. A name may not
// start with `id_prefix` + '_' (e.g. "prj_"), because lookups try ids before names.
Result<void> validateName(std::string_view field, std::string_view name,
                          std::string_view id_prefix);

}  // namespace keystore::admin
