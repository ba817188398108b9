// Webhook events: the fixed list of event types and the Event value that publishers hand to
// the webhook pipeline. An event belongs to one project and fans out to that project's
// active endpoints whose filter names its type.
//
// Plain values and free functions; thread-safe.
#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace keystore::webhooks {

// Every event type a webhook endpoint can receive, in documentation order.
inline constexpr std::array<std::string_view, 12> kEventTypes = {
    "agent.created",           "agent.paused",       "agent.deleted",     "token.revoked",
    "budget.warning",          "budget.exceeded",    "rate_limited",      "provider.circuit_opened",
    "provider.circuit_closed", "credential.rotated", "concierge.updated", "webhook.test",
};

bool isEventType(std::string_view type);

struct Event {
  std::string id;  // "evt_…"; filled in by the publisher when empty
  std::string type;
  std::string project_id;
  int64_t created_at = 0;  // Unix milliseconds; filled in by the publisher when 0
  boost::json::object data;
};

// The JSON body every endpoint receives:
// {"id","type","created_at" (RFC 3339),"project_id","data"}.
std::string renderEventBody(const Event& event);

}  // namespace keystore::webhooks
