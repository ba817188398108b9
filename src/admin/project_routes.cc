// Routes for projects and their ledger.
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/clock.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

constexpr int kDefaultLedgerLimit = 100;
constexpr int kMaxLedgerLimit = 1000;

// A ledger bound: RFC 3339 text, or a duration meaning that long before `now` ("24h").
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
  return jsonResponse(201, renderProject(*created));
}

Result<ApiResponse> AdminApi::listProjects(const RequestContext& context) {
  Result<std::vector<store::Project>> projects =
      store_.listProjects(context.admin_key.organization_id);
  if (!projects) {
    return std::unexpected(projects.error());
  }

  boost::json::array items;
  for (const store::Project& project : *projects) {
    items.push_back(renderProject(project));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::getProject(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  return jsonResponse(200, renderProject(*project));
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
