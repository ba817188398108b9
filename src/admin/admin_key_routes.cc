// Routes for admin API keys of the caller's organization. Owners create and revoke keys,
// owners and admins list them, and only an operator key may create or revoke an operator key.
#include <algorithm>
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"
#include "tokens/agent_token.h"

namespace keystore::admin {

namespace {

constexpr size_t kMaxKeyNameBytes = 100;

Result<void> requireRole(const RequestContext& context,
                         std::initializer_list<std::string_view> roles, std::string_view action) {
  const std::string& role = context.admin_key.role;
  if (std::find(roles.begin(), roles.end(), role) == roles.end()) {
    return fail(ErrorCode::kForbidden, "admin API key " + context.admin_key.id + " has the " +
                                           role + " role, which cannot " + std::string(action));
  }
  return {};
}

Result<void> validateKeyName(const std::string& name) {
  if (name.empty()) {
    return fail(ErrorCode::kInvalidRequest, "\"name\" must not be empty");
  }
  if (name.size() > kMaxKeyNameBytes) {
    return fail(ErrorCode::kInvalidRequest, "\"name\" is longer than 100 bytes");
  }
  bool has_control = std::any_of(name.begin(), name.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
  if (has_control) {
    return fail(ErrorCode::kInvalidRequest, "\"name\" must not contain control characters");
  }
  // A key pasted into the name would be stored and listed in clear.
  if (name.find("ksa_") != std::string::npos || name.find("ks_") != std::string::npos) {
    return fail(ErrorCode::kInvalidRequest,
                "\"name\" must not contain \"ksa_\" or \"ks_\", which mark keys and tokens");
  }
  return {};
}

}  // namespace

Result<ApiResponse> AdminApi::createAdminKey(const RequestContext& context) {
  if (auto allowed = requireRole(context, {"owner"}, "create admin API keys"); !allowed) {
    return std::unexpected(allowed.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"name", "role", "operator", "project"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> name = readRequiredString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (auto valid = validateKeyName(*name); !valid) {
    return std::unexpected(valid.error());
  }
  Result<std::string> role = readRequiredString(*body, "role");
  if (!role) {
    return std::unexpected(role.error());
  }
  if (*role != "owner" && *role != "admin" && *role != "member" && *role != "viewer") {
    return fail(ErrorCode::kInvalidRequest,
                "\"role\" must be \"owner\", \"admin\", \"member\" or \"viewer\"");
  }
  bool is_operator = false;
  if (const boost::json::value* value = body->if_contains("operator")) {
    if (!value->is_bool()) {
      return fail(ErrorCode::kInvalidRequest, "\"operator\" must be true or false");
    }
    is_operator = value->as_bool();
  }
  if (is_operator && !context.admin_key.is_operator) {
    return fail(ErrorCode::kForbidden, "admin API key " + context.admin_key.id +
                                           " is not an operator key, so it cannot grant "
                                           "\"operator\"");
  }

  // A key may be limited to one project of the organization (id or name).
  Result<OptionalField<std::string>> project_name = readString(*body, "project", true);
  if (!project_name) {
    return std::unexpected(project_name.error());
  }
  std::string project_id;
  if (project_name->value) {
    Result<store::Project> project = findProject(context, *project_name->value);
    if (!project) {
      return std::unexpected(project.error());
    }
    project_id = project->id;
  }

  Secret key = tokens::generateAdminKey();
  store::AdminKey record;
  record.user_id = context.user_id;
  record.project_id = project_id;
  record.id = newId("ksak");
  record.key_hash = tokens::hashToken(key.reveal());
  record.name = *name;
  record.role = *role;
  record.organization_id = context.admin_key.organization_id;
  record.is_operator = is_operator;
  record.created_at = context.now;
  Result<store::AdminKey> created = store_.createAdminKey(record);
  if (!created) {
    return std::unexpected(created.error());
  }

  // The one place where the plaintext leaves the server. Only its hash is stored.
  boost::json::object rendered = renderAdminKey(*created, context.now);
  rendered["key"] = key.reveal();
  return jsonResponse(201, rendered);
}

Result<ApiResponse> AdminApi::listAdminKeys(const RequestContext& context) {
  if (auto allowed = requireRole(context, {"owner", "admin"}, "list admin API keys"); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<std::vector<store::AdminKey>> keys =
      store_.listAdminKeys(context.admin_key.organization_id);
  if (!keys) {
    return std::unexpected(keys.error());
  }

  boost::json::array items;
  for (const store::AdminKey& key : *keys) {
    items.push_back(renderAdminKey(key, context.now));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::revokeAdminKey(const RequestContext& context) {
  if (auto allowed = requireRole(context, {"owner"}, "revoke admin API keys"); !allowed) {
    return std::unexpected(allowed.error());
  }
  const std::string& key_id = context.params[0];
  Result<std::vector<store::AdminKey>> keys =
      store_.listAdminKeys(context.admin_key.organization_id);
  if (!keys) {
    return std::unexpected(keys.error());
  }
  auto found = std::find_if(keys->begin(), keys->end(),
                            [&](const store::AdminKey& key) { return key.id == key_id; });
  if (found == keys->end()) {
    return fail(ErrorCode::kNotFound, "admin API key " + key_id + " not found");
  }
  if (found->id == context.admin_key.id) {
    return fail(ErrorCode::kConflict,
                "admin API key " + key_id +
                    " is the key making this request; revoke it with another owner key, so "
                    "that the organization keeps one");
  }
  if (found->is_operator && !context.admin_key.is_operator) {
    return fail(ErrorCode::kForbidden, "admin API key " + key_id +
                                           " is an operator key; only an operator key can "
                                           "revoke it");
  }

  // Revoking twice is not an error: the key keeps its first revocation time.
  Result<store::AdminKey> revoked = store_.revokeAdminKey(key_id, context.now);
  if (!revoked) {
    return std::unexpected(revoked.error());
  }
  return jsonResponse(200, renderAdminKey(*revoked, context.now));
}

}  // namespace keystore::admin
