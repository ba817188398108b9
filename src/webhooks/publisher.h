// Publisher: turns events into stored webhook deliveries, one per matching active endpoint.
//
// publish() does no I/O and holds a mutex only to append to a bounded in-memory queue, so
// the proxy's I/O threads may call it. A background thread drains the
// queue, looks up the project's endpoints and inserts the deliveries, then calls
// `on_enqueued` so the dispatcher sends them without waiting for its next poll. When the
// queue is full the event is dropped, logged (at most once a minute) and counted. Events
// still queued when the process dies are lost; deliveries already stored are not.
//
// Thread-safety: publish() and dropped() may be called from any thread. start() and stop()
// are called from the owning thread; stop() inserts what is still queued before it returns.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "store/store.h"
#include "webhooks/event.h"

namespace keystore::webhooks {

// `text` as a JSON string literal, quotes included, for structured log lines.
std::string jsonQuoted(std::string_view text);

// Whether `endpoint` should receive events of `type`: active, and its filter is empty or
// names the type.
bool endpointWants(const store::WebhookEndpoint& endpoint, std::string_view type);

// The pending delivery of `event` (id and created_at already set) to `endpoint`, due `now`.
store::WebhookDelivery makeDelivery(const Event& event, const store::WebhookEndpoint& endpoint,
                                    int64_t now);

// Fills a missing event id ("evt_…") and creation time.
void stampEvent(Event& event, int64_t now);

class Publisher {
 public:
  static constexpr size_t kDefaultCapacity = 10'000;

  Publisher(store::Store& store, std::function<void()> on_enqueued,
            size_t capacity = kDefaultCapacity);
  ~Publisher();

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void start();
  void stop();

  // Queues the event; false when the queue was full and the event was dropped.
  bool publish(Event event);
  uint64_t dropped() const { return dropped_.load(); }

  // Stores the deliveries of one event right away, on the calling thread.
  Result<size_t> fanOut(Event event);

 private:
  void run();

  store::Store& store_;
  std::function<void()> on_enqueued_;
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<int64_t> last_drop_log_ms_{0};
};

// Reports whether a rate_limited event should be published for an agent and provider: at
// most one per pair per minute, so a client hammering a limit cannot flood the endpoints.
// Thread-safe.
class RateLimitSampler {
 public:
  bool shouldReport(const std::string& agent_id, const std::string& provider, int64_t now_ms);

 private:
  static constexpr int64_t kIntervalMs = 60'000;
  static constexpr size_t kMaxEntries = 4096;
  std::mutex mutex_;
  std::unordered_map<std::string, int64_t> last_reported_;
};

}  // namespace keystore::webhooks
