// Dispatcher: sends stored webhook deliveries and records each attempt.
//
// Worker threads claim due deliveries from the store, sign and POST them, and record the
// outcome. Each claim leases the delivery, so instances sharing the database never start the
// same attempt twice. A 2xx response marks the delivery delivered. Any other status, a
// redirect or a connection failure schedules a retry by the RetryPolicy, or marks the
// delivery failed once the retry window is spent. A delivery whose endpoint is disabled, or whose
// secret or URL no longer works, fails at once. Workers poll the store every `poll_interval` and
// sooner when wake() is called.
//
// A lease lasts the send timeout plus a margin, so a lease left by a crashed instance
// expires and another instance (or the restarted one) sends that attempt again.
//
// Thread-safety: wake() may be called from any thread; start() and stop() from the owner.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"
#include "store/store.h"
#include "vault/vault.h"
#include "webhooks/retry_policy.h"
#include "webhooks/sender.h"

namespace keystore::webhooks {

struct DispatcherOptions {
  RetryPolicy retry;
  SenderOptions sender;
  int threads = 2;
  std::chrono::milliseconds poll_interval{500};
};

class Dispatcher {
 public:
  // Throws std::runtime_error when the sender's CA file cannot be loaded.
  Dispatcher(store::Store& store, const vault::Vault& vault, DispatcherOptions options);
  ~Dispatcher();

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void start();
  // Lets attempts in flight finish (each bounded by the send timeout), then returns.
  void stop();
  void wake();

  // Claims one due delivery and attempts it on the calling thread. False when none was due.
  Result<bool> runOnce();

 private:
  void run();
  store::WebhookAttemptResult attempt(const store::WebhookDelivery& delivery, int64_t now);

  store::Store& store_;
  const vault::Vault& vault_;
  DispatcherOptions options_;
  Sender sender_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  uint64_t wake_count_ = 0;
  // The earliest retry this process scheduled (Unix ms, 0 = none), so an idle worker wakes for
  // it instead of waiting out the whole poll interval.
  int64_t next_retry_ms_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace keystore::webhooks
