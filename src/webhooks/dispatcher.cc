#include "webhooks/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "common/clock.h"
#include "common/thread_name.h"
#include "webhooks/endpoint_secret.h"
#include "webhooks/publisher.h"
#include "webhooks/signature.h"
#include "webhooks/webhook_url.h"

namespace keystore::webhooks {

namespace {

// Added to the send timeout, so a live sender normally finishes inside its lease.
// NOTE: name resolution runs before the send deadline starts, so a DNS lookup that hangs
// past the margin can let another instance send the same attempt again; the late result is
// then discarded (finishWebhookAttempt reports kConflict).
constexpr int64_t kLeaseMarginMs = 30'000;

double randomJitter() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

store::WebhookAttemptResult failedNow(const store::WebhookDelivery& delivery, int64_t now,
                                      std::string error) {
  return store::WebhookAttemptResult{.delivery_id = delivery.id,
                                     .attempt = delivery.attempts,
                                     .status = "failed",
                                     .status_code = 0,
                                     .error = std::move(error),
                                     .next_attempt_at = 0,
                                     .finished_at = now};
}

}  // namespace

Dispatcher::Dispatcher(store::Store& store, const vault::Vault& vault, DispatcherOptions options)
    : store_(store), vault_(vault), options_(std::move(options)), sender_(options_.sender) {}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::start() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  for (int i = static_cast<int>(threads_.size()); i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this, i] {
      nameThisThread("ks-webhook-" + std::to_string(i));
      run();
    });
  }
}

void Dispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
  for (std::thread& thread : threads_) {
    thread.join();
  }
  threads_.clear();
}

void Dispatcher::wake() {
  {
    std::lock_guard lock(mutex_);
    ++wake_count_;
  }
  wakeup_.notify_all();
}

void Dispatcher::run() {
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        return;
      }
      seen = wake_count_;
    }

    Result<bool> worked = runOnce();
    if (!worked) {
      spdlog::error(R"({{"msg":"webhook dispatch failed","error":{}}})",
                    jsonQuoted(worked.error().message));
    }
    if (worked && *worked) {
      continue;  // more may be due
    }

    std::unique_lock lock(mutex_);
    auto wait = options_.poll_interval;
    if (next_retry_ms_ != 0) {
      int64_t until_retry = next_retry_ms_ - nowUnixMillis();
      if (until_retry <= 0) {
        next_retry_ms_ = 0;
        continue;
      }
      wait = std::min(wait, std::chrono::milliseconds(until_retry));
    }
    wakeup_.wait_for(lock, wait, [this, seen] { return stopping_ || wake_count_ != seen; });
  }
}

Result<bool> Dispatcher::runOnce() {
  int64_t now = nowUnixMillis();
  int64_t lease_ms = options_.sender.timeout.count() + kLeaseMarginMs;
  Result<std::optional<store::WebhookDelivery>> claimed =
      store_.claimWebhookDelivery(now, lease_ms);
  if (!claimed) {
    return std::unexpected(claimed.error());
  }
  if (!claimed->has_value()) {
    return false;
  }

  const store::WebhookDelivery& delivery = **claimed;
  store::WebhookAttemptResult result = attempt(delivery, now);
  if (result.status == "delivered") {
    spdlog::info(
        R"({{"msg":"webhook delivered","delivery_id":"{}","endpoint_id":"{}","event_type":"{}","attempt":{},"status":{}}})",
        delivery.id, delivery.endpoint_id, delivery.event_type, delivery.attempts,
        result.status_code);
  } else {
    spdlog::warn(
        R"({{"msg":"webhook attempt failed","delivery_id":"{}","endpoint_id":"{}","event_type":"{}","attempt":{},"status":{},"error":{},"next":"{}"}})",
        delivery.id, delivery.endpoint_id, delivery.event_type, delivery.attempts,
        result.status_code, jsonQuoted(result.error),
        result.status == "pending" ? formatRfc3339(result.next_attempt_at) : "none, failed");
  }

  if (result.status == "pending") {
    std::lock_guard lock(mutex_);
    if (next_retry_ms_ == 0 || result.next_attempt_at < next_retry_ms_) {
      next_retry_ms_ = result.next_attempt_at;
    }
  }
  auto finished = store_.finishWebhookAttempt(result);
  if (!finished && finished.error().code != ErrorCode::kConflict) {
    return std::unexpected(finished.error());
  }
  return true;
}

store::WebhookAttemptResult Dispatcher::attempt(const store::WebhookDelivery& delivery,
                                                int64_t now) {
  Result<store::WebhookEndpoint> endpoint = store_.getWebhookEndpoint(delivery.endpoint_id);
  if (!endpoint) {
    return failedNow(delivery, now, "endpoint unavailable: " + endpoint.error().message);
  }
  if (endpoint->status != "active") {
    return failedNow(delivery, now, "endpoint " + endpoint->id + " is disabled");
  }
  Result<WebhookUrl> url = parseWebhookUrl(endpoint->url);
  if (!url) {
    return failedNow(delivery, now, url.error().message);
  }
  Result<Secret> secret = openEndpointSecret(store_, vault_, *endpoint);
  if (!secret) {
    return failedNow(delivery, now, "the endpoint's signing secret cannot be decrypted");
  }

  int64_t sent_at = nowUnixMillis();
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"Keystore-Event", delivery.event_type},
      {"Keystore-Delivery", delivery.id},
      {"Keystore-Signature", signatureHeader(*secret, sent_at / 1000, delivery.payload)},
  };
  SendOutcome outcome = sender_.send(*url, headers, delivery.payload);
  int64_t finished_at = nowUnixMillis();

  store::WebhookAttemptResult result{.delivery_id = delivery.id,
                                     .attempt = delivery.attempts,
                                     .status = "delivered",
                                     .status_code = outcome.status_code,
                                     .error = outcome.error,
                                     .next_attempt_at = 0,
                                     .finished_at = finished_at};
  if (outcome.status_code >= 200 && outcome.status_code < 300) {
    return result;
  }
  if (result.error.empty()) {
    result.error = "the receiver answered HTTP " + std::to_string(outcome.status_code);
  }
  std::optional<int64_t> next = options_.retry.nextAttemptAt(delivery.created_at, finished_at,
                                                             delivery.attempts, randomJitter());
  result.status = next ? "pending" : "failed";
  result.next_attempt_at = next.value_or(0);
  return result;
}

}  // namespace keystore::webhooks
