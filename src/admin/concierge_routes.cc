// Routes for concierge requests. A project requests a concierge-tier provider, and the
// operator fulfils the request with a dedicated credential or rejects it with a reason.
#include <algorithm>
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/credential_input.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"

namespace keystore::admin {

namespace {

// The ?status= filter of a list, "" for any status.
Result<std::string> readStatusFilter(const RequestContext& context) {
  std::string status = context.queryValue("status").value_or("");
  if (!status.empty() && status != "open" && status != "fulfilled" && status != "rejected") {
    return fail(ErrorCode::kInvalidRequest,
                "query parameter status must be open, fulfilled or rejected");
  }
  return status;
}

ApiResponse requestList(const std::vector<store::ConciergeRequest>& requests) {
  boost::json::array items;
  for (const store::ConciergeRequest& request : requests) {
    items.push_back(renderConciergeRequest(request));
  }
  return listResponse(std::move(items));
}

Error notOpen(const store::ConciergeRequest& request) {
  return Error{ErrorCode::kConflict, "concierge request " + request.id + " is already " +
                                         request.status + "; only open requests can change"};
}

}  // namespace

Result<ApiResponse> AdminApi::createConciergeRequest(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"provider", "note"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> provider = readRequiredString(*body, "provider");
  if (!provider) {
    return std::unexpected(provider.error());
  }
  Result<std::string> note = readFreeText(*body, "note", false);
  if (!note) {
    return std::unexpected(note.error());
  }
  const catalog::ProviderSpec* spec = findProvider(*provider);
  if (spec == nullptr) {
    // The name comes from the body, so at most 64 bytes of it are shown.
    return fail(ErrorCode::kInvalidRequest, "\"provider\" names unknown provider " +
                                                provider->substr(0, 64) +
                                                "; GET /api/v1/catalog lists the providers");
  }
  if (spec->availability != catalog::Availability::kConcierge) {
    return fail(ErrorCode::kConflict,
                "provider " + spec->id + " has availability " +
                    std::string(catalog::availabilityName(spec->availability)) +
                    ": concierge requests are only for providers with availability concierge; "
                    "enable it with PATCH /api/v1/projects/" +
                    project->name + "/providers/" + spec->id);
  }

  Result<std::vector<store::ConciergeRequest>> open =
      store_.listConciergeRequests(project->id, "open");
  if (!open) {
    return std::unexpected(open.error());
  }
  auto same_provider = [&](const store::ConciergeRequest& request) {
    return request.provider == spec->id;
  };
  auto existing = std::find_if(open->begin(), open->end(), same_provider);
  if (existing != open->end()) {
    return fail(ErrorCode::kConflict, "project " + project->name +
                                          " already has the open concierge request " +
                                          existing->id + " for " + spec->id);
  }

  store::ConciergeRequest request;
  request.id = newId("cnc");
  request.project_id = project->id;
  request.provider = spec->id;
  request.note = *note;
  request.status = "open";
  request.created_at = context.now;
  request.updated_at = context.now;
  Result<store::ConciergeRequest> created = store_.createConciergeRequest(request);
  if (!created && created.error().code == ErrorCode::kConflict) {
    // Another request for the same provider was filed between the check and the insert.
    return fail(ErrorCode::kConflict, "project " + project->name +
                                          " already has an open concierge request for " + spec->id);
  }
  if (!created) {
    return std::unexpected(created.error());
  }
  publishEvent(
      "concierge.updated", created->project_id,
      {{"request_id", created->id}, {"provider", created->provider}, {"status", created->status}});
  return jsonResponse(201, renderConciergeRequest(*created));
}

Result<ApiResponse> AdminApi::listProjectConciergeRequests(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<std::string> status = readStatusFilter(context);
  if (!status) {
    return std::unexpected(status.error());
  }
  Result<std::vector<store::ConciergeRequest>> requests =
      store_.listConciergeRequests(project->id, *status);
  if (!requests) {
    return std::unexpected(requests.error());
  }
  return requestList(*requests);
}

Result<ApiResponse> AdminApi::listConciergeRequests(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<std::string> status = readStatusFilter(context);
  if (!status) {
    return std::unexpected(status.error());
  }
  Result<std::vector<store::ConciergeRequest>> requests = store_.listConciergeRequests("", *status);
  if (!requests) {
    return std::unexpected(requests.error());
  }
  return requestList(*requests);
}

Result<ApiResponse> AdminApi::getConciergeRequest(const RequestContext& context) {
  Result<store::ConciergeRequest> request = findConciergeRequest(context, context.params[0]);
  if (!request) {
    return std::unexpected(request.error());
  }
  return jsonResponse(200, renderConciergeRequest(*request));
}

Result<ApiResponse> AdminApi::fulfillConciergeRequest(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<store::ConciergeRequest> request = findConciergeRequest(context, context.params[0]);
  if (!request) {
    return std::unexpected(request.error());
  }
  const catalog::ProviderSpec* spec = findProvider(request->provider);
  if (spec == nullptr) {
    return fail(ErrorCode::kConflict, "concierge request " + request->id + " names provider " +
                                          request->provider +
                                          ", which the catalog no longer lists; reject it");
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known = rejectUnknownMembers(*body, {"api_key", "credential", "label", "rpm_limit"});
  if (!known) {
    return std::unexpected(known.error());
  }
  Result<std::optional<CredentialInput>> input = takeCredential(*body, *spec);
  if (!input) {
    return std::unexpected(input.error());
  }
  if (!*input) {
    return fail(ErrorCode::kInvalidRequest,
                "\"" + std::string(credentialMemberName(*spec)) + "\" is required");
  }
  Result<OptionalField<std::string>> label = readLabel(*body);
  if (!label) {
    return std::unexpected(label.error());
  }
  Result<int64_t> rpm_limit = readRpmLimit(*body);
  if (!rpm_limit) {
    return std::unexpected(rpm_limit.error());
  }
  if (request->status != "open") {
    return std::unexpected(notOpen(*request));
  }

  Result<store::Credential> credential =
      sealPoolCredential(**input, "dedicated", request->project_id, spec->id,
                         label->value.value_or(""), *rpm_limit, context.now);
  if (!credential) {
    return std::unexpected(credential.error());
  }
  // The store checks again that the request is open, in the transaction that stores the
  // credential, so two operators fulfilling at once store one credential.
  Result<store::ConciergeRequest> fulfilled =
      store_.fulfillConciergeRequest(request->id, *credential, context.now);
  if (!fulfilled && fulfilled.error().code == ErrorCode::kConflict) {
    Result<store::ConciergeRequest> current = store_.getConciergeRequest(request->id);
    return std::unexpected(current ? notOpen(*current) : fulfilled.error());
  }
  if (!fulfilled) {
    return std::unexpected(fulfilled.error());
  }

  // A project that never configured the provider can use it at once. One that did keeps its
  // choice (BYOK, or disabled) until it switches to marketplace mode itself.
  Result<std::vector<store::ProviderSetting>> settings =
      store_.listProviderSettings(request->project_id);
  if (!settings) {
    return std::unexpected(settings.error());
  }
  bool configured = std::any_of(
      settings->begin(), settings->end(),
      [&](const store::ProviderSetting& setting) { return setting.provider == spec->id; });
  if (!configured) {
    store::ProviderSetting setting{request->project_id, spec->id, "marketplace", "enabled",
                                   context.now};
    if (auto stored = store_.putProviderSetting(setting); !stored) {
      return std::unexpected(stored.error());
    }
  }
  notifyConfigChange();
  publishEvent("concierge.updated", fulfilled->project_id,
               {{"request_id", fulfilled->id},
                {"provider", fulfilled->provider},
                {"status", fulfilled->status}});
  return jsonResponse(200, renderConciergeRequest(*fulfilled));
}

Result<ApiResponse> AdminApi::rejectConciergeRequest(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<store::ConciergeRequest> request = findConciergeRequest(context, context.params[0]);
  if (!request) {
    return std::unexpected(request.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"reason"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> reason = readFreeText(*body, "reason", true);
  if (!reason) {
    return std::unexpected(reason.error());
  }
  if (request->status != "open") {
    return std::unexpected(notOpen(*request));
  }

  Result<store::ConciergeRequest> rejected =
      store_.rejectConciergeRequest(request->id, *reason, context.now);
  if (!rejected && rejected.error().code == ErrorCode::kConflict) {
    Result<store::ConciergeRequest> current = store_.getConciergeRequest(request->id);
    return std::unexpected(current ? notOpen(*current) : rejected.error());
  }
  if (!rejected) {
    return std::unexpected(rejected.error());
  }
  publishEvent("concierge.updated", rejected->project_id,
               {{"request_id", rejected->id},
                {"provider", rejected->provider},
                {"status", rejected->status}});
  return jsonResponse(200, renderConciergeRequest(*rejected));
}

}  // namespace keystore::admin
