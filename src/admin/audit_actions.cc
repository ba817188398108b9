#include "admin/audit_actions.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <vector>

namespace keystore::admin {

namespace {

using Target = AuditAction::Target;
using ProjectSource = AuditAction::ProjectSource;

// PATCH …/providers/{}: a key (api_key or the fields of a multi-field credential) is the most
// sensitive change a request can carry, so it names the entry when present.
std::string_view chooseProviderAction(const boost::json::object& body) {
  if (body.contains("api_key") || body.contains("credential")) {
    return "credential.write";
  }
  if (body.contains("mode")) {
    return "provider.mode_switch";
  }
  if (body.contains("status")) {
    return "provider.status";
  }
  return "credential.label";
}

std::string_view chooseAgentAction(const boost::json::object& body) {
  return body.contains("status") ? "agent.status" : "agent.update";
}

constexpr std::string_view kProviderFields = "mode,status,key_fingerprint,key_label";
constexpr std::string_view kAgentFields =
    "name,status,rpm_limit,rpd_limit,tpm_limit,budget_cents,budget_warn_percent";
constexpr std::string_view kPoolFields = "provider,scope,status,key_fingerprint,rpm_limit";
constexpr std::string_view kWebhookFields = "url,description,events,status";
constexpr std::string_view kConciergeFields = "provider,status,credential_id";

constexpr AuditAction kActions[] = {
    {"POST", "/api/v1/projects", "project.create", Target::kResponseId, ProjectSource::kResponseId,
     "name"},
    {"PATCH", "/api/v1/projects/{}", "project.update", Target::kResponseId,
     ProjectSource::kResponseId,
     "name,default_rpm,default_rpd,default_tpm,budget_cents,budget_warn_percent"},

    {"PATCH", "/api/v1/projects/{}/providers/{}", "provider.update", Target::kPathParam1,
     ProjectSource::kPathProject, kProviderFields, &chooseProviderAction},
    {"PUT", "/api/v1/projects/{}/providers/{}/key", "credential.write", Target::kPathParam1,
     ProjectSource::kPathProject, kProviderFields},
    {"POST", "/api/v1/projects/{}/providers/{}/key", "credential.write", Target::kPathParam1,
     ProjectSource::kPathProject, kProviderFields},

    {"POST", "/api/v1/projects/{}/agents", "agent.create", Target::kResponseId,
     ProjectSource::kResponseProjectId, kAgentFields},
    {"PATCH", "/api/v1/agents/{}", "agent.update", Target::kResponseId,
     ProjectSource::kResponseProjectId, kAgentFields, &chooseAgentAction},
    {"DELETE", "/api/v1/agents/{}", "agent.delete", Target::kResponseId,
     ProjectSource::kResponseProjectId, "name,status"},

    {"POST", "/api/v1/agents/{}/tokens", "token.mint", Target::kResponseId,
     ProjectSource::kResponseProjectId, "agent_id,scopes,models,expires_at"},
    {"PATCH", "/api/v1/tokens/{}", "token.update", Target::kResponseId,
     ProjectSource::kResponseProjectId, "agent_id,status,expires_at"},
    {"DELETE", "/api/v1/tokens/{}", "token.revoke", Target::kResponseId,
     ProjectSource::kResponseProjectId, "agent_id,status"},
    {"POST", "/api/v1/tokens/{}/revoke", "token.revoke", Target::kResponseId,
     ProjectSource::kResponseProjectId, "agent_id,status"},
    {"POST", "/api/v1/tokens/{}/rotate", "token.rotate", Target::kResponseId,
     ProjectSource::kResponseProjectId, "agent_id,scopes,expires_at,rotated_from"},

    {"POST", "/api/v1/pools/{}/credentials", "pool.credential_add", Target::kResponseId,
     ProjectSource::kResponseProjectId, kPoolFields},
    {"POST", "/api/v1/pools/credentials/{}/disable", "pool.credential_disable", Target::kResponseId,
     ProjectSource::kResponseProjectId, kPoolFields},
    {"POST", "/api/v1/pools/credentials/{}/enable", "pool.credential_enable", Target::kResponseId,
     ProjectSource::kResponseProjectId, kPoolFields},

    {"POST", "/api/v1/prices", "price.set", Target::kResponseId, ProjectSource::kNone,
     "provider,model,unit,micros_per_million,effective_from"},

    {"POST", "/api/v1/projects/{}/concierge", "concierge.request", Target::kResponseId,
     ProjectSource::kResponseProjectId, kConciergeFields},
    {"POST", "/api/v1/concierge/{}/fulfill", "concierge.fulfill", Target::kResponseId,
     ProjectSource::kResponseProjectId, kConciergeFields},
    {"POST", "/api/v1/concierge/{}/reject", "concierge.reject", Target::kResponseId,
     ProjectSource::kResponseProjectId, kConciergeFields},

    {"POST", "/api/v1/admin-keys", "admin_key.create", Target::kResponseId, ProjectSource::kNone,
     "name,role,operator,expires_at"},
    {"DELETE", "/api/v1/admin-keys/{}", "admin_key.revoke", Target::kResponseId,
     ProjectSource::kNone, "name,role,operator"},

    {"POST", "/api/v1/projects/{}/webhooks", "webhook.create", Target::kResponseId,
     ProjectSource::kResponseProjectId, kWebhookFields},
    {"PATCH", "/api/v1/webhooks/{}", "webhook.update", Target::kResponseId,
     ProjectSource::kResponseProjectId, kWebhookFields},
    {"DELETE", "/api/v1/webhooks/{}", "webhook.delete", Target::kResponseId,
     ProjectSource::kResponseProjectId, kWebhookFields},
    {"POST", "/api/v1/webhooks/{}/rotate-secret", "webhook.rotate_secret", Target::kResponseId,
     ProjectSource::kResponseProjectId, "url"},
    {"POST", "/api/v1/webhooks/{}/test", "webhook.test", Target::kPathParam0, ProjectSource::kNone,
     "event_type,event_id,delivery_id"},

    {"POST", "/api/v1/auth/password", "auth.password_change", Target::kActor, ProjectSource::kNone,
     ""},
    {"POST", "/api/v1/organizations", "organization.create", Target::kResponseId,
     ProjectSource::kResponseOrganization, "name"},
    {"POST", "/api/v1/organizations/{}/members", "member.add", Target::kResponseUserId,
     ProjectSource::kNone, "user_id,email,role"},
    {"PATCH", "/api/v1/organizations/{}/members/{}", "member.update", Target::kPathParam1,
     ProjectSource::kNone, "user_id,email,role"},
    {"DELETE", "/api/v1/organizations/{}/members/{}", "member.remove", Target::kPathParam1,
     ProjectSource::kNone, ""},
    {"POST", "/api/v1/users/{}/operator", "user.operator", Target::kResponseId,
     ProjectSource::kNone, "email,operator"},
};

std::vector<std::string_view> splitFields(std::string_view fields) {
  std::vector<std::string_view> names;
  while (!fields.empty()) {
    size_t comma = fields.find(',');
    names.push_back(fields.substr(0, comma));
    fields = comma == std::string_view::npos ? std::string_view() : fields.substr(comma + 1);
  }
  return names;
}

}  // namespace

std::span<const AuditAction> auditActions() {
  return kActions;
}

const AuditAction* findAuditAction(std::string_view method, std::string_view path_template) {
  auto found = std::find_if(std::begin(kActions), std::end(kActions), [&](const AuditAction& a) {
    return a.method == method && a.path == path_template;
  });
  return found == std::end(kActions) ? nullptr : &*found;
}

std::string_view auditActionName(const AuditAction& action,
                                 const boost::json::object& request_body) {
  return action.choose_action != nullptr ? action.choose_action(request_body) : action.action;
}

boost::json::object auditDetails(const AuditAction& action, const boost::json::object& request_body,
                                 const boost::json::object& response_body) {
  boost::json::array request_fields;
  for (const auto& member : request_body) {
    request_fields.emplace_back(member.key());
  }
  std::sort(request_fields.begin(), request_fields.end(),
            [](const boost::json::value& a, const boost::json::value& b) {
              return a.as_string() < b.as_string();
            });

  boost::json::object details;
  details["request_fields"] = std::move(request_fields);
  for (std::string_view field : splitFields(action.detail_fields)) {
    if (const boost::json::value* value = response_body.if_contains(field)) {
      details[field] = *value;
    }
  }
  return details;
}

}  // namespace keystore::admin
