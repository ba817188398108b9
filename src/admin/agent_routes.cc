// Routes for agents.
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

// Limits above this are surely typos, because a workload that large should not be limited.
constexpr int64_t kMaxLimit = 1'000'000'000;

Result<OptionalField<int64_t>> readLimit(const boost::json::object& body, std::string_view name) {
  Result<OptionalField<int64_t>> limit = readInteger(body, name, true);
  if (!limit) {
    return limit;
  }
  if (limit->value && (*limit->value < 1 || *limit->value > kMaxLimit)) {
    return fail(ErrorCode::kInvalidRequest, "\"" + std::string(name) +
                                                "\" must be from 1 to 1000000000, or null for "
                                                "no limit");
  }
  return limit;
}

}  // namespace

Result<ApiResponse> AdminApi::createAgent(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"name", "rpm_limit", "rpd_limit"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> name = readRequiredString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (auto valid = validateName("name", *name, "agt"); !valid) {
    return std::unexpected(valid.error());
  }
  Result<OptionalField<int64_t>> rpm_limit = readLimit(*body, "rpm_limit");
  if (!rpm_limit) {
    return std::unexpected(rpm_limit.error());
  }
  Result<OptionalField<int64_t>> rpd_limit = readLimit(*body, "rpd_limit");
  if (!rpd_limit) {
    return std::unexpected(rpd_limit.error());
  }

  store::Agent agent;
  agent.id = newId("agt");
  agent.project_id = project->id;
  agent.name = *name;
  agent.rpm_limit = rpm_limit->value;
  agent.rpd_limit = rpd_limit->value;
  agent.created_at = context.now;

  Result<store::Agent> created = store_.createAgent(agent);
  if (!created) {
    if (created.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict,
                  "an agent named " + *name + " already exists in project " + project->name);
    }
    return std::unexpected(created.error());
  }
  notifyConfigChange();
  return jsonResponse(201, renderAgent(*created));
}

Result<ApiResponse> AdminApi::listAgents(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<std::vector<store::Agent>> agents = store_.listAgents(project->id);
  if (!agents) {
    return std::unexpected(agents.error());
  }

  boost::json::array items;
  for (const store::Agent& agent : *agents) {
    items.push_back(renderAgent(agent));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::getAgent(const RequestContext& context) {
  Result<store::Agent> agent = findAgent(context, context.params[0]);
  if (!agent) {
    return std::unexpected(agent.error());
  }
  return jsonResponse(200, renderAgent(*agent));
}

Result<ApiResponse> AdminApi::patchAgent(const RequestContext& context) {
  Result<store::Agent> agent = findAgent(context, context.params[0]);
  if (!agent) {
    return std::unexpected(agent.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known = rejectUnknownMembers(*body, {"status", "name", "rpm_limit", "rpd_limit"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<OptionalField<std::string>> status = readString(*body, "status");
  if (!status) {
    return std::unexpected(status.error());
  }
  if (status->value && *status->value != "active" && *status->value != "paused" &&
      *status->value != "revoked") {
    return fail(ErrorCode::kInvalidRequest,
                "\"status\" must be \"active\", \"paused\" or \"revoked\"");
  }
  Result<OptionalField<std::string>> name = readString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (name->value) {
    if (auto valid = validateName("name", *name->value, "agt"); !valid) {
      return std::unexpected(valid.error());
    }
  }
  Result<OptionalField<int64_t>> rpm_limit = readLimit(*body, "rpm_limit");
  if (!rpm_limit) {
    return std::unexpected(rpm_limit.error());
  }
  Result<OptionalField<int64_t>> rpd_limit = readLimit(*body, "rpd_limit");
  if (!rpd_limit) {
    return std::unexpected(rpd_limit.error());
  }
  if (!status->present && !name->present && !rpm_limit->present && !rpd_limit->present) {
    return fail(ErrorCode::kInvalidRequest,
                "nothing to change; send at least one of status, name, rpm_limit and rpd_limit");
  }
  // Revocation is final so that a leaked agent cannot be quietly brought back.
  if (agent->status == "revoked" && status->value && *status->value != "revoked") {
    return fail(
        ErrorCode::kConflict,
        "agent " + agent->name + " is revoked and cannot be reactivated; create a new agent");
  }

  store::Agent updated = *agent;
  updated.status = status->value.value_or(updated.status);
  updated.name = name->value.value_or(updated.name);
  if (rpm_limit->present) {
    updated.rpm_limit = rpm_limit->value;
  }
  if (rpd_limit->present) {
    updated.rpd_limit = rpd_limit->value;
  }

  if (auto stored = store_.updateAgent(updated); !stored) {
    if (stored.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict,
                  "an agent named " + updated.name + " already exists in this project");
    }
    return std::unexpected(stored.error());
  }
  notifyConfigChange();
  return jsonResponse(200, renderAgent(updated));
}

}  // namespace keystore::admin
