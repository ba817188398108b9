#include "webhooks/publisher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "common/clock.h"
#include "common/random.h"
#include "common/thread_name.h"

namespace keystore::webhooks {

std::string jsonQuoted(std::string_view text) {
  return boost::json::serialize(boost::json::string(text));
}

bool endpointWants(const store::WebhookEndpoint& endpoint, std::string_view type) {
  if (endpoint.status != "active") {
    return false;
  }
  return endpoint.events.empty() ||
         std::find(endpoint.events.begin(), endpoint.events.end(), type) != endpoint.events.end();
}

store::WebhookDelivery makeDelivery(const Event& event, const store::WebhookEndpoint& endpoint,
                                    int64_t now) {
  store::WebhookDelivery delivery;
  delivery.id = newId("whd");
  delivery.endpoint_id = endpoint.id;
  delivery.project_id = endpoint.project_id;
  delivery.event_id = event.id;
  delivery.event_type = event.type;
  delivery.payload = renderEventBody(event);
  delivery.next_attempt_at = now;
  delivery.created_at = now;
  return delivery;
}

void stampEvent(Event& event, int64_t now) {
  if (event.id.empty()) {
    event.id = newId("evt");
  }
  if (event.created_at == 0) {
    event.created_at = now;
  }
}

Publisher::Publisher(store::Store& store, std::function<void()> on_enqueued, size_t capacity)
    : store_(store), on_enqueued_(std::move(on_enqueued)), capacity_(capacity) {}

Publisher::~Publisher() {
  stop();
}

void Publisher::start() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  if (!thread_.joinable()) {
    thread_ = std::thread([this] {
      nameThisThread("ks-events");
      run();
    });
  }
}

void Publisher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool Publisher::publish(Event event) {
  int64_t now = nowUnixMillis();
  stampEvent(event, now);
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() < capacity_) {
      queue_.push_back(std::move(event));
      ready_.notify_one();
      return true;
    }
  }
  uint64_t dropped = dropped_.fetch_add(1) + 1;
  int64_t last_log = last_drop_log_ms_.load();
  if (now - last_log >= 60'000 && last_drop_log_ms_.compare_exchange_strong(last_log, now)) {
    spdlog::warn(R"({{"msg":"webhook event queue full, event dropped","type":"{}","dropped":{}}})",
                 event.type, dropped);
  }
  return false;
}

Result<size_t> Publisher::fanOut(Event event) {
  int64_t now = nowUnixMillis();
  stampEvent(event, now);
  Result<std::vector<store::WebhookEndpoint>> endpoints =
      store_.listWebhookEndpoints(event.project_id);
  if (!endpoints) {
    return std::unexpected(endpoints.error());
  }
  std::vector<store::WebhookDelivery> deliveries;
  for (const store::WebhookEndpoint& endpoint : *endpoints) {
    if (endpointWants(endpoint, event.type)) {
      deliveries.push_back(makeDelivery(event, endpoint, now));
    }
  }
  if (auto stored = store_.enqueueWebhookDeliveries(deliveries); !stored) {
    return std::unexpected(stored.error());
  }
  return deliveries.size();
}

void Publisher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stopping, and everything queued has been stored
    }
    Event event = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();

    Result<size_t> stored = fanOut(event);
    if (!stored) {
      spdlog::error(
          R"({{"msg":"storing webhook deliveries failed","event_id":"{}","type":"{}","error":{}}})",
          event.id, event.type, jsonQuoted(stored.error().message));
    } else if (*stored > 0 && on_enqueued_) {
      on_enqueued_();
    }
    lock.lock();
  }
}

bool RateLimitSampler::shouldReport(const std::string& agent_id, const std::string& provider,
                                    int64_t now_ms) {
  std::string key = agent_id + '\n' + provider;
  std::lock_guard lock(mutex_);
  // Entries older than the interval decide nothing any more; dropping them bounds the map by
  // the pairs limited within the last minute.
  if (last_reported_.size() >= kMaxEntries) {
    std::erase_if(last_reported_,
                  [now_ms](const auto& item) { return now_ms - item.second >= kIntervalMs; });
  }
  auto [entry, inserted] = last_reported_.try_emplace(key, now_ms);
  if (inserted) {
    return true;
  }
  if (now_ms - entry->second < kIntervalMs) {
    return false;
  }
  entry->second = now_ms;
  return true;
}

}  // namespace keystore::webhooks
