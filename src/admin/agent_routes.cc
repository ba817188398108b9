// Routes for agents.
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/limit_fields.h"
#include "admin/request_context.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

// The limit and budget members of an agent's POST or PATCH body.
struct AgentLimitFields {
  OptionalField<int64_t> rpm_limit;
  OptionalField<int64_t> rpd_limit;
  OptionalField<int64_t> tpm_limit;
  OptionalField<int64_t> budget_cents;
  OptionalField<int64_t> budget_warn_percent;

  bool anyPresent() const {
    return rpm_limit.present || rpd_limit.present || tpm_limit.present || budget_cents.present ||
           budget_warn_percent.present;
  }

  // Sets the members present in the body; null clears a value.
  void applyTo(store::Agent& agent) const {
    auto apply = [](const OptionalField<int64_t>& field, std::optional<int64_t>& target) {
      if (field.present) {
        target = field.value;
      }
    };
    apply(rpm_limit, agent.rpm_limit);
    apply(rpd_limit, agent.rpd_limit);
    apply(tpm_limit, agent.tpm_limit);
    apply(budget_cents, agent.budget_cents);
    apply(budget_warn_percent, agent.budget_warn_percent);
  }
};

Result<AgentLimitFields> readAgentLimits(const boost::json::object& body) {
  AgentLimitFields fields;
  for (auto [name, field] :
       {std::pair{"rpm_limit", &fields.rpm_limit}, std::pair{"rpd_limit", &fields.rpd_limit},
        std::pair{"tpm_limit", &fields.tpm_limit}}) {
    Result<OptionalField<int64_t>> limit = readRateLimit(body, name);
    if (!limit) {
      return std::unexpected(limit.error());
    }
    *field = *limit;
  }
  Result<OptionalField<int64_t>> budget = readBudgetCents(body, "budget_cents");
  if (!budget) {
    return std::unexpected(budget.error());
  }
  fields.budget_cents = *budget;
  Result<OptionalField<int64_t>> warn = readWarnPercent(body, "budget_warn_percent");
  if (!warn) {
    return std::unexpected(warn.error());
  }
  fields.budget_warn_percent = *warn;
  return fields;
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
  auto known = rejectUnknownMembers(*body, {"name", "rpm_limit", "rpd_limit", "tpm_limit",
                                            "budget_cents", "budget_warn_percent"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<std::string> name = readRequiredString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (auto valid = validateName("name", *name, "agt"); !valid) {
    return std::unexpected(valid.error());
  }
  Result<AgentLimitFields> limits = readAgentLimits(*body);
  if (!limits) {
    return std::unexpected(limits.error());
  }

  store::Agent agent;
  agent.id = newId("agt");
  agent.project_id = project->id;
  agent.name = *name;
  agent.created_at = context.now;
  limits->applyTo(agent);

  Result<store::Agent> created = store_.createAgent(agent);
  if (!created) {
    if (created.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict,
                  "an agent named " + *name + " already exists in project " + project->name);
    }
    return std::unexpected(created.error());
  }
  notifyConfigChange();
  publishEvent("agent.created", created->project_id,
               {{"agent_id", created->id}, {"name", created->name}});
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
  auto known = rejectUnknownMembers(*body, {"status", "name", "rpm_limit", "rpd_limit", "tpm_limit",
                                            "budget_cents", "budget_warn_percent"});
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
  Result<AgentLimitFields> limits = readAgentLimits(*body);
  if (!limits) {
    return std::unexpected(limits.error());
  }
  if (!status->present && !name->present && !limits->anyPresent()) {
    return fail(ErrorCode::kInvalidRequest,
                "nothing to change; send at least one of status, name, rpm_limit, rpd_limit, "
                "tpm_limit, budget_cents and budget_warn_percent");
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
  limits->applyTo(updated);

  if (auto stored = store_.updateAgent(updated); !stored) {
    if (stored.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict,
                  "an agent named " + updated.name + " already exists in this project");
    }
    return std::unexpected(stored.error());
  }
  notifyConfigChange();
  if (updated.status != agent->status && updated.status != "active") {
    publishEvent(updated.status == "paused" ? "agent.paused" : "agent.deleted", updated.project_id,
                 {{"agent_id", updated.id}, {"name", updated.name}});
  }
  return jsonResponse(200, renderAgent(updated));
}

Result<ApiResponse> AdminApi::deleteAgent(const RequestContext& context) {
  Result<store::Agent> agent = findAgent(context, context.params[0]);
  if (!agent) {
    return std::unexpected(agent.error());
  }
  // Deleting twice is not an error, and only the first deletion is an event.
  if (agent->status == "revoked") {
    return jsonResponse(200, renderAgent(*agent));
  }

  store::Agent revoked = *agent;
  revoked.status = "revoked";
  if (auto stored = store_.updateAgent(revoked); !stored) {
    return std::unexpected(stored.error());
  }
  notifyConfigChange();
  publishEvent("agent.deleted", revoked.project_id,
               {{"agent_id", revoked.id}, {"name", revoked.name}});
  return jsonResponse(200, renderAgent(revoked));
}

}  // namespace keystore::admin
