// Routes for the audit trail, and the writing of one entry per successful change.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "admin/admin_api.h"
#include "admin/audit_actions.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "audit/audit_log.h"

namespace keystore::admin {

namespace {

constexpr int kDefaultAuditLimit = 100;
constexpr int kMaxAuditLimit = 1000;

// The body as a JSON object, or an empty object when it is empty or not an object. Only
// member names and response fields are read from it.
boost::json::object objectOrEmpty(std::string_view body) {
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(body, error);
  if (error || !parsed.is_object()) {
    return {};
  }
  return std::move(parsed.as_object());
}

// A string member, or the decimal form of an integer member (price ids are numbers).
std::string idText(const boost::json::object& object, std::string_view name) {
  const boost::json::value* value = object.if_contains(name);
  if (value == nullptr) {
    return {};
  }
  if (value->is_string()) {
    return std::string(value->as_string());
  }
  if (value->is_int64()) {
    return std::to_string(value->as_int64());
  }
  return {};
}

Result<int64_t> parsePositive(std::string_view name, const std::string& text, int64_t max) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > max) {
    return fail(ErrorCode::kInvalidRequest, "query parameter " + std::string(name) +
                                                " must be a whole number from 1 to " +
                                                std::to_string(max));
  }
  return value;
}

boost::json::object renderAuditEntry(const store::AuditEntry& entry) {
  boost::json::object rendered{
      {"seq", entry.seq},
      {"id", entry.id},
      {"time", renderTime(entry.time)},
      {"organization_id", entry.organization_id},
      {"project_id", entry.project_id.empty() ? boost::json::value(nullptr)
                                              : boost::json::value(entry.project_id)},
      {"actor", entry.actor},
      {"actor_kind", entry.actor_kind},
      {"action", entry.action},
      {"target", entry.target},
      {"source_address", entry.source_address},
      {"request_id", entry.request_id},
      {"details", objectOrEmpty(entry.details)},
      {"prev_hash", entry.prev_hash},
      {"hash", entry.hash},
  };
  return rendered;
}

}  // namespace

Result<void> AdminApi::appendAuditEntry(const AuditAction& action, const RequestContext& context,
                                        const ApiResponse& response) {
  boost::json::object request_body = objectOrEmpty(context.request.body);
  boost::json::object response_body = objectOrEmpty(response.body);

  std::string project_ref;
  switch (action.project) {
    case AuditAction::ProjectSource::kNone:
      break;
    case AuditAction::ProjectSource::kResponseId:
      project_ref = idText(response_body, "id");
      break;
    case AuditAction::ProjectSource::kResponseProjectId:
      project_ref = idText(response_body, "project_id");
      break;
    case AuditAction::ProjectSource::kPathProject:
      project_ref = context.params.at(0);
      break;
    case AuditAction::ProjectSource::kResponseOrganization:
      break;
  }

  store::AuditEntry entry;
  entry.organization_id = action.project == AuditAction::ProjectSource::kResponseOrganization
                              ? idText(response_body, "id")
                              : context.admin_key.organization_id;
  if (!project_ref.empty()) {
    // An operator may change another organization's project (a concierge fulfilment), and
    // the entry belongs to that organization's trail.
    Result<store::Project> project = findProjectForOperator(context, project_ref);
    if (!project) {
      return std::unexpected(project.error());
    }
    entry.project_id = project->id;
    entry.organization_id = project->organization_id;
  }

  entry.time = context.now;
  entry.actor = context.actor();
  entry.actor_kind = std::string(context.actorKind());
  entry.action = std::string(auditActionName(action, request_body));
  switch (action.target) {
    case AuditAction::Target::kResponseId:
      entry.target = idText(response_body, "id");
      break;
    case AuditAction::Target::kPathParam0:
      entry.target = context.params.at(0);
      break;
    case AuditAction::Target::kPathParam1:
      entry.target = context.params.at(1);
      break;
    case AuditAction::Target::kResponseUserId:
      entry.target = idText(response_body, "user_id");
      break;
    case AuditAction::Target::kActor:
      entry.target = context.actor();
      break;
  }
  entry.source_address = context.request.remote_address;
  entry.request_id = context.request.request_id;
  entry.details = boost::json::serialize(auditDetails(action, request_body, response_body));

  Result<store::AuditEntry> appended = store_.appendAudit(entry);
  if (!appended) {
    return std::unexpected(appended.error());
  }
  return {};
}

Result<ApiResponse> AdminApi::listAudit(const RequestContext& context) {
  store::AuditQuery query;
  query.organization_id = context.admin_key.organization_id;
  query.limit = kDefaultAuditLimit;

  if (std::optional<std::string> project_ref = context.queryValue("project")) {
    Result<store::Project> project = findProject(context, *project_ref);
    if (!project) {
      return std::unexpected(project.error());
    }
    query.project_id = project->id;
  }
  for (auto [name, bound] : {std::pair{"since", &query.since}, std::pair{"until", &query.until}}) {
    if (std::optional<std::string> text = context.queryValue(name)) {
      Result<int64_t> time = parseTimeBound(name, *text, context.now);
      if (!time) {
        return std::unexpected(time.error());
      }
      *bound = *time;
    }
  }
  query.action = context.queryValue("action").value_or("");
  if (std::optional<std::string> text = context.queryValue("limit")) {
    Result<int64_t> limit = parsePositive("limit", *text, kMaxAuditLimit);
    if (!limit) {
      return std::unexpected(limit.error());
    }
    query.limit = static_cast<int>(*limit);
  }
  // The cursor is the seq of the last entry of the previous page; the next page starts below.
  if (std::optional<std::string> text = context.queryValue("cursor")) {
    Result<int64_t> cursor = parsePositive("cursor", *text, INT64_MAX);
    if (!cursor) {
      return std::unexpected(cursor.error());
    }
    query.before_seq = *cursor;
  }

  Result<std::vector<store::AuditEntry>> entries = store_.listAudit(query);
  if (!entries) {
    return std::unexpected(entries.error());
  }
  boost::json::array data;
  for (const store::AuditEntry& entry : *entries) {
    data.push_back(renderAuditEntry(entry));
  }
  boost::json::value next_cursor = nullptr;
  if (static_cast<int>(entries->size()) == query.limit) {
    next_cursor = std::to_string(entries->back().seq);
  }
  return jsonResponse(
      200, boost::json::object{{"data", std::move(data)}, {"next_cursor", std::move(next_cursor)}});
}

Result<ApiResponse> AdminApi::verifyAudit(const RequestContext& context) {
  // The chain spans every organization. Operators get the whole report. Other callers learn
  // only whether it is intact, because the entry count and the position of a break describe
  // other tenants' activity.
  Result<audit::ChainReport> report = audit::verifyStoredChain(store_);
  if (!report) {
    return std::unexpected(report.error());
  }
  if (!context.admin_key.is_operator) {
    return jsonResponse(200, boost::json::object{{"ok", report->ok}});
  }
  boost::json::object body{{"ok", report->ok}, {"entries", report->entries}};
  if (!report->ok) {
    body["first_bad_seq"] = report->first_bad_seq;
    body["problem"] = report->problem;
  }
  return jsonResponse(200, body);
}

}  // namespace keystore::admin
