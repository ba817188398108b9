// Routes for webhook endpoints and their delivery log. A signing secret appears in exactly
// two responses, the creation and the rotation, and never in a list, a read or a log line.
#include <algorithm>
#include <boost/json/array.hpp>
#include <charconv>
#include <string>
#include <vector>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/random.h"
#include "webhooks/endpoint_secret.h"
#include "webhooks/event.h"
#include "webhooks/publisher.h"
#include "webhooks/signature.h"
#include "webhooks/webhook_url.h"

namespace keystore::admin {

namespace {

constexpr size_t kMaxDescriptionLength = 256;
constexpr int kDefaultDeliveryPage = 20;
constexpr int kMaxDeliveryPage = 100;

boost::json::object renderWebhook(const store::WebhookEndpoint& endpoint) {
  boost::json::array events;
  for (const std::string& event : endpoint.events) {
    events.emplace_back(event);
  }
  return boost::json::object{
      {"id", endpoint.id},
      {"project_id", endpoint.project_id},
      {"url", endpoint.url},
      {"description", endpoint.description},
      {"events", std::move(events)},
      {"status", endpoint.status},
      {"created_at", renderTime(endpoint.created_at)},
      {"updated_at", renderTime(endpoint.updated_at)},
  };
}

boost::json::object renderDelivery(const store::WebhookDelivery& delivery) {
  auto optional_time = [](int64_t time) {
    return time == 0 ? boost::json::value(nullptr) : renderTime(time);
  };
  return boost::json::object{
      {"id", delivery.id},
      {"endpoint_id", delivery.endpoint_id},
      {"event_id", delivery.event_id},
      {"event_type", delivery.event_type},
      {"status", delivery.status},
      {"attempts", delivery.attempts},
      {"next_attempt_at",
       delivery.status == "pending" ? renderTime(delivery.next_attempt_at) : nullptr},
      {"last_attempt_at", optional_time(delivery.last_attempt_at)},
      {"last_status_code", delivery.last_status_code == 0
                               ? boost::json::value(nullptr)
                               : boost::json::value(delivery.last_status_code)},
      {"last_error", delivery.last_error},
      {"created_at", renderTime(delivery.created_at)},
      {"delivered_at", optional_time(delivery.delivered_at)},
  };
}

// The "events" member: an array of distinct known event types; absent is nullopt.
Result<std::optional<std::vector<std::string>>> readEvents(const boost::json::object& body) {
  const boost::json::value* member = body.if_contains("events");
  if (member == nullptr) {
    return std::optional<std::vector<std::string>>();
  }
  if (!member->is_array()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"events\" must be an array of event types; an empty array means every type");
  }
  std::vector<std::string> events;
  for (const boost::json::value& item : member->as_array()) {
    if (!item.is_string() || !webhooks::isEventType(item.as_string())) {
      std::string known;
      for (std::string_view type : webhooks::kEventTypes) {
        known += (known.empty() ? "" : ", ") + std::string(type);
      }
      return fail(ErrorCode::kInvalidRequest,
                  "\"events\" may contain only these event types: " + known);
    }
    std::string type(item.as_string());
    if (std::find(events.begin(), events.end(), type) == events.end()) {
      events.push_back(std::move(type));
    }
  }
  return std::optional<std::vector<std::string>>(std::move(events));
}

Result<void> validateStatus(const std::optional<std::string>& status) {
  if (status && *status != "active" && *status != "disabled") {
    return fail(ErrorCode::kInvalidRequest, "\"status\" must be \"active\" or \"disabled\"");
  }
  return {};
}

Result<void> validateDescription(const std::optional<std::string>& description) {
  if (description && description->size() > kMaxDescriptionLength) {
    return fail(ErrorCode::kInvalidRequest, "\"description\" is longer than 256 characters");
  }
  return {};
}

}  // namespace

