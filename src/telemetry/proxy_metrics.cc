#include "telemetry/proxy_metrics.h"

#include <algorithm>
#include <utility>

#include "common/error.h"

namespace keystore::telemetry {

namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

std::vector<std::string> sortedIds(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// The ledger's outcome strings: its own three, usage_missing, and every error code name.
std::vector<std::string> outcomeValues() {
  std::vector<std::string> values = {"ok", "upstream_error", "client_aborted", "usage_missing"};
  for (int code = 0; code <= static_cast<int>(ErrorCode::kInternal); ++code) {
    values.emplace_back(errorCodeName(static_cast<ErrorCode>(code)));
  }
  return values;
}

}  // namespace

std::vector<nanoseconds> ProxyMetrics::overheadBounds() {
  return {microseconds(10),  microseconds(25),  microseconds(50), microseconds(100),
          microseconds(250), microseconds(500), milliseconds(1),  microseconds(2500),
          milliseconds(5),   milliseconds(10),  milliseconds(25), milliseconds(50),
          milliseconds(100)};
}

std::vector<nanoseconds> ProxyMetrics::upstreamBounds() {
  return {milliseconds(1),   microseconds(2500), milliseconds(5),    milliseconds(10),
          milliseconds(25),  milliseconds(50),   milliseconds(100),  milliseconds(250),
          milliseconds(500), seconds(1),         milliseconds(2500), seconds(5),
          seconds(10),       seconds(30),        seconds(60),        seconds(120),
          seconds(300),      seconds(600)};
}

ProxyMetrics::ProxyMetrics(std::vector<std::string> provider_ids)
    : providers_("provider", sortedIds(std::move(provider_ids))),
      modes_("mode", {"byok", "marketplace", "none"}),
      outcomes_("outcome", outcomeValues()),
      limit_types_("limit_type", {"rpm", "rpd", "tpm"}),
      scopes_("scope", {"agent", "project"}),
      units_("unit", {"input_tokens", "cached_input_tokens", "output_tokens", "requests", "emails",
                      "messages", "read_units", "write_units"}),
      circuit_states_("state", {"closed", "open", "half_open"}),
      requests_(registry_.addCounter("keystore_proxy_requests_total",
                                     "Proxied requests by provider, credential mode and outcome.",
                                     {providers_, modes_, outcomes_})),
      upstream_duration_(
          registry_.addHistogram("keystore_proxy_upstream_duration_seconds",
                                 "Time from sending a request upstream to the end of its response.",
                                 {providers_}, upstreamBounds())),
      overhead_(registry_.addHistogram(
          "keystore_proxy_overhead_seconds",
          "Time a request spent inside the proxy, excluding the wait for the upstream.",
          {providers_}, overheadBounds())),
      rate_limit_rejections_(registry_.addCounter("keystore_rate_limit_rejections_total",
                                                  "Requests rejected by a rate limit.",
                                                  {providers_, limit_types_})),
      budget_rejections_(registry_.addCounter("keystore_budget_rejections_total",
                                              "Requests rejected by an agent or project budget.",
                                              {scopes_})),
      usage_units_(registry_.addCounter("keystore_usage_units_total",
                                        "Metered usage units by provider, mode and unit.",
                                        {providers_, modes_, units_})),
      usage_missing_(registry_.addCounter(
          "keystore_usage_missing_total",
          "Responses without a usage figure where one was expected; their units are estimated.",
          {providers_})),
      circuit_transitions_(registry_.addCounter(
          "keystore_circuit_transitions_total",
          "Marketplace credential circuit breaker state changes, by the state entered.",
          {providers_, circuit_states_})) {}

size_t ProxyMetrics::modeIndex(std::string_view mode) const {
  return modes_.indexOf(mode.empty() ? std::string_view("none") : mode);
}

void ProxyMetrics::requestFinished(std::string_view provider, std::string_view mode,
                                   std::string_view outcome, std::optional<nanoseconds> upstream,
                                   nanoseconds overhead) {
  size_t provider_index = providers_.indexOf(provider);
  requests_.at({provider_index, modeIndex(mode), outcomes_.indexOf(outcome)}).inc();
  if (upstream) {
    upstream_duration_.at({provider_index}).observe(*upstream);
  }
  overhead_.at({provider_index}).observe(overhead);
}

void ProxyMetrics::rateLimited(std::string_view provider, std::string_view limit_type) {
  rate_limit_rejections_.at({providers_.indexOf(provider), limit_types_.indexOf(limit_type)}).inc();
}

void ProxyMetrics::budgetRejected(std::string_view scope) {
  budget_rejections_.at({scopes_.indexOf(scope)}).inc();
}

void ProxyMetrics::usage(std::string_view provider, std::string_view mode, std::string_view unit,
                         int64_t units) {
  const UnitCount one[] = {{unit, units}};
  usage(provider, mode, one);
}

void ProxyMetrics::usage(std::string_view provider, std::string_view mode,
                         std::span<const UnitCount> units) {
  size_t provider_index = 0;
  size_t mode_index = 0;
  bool resolved = false;
  for (const UnitCount& each : units) {
    if (each.count <= 0) {
      continue;
    }
    if (!resolved) {
      provider_index = providers_.indexOf(provider);
      mode_index = modeIndex(mode);
      resolved = true;
    }
    usage_units_.at({provider_index, mode_index, units_.indexOf(each.unit)})
        .inc(static_cast<uint64_t>(each.count));
  }
}

void ProxyMetrics::usageMissing(std::string_view provider) {
  usage_missing_.at({providers_.indexOf(provider)}).inc();
}

void ProxyMetrics::circuitChanged(std::string_view provider, std::string_view state) {
  circuit_transitions_.at({providers_.indexOf(provider), circuit_states_.indexOf(state)}).inc();
}

}  // namespace keystore::telemetry
