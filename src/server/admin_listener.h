// AdminListener: the HTTP/1.1 listener of the management API, /metrics and the health
// probes. Requests are small and buffered. Handlers may block on the Store, so the listener
// runs on its own thread pool, away from the proxy's I/O threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "admin/admin_api.h"
#include "common/error.h"

namespace keystore::server {

struct AdminListenerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8081;
  int threads = 2;
  uint64_t max_body_bytes = 1 << 20;
};

class AdminListener {
 public:
  using Handler = std::function<admin::ApiResponse(const admin::ApiRequest&)>;

  AdminListener(AdminListenerOptions options, Handler handler);
  ~AdminListener();

  // Binds and starts serving; returns "host:port" as bound.
  Result<std::string> start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" or "[v6]:port"; kInvalidRequest naming the flag on bad input.
Result<std::pair<std::string, uint16_t>> parseListenAddress(std::string_view text,
                                                             std::string_view flag);

}  // namespace keystore::server
