// ProxyServer: the proxy listener. Accepts agent connections, admits each request against
// the current snapshot, forwards it to the provider with the credential injected, streams
// the response back and hands one ledger row per proxied request to the LedgerWriter.
//
// Threading: `threads` I/O threads, each with its own io_context, acceptor (SO_REUSEPORT on
// one port) and upstream connection pool, so nothing on the request path is shared between
// threads except the snapshot pointer and the ledger queue. start() and stop() are called
// from the owning (main) thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "catalog/catalog.h"
#include "common/error.h"
#include "limits/budget_tracker.h"
#include "metering/ledger_writer.h"
#include "proxy/snapshot.h"
#include "redis/redis_connection.h"
#include "telemetry/proxy_metrics.h"

namespace keystore::proxy {

// A budget threshold crossed or a request rejected by a rate limit, reported for webhooks.
struct ProxyEvent {
  std::string type;  // "budget.warning" | "budget.exceeded" | "rate_limited"
  std::string project_id;
  std::string agent_id;
  std::string provider;
  std::string scope;       // budget events: "agent" | "project"
  std::string limit_type;  // rate_limited: the limit that was hit, e.g. "rpm"
  std::string request_id;
};

struct ProxyOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  int threads = 2;
  bool allow_private_upstreams = false;
  std::string upstream_ca_file;              // extra trusted CA bundle (PEM) for upstream TLS
  uint64_t max_request_bytes = 32ull << 20;  // request body limit
  uint64_t max_response_bytes = 1ull << 30;  // response body limit
  std::chrono::milliseconds connect_timeout{10'000};
  // Waiting for the upstream's status line: long, because a non-streamed LLM call may
  // think for minutes before it answers.
  std::chrono::milliseconds response_header_timeout{600'000};
  // Silence allowed between two reads of a response body; a live stream is never cut as
  // long as bytes keep coming.
  std::chrono::milliseconds idle_timeout{300'000};
  std::chrono::milliseconds client_header_timeout{60'000};
  // How long an idle pooled upstream connection is kept.
  std::chrono::milliseconds pool_idle_timeout{30'000};
  size_t max_idle_per_upstream = 64;
  bool ledger_strict = false;  // appendDurable instead of append
  // After the client hangs up mid-response, the upstream response is still read (not relayed)
  // for up to this long and this many bytes, so the usage the provider bills is recorded. Zero
  // closes the upstream connection at once.
  std::chrono::milliseconds abort_drain_timeout{60'000};
  uint64_t abort_drain_bytes = 64ull << 20;
  // The Redis server that counts rate limits and budgets for every instance sharing it. Unset,
  // each instance counts in memory. Each I/O thread keeps one connection.
  std::optional<redis::RedisEndpoint> redis;
  // Receives ProxyEvents on the I/O threads, so it must not block. Unset = not reported.
  std::function<void(const ProxyEvent&)> on_event;
};

class ProxyServer {
 public:
  // `budgets` contains the month's spend and reservations. The caller seeds it from the ledger.
  ProxyServer(ProxyOptions options, const catalog::Catalog& catalog, SnapshotHolder& snapshots,
              metering::LedgerWriter& ledger, limits::BudgetTracker& budgets,
              telemetry::ProxyMetrics& metrics);
  ~ProxyServer();

  // Binds the listener and starts the I/O threads. Returns "host:port" as bound.
  Result<std::string> start();
  // Stops accepting, lets requests in flight finish for up to `grace`, then stops.
  void stop(std::chrono::milliseconds grace);
  // Drops the in-memory rate-limit state of agents idle for a minute and a day boundary, so
  // memory follows the active agents rather than every agent ever seen. Returns how many
  // keys went. Thread-safe; the owner calls it periodically.
  size_t pruneRateLimits(int64_t now_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keystore::proxy