Result<store::WebhookEndpoint> AdminApi::findWebhook(const RequestContext& context,
                                                     const std::string& endpoint_id) {
  Result<store::WebhookEndpoint> endpoint = store_.getWebhookEndpoint(endpoint_id);
  if (!endpoint && endpoint.error().code != ErrorCode::kNotFound) {
    return endpoint;
  }
  if (endpoint) {
    Result<store::Project> owner = findProject(context, endpoint->project_id);
    if (owner) {
      return endpoint;
    }
    if (owner.error().code != ErrorCode::kNotFound) {
      return std::unexpected(owner.error());
    }
  }
  return fail(ErrorCode::kNotFound, "webhook " + endpoint_id + " not found");
}

Result<ApiResponse> AdminApi::listWebhooks(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<std::vector<store::WebhookEndpoint>> endpoints = store_.listWebhookEndpoints(project->id);
  if (!endpoints) {
    return std::unexpected(endpoints.error());
  }
  boost::json::array items;
  for (const store::WebhookEndpoint& endpoint : *endpoints) {
    items.push_back(renderWebhook(endpoint));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::createWebhook(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"url", "description", "events", "status"});
      !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> url = readRequiredString(*body, "url");
  if (!url) {
    return std::unexpected(url.error());
  }
  Result<OptionalField<std::string>> description = readString(*body, "description");
  if (!description) {
    return std::unexpected(description.error());
  }
  Result<OptionalField<std::string>> status = readString(*body, "status");
  if (!status) {
    return std::unexpected(status.error());
  }
  Result<std::optional<std::vector<std::string>>> events = readEvents(*body);
  if (!events) {
    return std::unexpected(events.error());
  }
  if (auto checked = validateStatus(status->value); !checked) {
    return std::unexpected(checked.error());
  }
  if (auto checked = validateDescription(description->value); !checked) {
    return std::unexpected(checked.error());
  }
  if (auto checked = webhooks::checkWebhookUrl(*url, options_.allow_private_webhooks); !checked) {
    return std::unexpected(checked.error());
  }

  store::WebhookEndpoint endpoint;
  endpoint.id = newId("whk");
  endpoint.project_id = project->id;
  endpoint.url = *url;
  endpoint.description = description->value.value_or("");
  endpoint.events = events->value_or(std::vector<std::string>{});
  endpoint.status = status->value.value_or("active");
  endpoint.created_at = context.now;
  endpoint.updated_at = context.now;
  Secret secret = webhooks::generateSigningSecret();
  if (auto checked = webhooks::sealEndpointSecret(store_, vault_, endpoint, secret); !checked) {
    return std::unexpected(checked.error());
  }

  Result<store::WebhookEndpoint> created = store_.createWebhookEndpoint(endpoint);
  if (!created) {
    return std::unexpected(created.error());
  }
  boost::json::object rendered = renderWebhook(*created);
  rendered["secret"] = secret.reveal();
  return jsonResponse(201, rendered);
}

Result<ApiResponse> AdminApi::getWebhook(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  return jsonResponse(200, renderWebhook(*endpoint));
}

Result<ApiResponse> AdminApi::patchWebhook(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"url", "description", "events", "status"});
      !known) {
    return std::unexpected(known.error());
  }
  Result<OptionalField<std::string>> url = readString(*body, "url");
  if (!url) {
    return std::unexpected(url.error());
  }
  Result<OptionalField<std::string>> description = readString(*body, "description");
  if (!description) {
    return std::unexpected(description.error());
  }
  Result<OptionalField<std::string>> status = readString(*body, "status");
  if (!status) {
    return std::unexpected(status.error());
  }
  Result<std::optional<std::vector<std::string>>> events = readEvents(*body);
  if (!events) {
    return std::unexpected(events.error());
  }
  if (!url->present && !description->present && !status->present && !events->has_value()) {
    return fail(ErrorCode::kInvalidRequest,
                "nothing to change; send at least one of url, description, events and status");
  }
  if (auto checked = validateStatus(status->value); !checked) {
    return std::unexpected(checked.error());
  }
  if (auto checked = validateDescription(description->value); !checked) {
    return std::unexpected(checked.error());
  }
  if (url->value) {
    auto checked = webhooks::checkWebhookUrl(*url->value, options_.allow_private_webhooks);
    if (!checked) {
      return std::unexpected(checked.error());
    }
  }

  store::WebhookEndpoint updated = *endpoint;
  updated.url = url->value.value_or(updated.url);
  updated.description = description->value.value_or(updated.description);
  updated.status = status->value.value_or(updated.status);
  if (events->has_value()) {
    updated.events = **events;
  }
  updated.updated_at = context.now;
  if (auto checked = store_.updateWebhookEndpoint(updated); !checked) {
    return std::unexpected(checked.error());
  }
  return jsonResponse(200, renderWebhook(updated));
}

