// `keystore serve`: configuration (flags, KEYSTORE_… environment variables and an optional
// TOML config file, in that order of precedence) and the server's start-up and shutdown.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace keystore::server {

struct ServeConfig {
  std::string data_dir = "./keystore-data";
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  std::string master_key_file;
  // The key a rotation replaced, while data keys may still be wrapped by it.
  std::string previous_master_key_file;
  std::vector<std::string> upstreams;  // "PROVIDER=URL"
  bool allow_private_upstreams = false;
  std::string upstream_ca_file;
  std::string catalog_file;  // replaces the built-in provider catalog when set
  std::string log_level = "info";
  std::string ledger_sync = "batch";  // "batch" | "strict"
  int64_t ledger_flush_ms = 50;
  uint64_t max_request_bytes = 32ull << 20;
  int threads = 0;  // 0 = one per core
  // Proxy timeouts (durations): waiting for a provider's response header after the request was
  // sent, silence allowed in the middle of a request or response body, and an agent's time to
  // send a request header.
  std::string upstream_timeout = "10m";
  std::string stream_idle_timeout = "5m";
  std::string client_header_timeout = "60s";
  // How long the proxy keeps reading a response after the agent hung up, to meter the usage
  // the provider reports at its end. 0 closes the upstream connection at once, which stops the
  // provider's work sooner, but the usage may then be an estimate.
  std::string abort_drain_timeout = "60s";
  // Marketplace circuit breaker: consecutive failures that open a credential's circuit, and
  // how long it stays open before a probe.
  int circuit_failures = 5;
  std::string circuit_cooldown = "30s";
  // redis://[:password@]host[:port][/db]: count rate limits and budgets in Redis, shared by
  // every instance pointed at it. Empty: each instance counts in memory.
  std::string redis_url;
  // Management API sessions: absolute lifetime from sign-in, and idle time that ends one.
  std::string session_ttl = "12h";
  std::string session_idle_timeout = "2h";
  // Webhooks: accept endpoint URLs on loopback and private addresses, and the first retry
  // delay and the period after which a failing delivery is given up (durations).
  bool allow_private_webhooks = false;
  std::string webhook_retry_base = "30s";
  std::string webhook_retry_window = "24h";
};

// Registers `serve` on `app`; its callback runs the server until SIGINT or SIGTERM and
// stores the exit status in `exit_code`.
void addServeCommand(CLI::App& app, int& exit_code);

// Runs the server with a resolved configuration; returns the process exit status.
int runServer(const ServeConfig& config);

}  // namespace keystore::server
