// Routes for projects, their limits and budget, and their ledger.
#include <boost/json/array.hpp>
#include <map>
#include <tuple>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/limit_fields.h"
#include "admin/request_context.h"
#include "common/clock.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

constexpr int kDefaultLedgerLimit = 100;
constexpr int kMaxLedgerLimit = 1000;

// The limits of a project that has never set any.
store::ProjectLimits unsetLimits(const std::string& project_id) {
  store::ProjectLimits limits;
  limits.project_id = project_id;
  return limits;
}

Result<int> parseLimit(const std::string& text) {
  int limit = 0;
  bool digits = !text.empty() && text.size() <= 6 &&
                text.find_first_not_of("0123456789") == std::string::npos;
  if (digits) {
    limit = std::stoi(text);
  }
  if (!digits || limit < 1 || limit > kMaxLedgerLimit) {
    return fail(ErrorCode::kInvalidRequest,
                "query parameter limit must be a whole number from 1 to 1000");
  }
  return limit;
}

}  // namespace

Result<ApiResponse> AdminApi::createProject(const RequestContext& context) {
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"name"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> name = readRequiredString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (auto valid = validateName("name", *name, "prj"); !valid) {
    return std::unexpected(valid.error());
  }

  store::Project project{newId("prj"), context.admin_key.organization_id, *name, context.now};
  store::DataKey data_key{project.id, newId("dk"), vault_.masterKeyId(), {}, context.now};
  Secret key = vault::Vault::newDataKey();
  Result<std::string> wrapped = vault_.wrapDataKey(project.id, data_key.key_id, key);
  if (!wrapped) {
    return std::unexpected(wrapped.error());
  }
  data_key.master_key_id = std::string(vault::ciphertextKeyId(*wrapped));
  data_key.wrapped = std::move(*wrapped);

  Result<store::Project> created = store_.createProject(project, data_key);
  if (!created) {
    if (created.error().code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict, "a project named " + *name + " already exists");
    }
    return std::unexpected(created.error());
  }
  // The proxy's snapshot contains the data keys, so a new project is a configuration change.
  notifyConfigChange();
  return jsonResponse(201, renderProject(*created, unsetLimits(created->id)));
}

Result<ApiResponse> AdminApi::listProjects(const RequestContext& context) {
  Result<std::vector<store::Project>> projects =
      store_.listProjects(context.admin_key.organization_id);
  if (!projects) {
    return std::unexpected(projects.error());
  }
  // The store lists every organization's limits at once; only this organization's are shown.
  Result<std::vector<store::ProjectLimits>> all_limits = store_.listProjectLimits();
  if (!all_limits) {
    return std::unexpected(all_limits.error());
  }
  std::map<std::string, const store::ProjectLimits*, std::less<>> limits_by_project;
  for (const store::ProjectLimits& limits : *all_limits) {
    limits_by_project[limits.project_id] = &limits;
  }

  boost::json::array items;
  for (const store::Project& project : *projects) {
    const std::string& only_project = context.admin_key.project_id;
    if (!only_project.empty() && project.id != only_project) {
      continue;
    }
    auto limits = limits_by_project.find(project.id);
    items.push_back(renderProject(
        project, limits != limits_by_project.end() ? *limits->second : unsetLimits(project.id)));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::getProject(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<store::ProjectLimits> limits = store_.getProjectLimits(project->id);
  if (!limits) {
    return std::unexpected(limits.error());
  }
  return jsonResponse(200, renderProject(*project, *limits));
}

Result<ApiResponse> AdminApi::patchProject(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known = rejectUnknownMembers(
      *body, {"default_rpm", "default_rpd", "default_tpm", "budget_cents", "budget_warn_percent"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<store::ProjectLimits> limits = store_.getProjectLimits(project->id);
  if (!limits) {
    return std::unexpected(limits.error());
  }

  using LimitReader =
      Result<OptionalField<int64_t>> (*)(const boost::json::object&, std::string_view);
  const std::tuple<const char*, LimitReader, std::optional<int64_t>*> kMembers[] = {
      {"default_rpm", readRateLimit, &limits->default_rpm},
      {"default_rpd", readRateLimit, &limits->default_rpd},
      {"default_tpm", readRateLimit, &limits->default_tpm},
      {"budget_cents", readBudgetCents, &limits->budget_cents},
      {"budget_warn_percent", readWarnPercent, &limits->budget_warn_percent},
  };
  bool any_present = false;
  for (const auto& [name, reader, target] : kMembers) {
    Result<OptionalField<int64_t>> field = reader(*body, name);
    if (!field) {
      return std::unexpected(field.error());
    }
    if (field->present) {
      *target = field->value;
      any_present = true;
    }
  }
  if (!any_present) {
    return fail(ErrorCode::kInvalidRequest,
                "nothing to change; send at least one of default_rpm, default_rpd, default_tpm, "
                "budget_cents and budget_warn_percent");
  }

  if (auto stored = store_.updateProjectLimits(*limits); !stored) {
    return std::unexpected(stored.error());
  }
  notifyConfigChange();
  return jsonResponse(200, renderProject(*project, *limits));
}

Result<ApiResponse> AdminApi::queryLedger(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  store::LedgerQuery query;
  query.project_id = project->id;
  query.limit = kDefaultLedgerLimit;
  if (std::optional<std::string> since = context.queryValue("since")) {
    Result<int64_t> time = parseTimeBound("since", *since, context.now);
    if (!time) {
      return std::unexpected(time.error());
    }
    query.since = *time;
  }
  if (std::optional<std::string> until = context.queryValue("until")) {
    Result<int64_t> time = parseTimeBound("until", *until, context.now);
    if (!time) {
      return std::unexpected(time.error());
    }
    query.until = *time;
  }
  if (std::optional<std::string> limit = context.queryValue("limit")) {
    Result<int> parsed = parseLimit(*limit);
    if (!parsed) {
      return std::unexpected(parsed.error());
    }
    query.limit = *parsed;
  }
  if (std::optional<std::string> agent_name = context.queryValue("agent")) {
    Result<store::Agent> agent = store_.findAgent(project->id, *agent_name);
    if (!agent || agent->project_id != project->id) {
      if (!agent && agent.error().code != ErrorCode::kNotFound) {
        return std::unexpected(agent.error());
      }
      return fail(ErrorCode::kNotFound,
                  "agent " + *agent_name + " not found in project " + project->name);
    }
    query.agent_id = agent->id;
  }

  Result<std::vector<store::LedgerRow>> rows = store_.queryLedger(query);
  if (!rows) {
    return std::unexpected(rows.error());
  }
  boost::json::array items;
  for (const store::LedgerRow& row : *rows) {
    items.push_back(renderLedgerRow(row));
  }
  return listResponse(std::move(items));
}

}  // namespace keystore::admin