Result<ApiResponse> AdminApi::deleteWebhook(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  if (auto checked = store_.deleteWebhookEndpoint(endpoint->id); !checked) {
    return std::unexpected(checked.error());
  }
  return jsonResponse(200, boost::json::object{{"id", endpoint->id}, {"deleted", true}});
}

Result<ApiResponse> AdminApi::rotateWebhookSecret(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  store::WebhookEndpoint updated = *endpoint;
  Secret secret = webhooks::generateSigningSecret();
  if (auto checked = webhooks::sealEndpointSecret(store_, vault_, updated, secret); !checked) {
    return std::unexpected(checked.error());
  }
  updated.updated_at = context.now;
  if (auto checked = store_.updateWebhookEndpoint(updated); !checked) {
    return std::unexpected(checked.error());
  }

  boost::json::object rendered = renderWebhook(updated);
  rendered["secret"] = secret.reveal();
  return jsonResponse(200, rendered);
}

Result<ApiResponse> AdminApi::listWebhookDeliveries(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  int limit = kDefaultDeliveryPage;
  if (std::optional<std::string> text = context.queryValue("limit")) {
    int parsed = 0;
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), parsed);
    if (error != std::errc() || end != text->data() + text->size() || parsed < 1 ||
        parsed > kMaxDeliveryPage) {
      return fail(ErrorCode::kInvalidRequest,
                  "query parameter limit must be an integer from 1 to 100");
    }
    limit = parsed;
  }
  std::string before = context.queryValue("before").value_or("");

  // Reading one row more than the page shows whether another page follows.
  Result<std::vector<store::WebhookDelivery>> deliveries =
      store_.listWebhookDeliveries(endpoint->id, before, limit + 1);
  if (!deliveries) {
    return std::unexpected(deliveries.error());
  }
  bool more = deliveries->size() > static_cast<size_t>(limit);
  if (more) {
    deliveries->resize(static_cast<size_t>(limit));
  }
  boost::json::array items;
  for (const store::WebhookDelivery& delivery : *deliveries) {
    items.push_back(renderDelivery(delivery));
  }
  boost::json::value next_cursor = nullptr;
  if (more) {
    next_cursor = deliveries->back().id;
  }
  return jsonResponse(
      200, boost::json::object{{"data", std::move(items)}, {"next_cursor", next_cursor}});
}

Result<ApiResponse> AdminApi::testWebhook(const RequestContext& context) {
  Result<store::WebhookEndpoint> endpoint = findWebhook(context, context.params[0]);
  if (!endpoint) {
    return std::unexpected(endpoint.error());
  }
  if (endpoint->status != "active") {
    return fail(ErrorCode::kConflict,
                "webhook " + endpoint->id + " is disabled; set its status to active to test it");
  }

  // Sent to this endpoint alone, whatever its event filter, so a filter cannot hide a test.
  webhooks::Event event;
  event.type = "webhook.test";
  event.project_id = endpoint->project_id;
  event.data = boost::json::object{{"endpoint_id", endpoint->id}};
  webhooks::stampEvent(event, context.now);
  store::WebhookDelivery delivery = webhooks::makeDelivery(event, *endpoint, context.now);
  if (auto checked = store_.enqueueWebhookDeliveries({delivery}); !checked) {
    return std::unexpected(checked.error());
  }
  if (options_.on_webhook_queued) {
    options_.on_webhook_queued();
  }
  return jsonResponse(
      202, boost::json::object{
               {"delivery_id", delivery.id}, {"event_id", event.id}, {"event_type", event.type}});
}

}  // namespace keystore::admin
