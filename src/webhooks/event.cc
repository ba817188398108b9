#include "webhooks/event.h"

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "common/clock.h"

namespace keystore::webhooks {

bool isEventType(std::string_view type) {
  return std::find(kEventTypes.begin(), kEventTypes.end(), type) != kEventTypes.end();
}

std::string renderEventBody(const Event& event) {
  boost::json::object body;
  body["id"] = event.id;
  body["type"] = event.type;
  body["created_at"] = formatRfc3339(event.created_at);
  body["project_id"] = event.project_id;
  body["data"] = event.data;
  return boost::json::serialize(body);
}

}  // namespace keystore::webhooks
