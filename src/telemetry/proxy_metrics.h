// ProxyMetrics: the Prometheus metrics of the proxy's request path, with their names, labels
// and bucket bounds, over a Registry that it owns.
//
// Every label is bounded. Provider ids come from the list given to the constructor, and modes
// are byok, marketplace or none. Outcomes are the ledger's: "ok", "upstream_error",
// "client_aborted", "usage_missing" or an error code name. Units, limit types, budget scopes
// and circuit states are the product's fixed names. Any other string, including an unknown
// provider id, is recorded under "other". There is deliberately no model label: model
// names are chosen by clients and have no bound.
//
// NOTE: a series first appears in render() on its first recording, so the first increment of
// a counter can be missed by rate() over the scrape in which it appears.
//
// Thread-safety: every method may be called from any thread at once. Recording takes no lock
// (see Registry); render() takes the registry's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/registry.h"

namespace keystore::telemetry {

class ProxyMetrics {
 public:
  // Registers the metrics, with one provider label value per id (sorted, duplicates dropped)
  // plus "other". Throws std::invalid_argument when the ids exceed Label::kMaxValues.
  explicit ProxyMetrics(std::vector<std::string> provider_ids);

  // Records one finished request with its outcome and two durations. `upstream` runs from
  // sending the request upstream to the end of the response, and is nullopt when the request
  // ended before reaching an upstream. `overhead` is the time spent inside the proxy,
  // excluding that wait. An empty mode (not yet resolved when the request ended) is recorded
  // as "none".
  void requestFinished(std::string_view provider, std::string_view mode, std::string_view outcome,
                       std::optional<std::chrono::nanoseconds> upstream,
                       std::chrono::nanoseconds overhead);

  // Counts a request rejected by a rate limit. limit_type is "rpm", "rpd" or "tpm".
  void rateLimited(std::string_view provider, std::string_view limit_type);
  // Counts a request rejected by a budget. scope is "agent" or "project".
  void budgetRejected(std::string_view scope);
  // Adds the metered units of one request, e.g. ("openai", "byok", "output_tokens", 42). A count of
  // zero or less records nothing, so the counter never decreases.
  void usage(std::string_view provider, std::string_view mode, std::string_view unit,
             int64_t units);
  // A unit's name and a request's count of it.
  struct UnitCount {
    std::string_view unit;
    int64_t count = 0;
  };
  // Adds every unit of one request as the single-unit overload does, looking up the provider and
  // mode once.
  void usage(std::string_view provider, std::string_view mode, std::span<const UnitCount> units);
  // Counts a response that carried no usage figure where one was expected.
  void usageMissing(std::string_view provider);
  // Counts a marketplace credential's circuit entering `state`: "closed", "open" or
  // "half_open".
  void circuitChanged(std::string_view provider, std::string_view state);

  // Renders every metric in the Prometheus text exposition format 0.0.4, for the admin
  // listener's GET /metrics.
  std::string render() const { return registry_.render(); }

  // The registry, where other components may add metrics that render after the proxy's own.
  Registry& registry() { return registry_; }

  // Bucket bounds. Proxy overhead runs from tens of microseconds to tens of milliseconds, and
  // upstream latency from milliseconds (a cached response) to minutes (a long stream).
  static std::vector<std::chrono::nanoseconds> overheadBounds();
  static std::vector<std::chrono::nanoseconds> upstreamBounds();

 private:
  size_t modeIndex(std::string_view mode) const;

  Registry registry_;
  Label providers_;
  Label modes_;
  Label outcomes_;
  Label limit_types_;
  Label scopes_;
  Label units_;
  Label circuit_states_;
  CounterFamily& requests_;
  HistogramFamily& upstream_duration_;
  HistogramFamily& overhead_;
  CounterFamily& rate_limit_rejections_;
  CounterFamily& budget_rejections_;
  CounterFamily& usage_units_;
  CounterFamily& usage_missing_;
  CounterFamily& circuit_transitions_;
};

}  // namespace keystore::telemetry
