#include "telemetry/proxy_metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"

namespace keystore::telemetry {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Every family's HELP and TYPE lines, in registration order, with the series in between.
std::string expectedText(const std::string& requests, const std::string& upstream,
                         const std::string& overhead, const std::string& rate_limits,
                         const std::string& budgets, const std::string& usage,
                         const std::string& usage_missing, const std::string& circuits) {
  return "# HELP keystore_proxy_requests_total Proxied requests by provider, credential mode "
         "and outcome.\n"
         "# TYPE keystore_proxy_requests_total counter\n" +
         requests +
         "# HELP keystore_proxy_upstream_duration_seconds Time from sending a request upstream "
         "to the end of its response.\n"
         "# TYPE keystore_proxy_upstream_duration_seconds histogram\n" +
         upstream +
         "# HELP keystore_proxy_overhead_seconds Time a request spent inside the proxy, "
         "excluding the wait for the upstream.\n"
         "# TYPE keystore_proxy_overhead_seconds histogram\n" +
         overhead +
         "# HELP keystore_rate_limit_rejections_total Requests rejected by a rate limit.\n"
         "# TYPE keystore_rate_limit_rejections_total counter\n" +
         rate_limits +
         "# HELP keystore_budget_rejections_total Requests rejected by an agent or project "
         "budget.\n"
         "# TYPE keystore_budget_rejections_total counter\n" +
         budgets +
         "# HELP keystore_usage_units_total Metered usage units by provider, mode and unit.\n"
         "# TYPE keystore_usage_units_total counter\n" +
         usage +
         "# HELP keystore_usage_missing_total Responses without a usage figure where one was "
         "expected; their units are estimated.\n"
         "# TYPE keystore_usage_missing_total counter\n" +
         usage_missing +
         "# HELP keystore_circuit_transitions_total Marketplace credential circuit breaker state "
         "changes, by the state entered.\n"
         "# TYPE keystore_circuit_transitions_total counter\n" +
         circuits;
}

TEST(ProxyMetricsTest, NothingRecordedRendersHeadersOnly) {
  ProxyMetrics metrics({"openai"});

  EXPECT_EQ(metrics.render(), expectedText("", "", "", "", "", "", "", ""));
}

// A request's units recorded in one call: every positive count under its provider, mode and
// unit ("other" for a unit the label set does not list), nothing for a count of zero or less.
TEST(ProxyMetricsTest, RequestUnitsRecordedTogether) {
  ProxyMetrics metrics({"anthropic", "openai"});
  const ProxyMetrics::UnitCount units[] = {{"input_tokens", 100}, {"cached_input_tokens", 0},
                                           {"output_tokens", 42}, {"requests", 1},
                                           {"emails", -3},        {"faxes", 5}};
  metrics.usage("openai", "marketplace", units);
  metrics.usage("openai", "marketplace", units);

  std::string text = metrics.render();
  const std::string series =
      "keystore_usage_units_total{provider=\"openai\",mode=\"marketplace\",unit=";
  EXPECT_NE(text.find(series + "\"input_tokens\"} 200\n"), std::string::npos);
  EXPECT_NE(text.find(series + "\"output_tokens\"} 84\n"), std::string::npos);
  EXPECT_NE(text.find(series + "\"requests\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find(series + "\"other\"} 10\n"), std::string::npos);
  EXPECT_EQ(text.find(series + "\"cached_input_tokens\""), std::string::npos);
  EXPECT_EQ(text.find(series + "\"emails\""), std::string::npos);
  EXPECT_EQ(text.find("provider=\"anthropic\",mode=\"marketplace\",unit="), std::string::npos);
}

TEST(ProxyMetricsTest, SmallScenarioRendersExactText) {
  ProxyMetrics metrics({"openai", "anthropic"});

  metrics.requestFinished("openai", "byok", "ok", milliseconds(120), microseconds(80));
  metrics.requestFinished("openai", "byok", "ok", seconds(2), microseconds(40));
  metrics.requestFinished("anthropic", "marketplace", "rate_limited", std::nullopt,
                          microseconds(15));
  // Unknown provider, mode not yet resolved, rejected before any upstream.
  metrics.requestFinished("mystery", "", "invalid_token", std::nullopt, microseconds(5));
  metrics.rateLimited("anthropic", "rpm");
  metrics.budgetRejected("project");
  metrics.usage("openai", "byok", "input_tokens", 100);
  metrics.usage("openai", "byok", "output_tokens", 42);
  metrics.usage("openai", "byok", "output_tokens", 0);
  metrics.usage("openai", "byok", "output_tokens", -5);
  metrics.usageMissing("anthropic");
  metrics.circuitChanged("anthropic", "open");
  metrics.circuitChanged("anthropic", "half_open");

  std::string requests =
      "keystore_proxy_requests_total{provider=\"anthropic\",mode=\"marketplace\","
      "outcome=\"rate_limited\"} 1\n"
      "keystore_proxy_requests_total{provider=\"openai\",mode=\"byok\",outcome=\"ok\"} 2\n"
      "keystore_proxy_requests_total{provider=\"other\",mode=\"none\","
      "outcome=\"invalid_token\"} 1\n";
  // 120 ms and 2 s: the first falls in le=0.25, the second in le=2.5.
  std::string upstream =
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.001\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.0025\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.005\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.01\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.025\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.05\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.1\"} 0\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.25\"} 1\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"0.5\"} 1\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"1\"} 1\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"2.5\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"5\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"10\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"30\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"60\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"120\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"300\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"600\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 2\n"
      "keystore_proxy_upstream_duration_seconds_sum{provider=\"openai\"} 2.12\n"
      "keystore_proxy_upstream_duration_seconds_count{provider=\"openai\"} 2\n";
  // Overhead: anthropic 15 us, openai 40 us and 80 us, other 5 us.
  std::string overhead =
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.00001\"} 0\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.000025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.00005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.0001\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.00025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.0005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.001\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.0025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.01\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.05\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"0.1\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"anthropic\",le=\"+Inf\"} 1\n"
      "keystore_proxy_overhead_seconds_sum{provider=\"anthropic\"} 0.000015\n"
      "keystore_proxy_overhead_seconds_count{provider=\"anthropic\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.00001\"} 0\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.000025\"} 0\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.00005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.0001\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.00025\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.0005\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.001\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.0025\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.005\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.01\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.025\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.05\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"0.1\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"openai\",le=\"+Inf\"} 2\n"
      "keystore_proxy_overhead_seconds_sum{provider=\"openai\"} 0.00012\n"
      "keystore_proxy_overhead_seconds_count{provider=\"openai\"} 2\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.00001\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.000025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.00005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.0001\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.00025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.0005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.001\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.0025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.005\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.01\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.025\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.05\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"0.1\"} 1\n"
      "keystore_proxy_overhead_seconds_bucket{provider=\"other\",le=\"+Inf\"} 1\n"
      "keystore_proxy_overhead_seconds_sum{provider=\"other\"} 0.000005\n"
      "keystore_proxy_overhead_seconds_count{provider=\"other\"} 1\n";
  std::string rate_limits =
      "keystore_rate_limit_rejections_total{provider=\"anthropic\",limit_type=\"rpm\"} 1\n";
  std::string budgets = "keystore_budget_rejections_total{scope=\"project\"} 1\n";
  std::string usage =
      "keystore_usage_units_total{provider=\"openai\",mode=\"byok\",unit=\"input_tokens\"} 100\n"
      "keystore_usage_units_total{provider=\"openai\",mode=\"byok\",unit=\"output_tokens\"} 42\n";
  std::string usage_missing = "keystore_usage_missing_total{provider=\"anthropic\"} 1\n";
  std::string circuits =
      "keystore_circuit_transitions_total{provider=\"anthropic\",state=\"open\"} 1\n"
      "keystore_circuit_transitions_total{provider=\"anthropic\",state=\"half_open\"} 1\n";

  EXPECT_EQ(metrics.render(), expectedText(requests, upstream, overhead, rate_limits, budgets,
                                           usage, usage_missing, circuits));
}

TEST(ProxyMetricsTest, UnboundedStringsBecomeOther) {
  ProxyMetrics metrics({"openai"});

  // Strings a caller might pass by mistake: a token, a request path, a model name.
  metrics.requestFinished("openai", "byok",
                          "ks_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          std::nullopt, microseconds(1));
  metrics.requestFinished("/v1/openai/v1/chat/completions", "gpt-4o", "ok", std::nullopt,
                          microseconds(1));
  metrics.rateLimited("openai", "per_hour");
  metrics.budgetRejected("organization");
  metrics.usage("openai", "byok", "gpt-4o-tokens", 7);
  metrics.circuitChanged("openai", "melted");

  std::string text = metrics.render();
  EXPECT_NE(text.find("keystore_proxy_requests_total{provider=\"openai\",mode=\"byok\","
                      "outcome=\"other\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("keystore_proxy_requests_total{provider=\"other\",mode=\"other\","
                      "outcome=\"ok\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("keystore_rate_limit_rejections_total{provider=\"openai\","
                      "limit_type=\"other\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("keystore_budget_rejections_total{scope=\"other\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("keystore_usage_units_total{provider=\"openai\",mode=\"byok\","
                      "unit=\"other\"} 7\n"),
            std::string::npos);
  EXPECT_NE(text.find("keystore_circuit_transitions_total{provider=\"openai\","
                      "state=\"other\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(text.find("ks_0123"), std::string::npos);
  EXPECT_EQ(text.find("/v1/openai"), std::string::npos);
  EXPECT_EQ(text.find("gpt-4o"), std::string::npos);
}

TEST(ProxyMetricsTest, EveryLedgerOutcomeHasItsOwnValue) {
  std::vector<std::string> outcomes = {"ok", "upstream_error", "client_aborted", "usage_missing"};
  for (int code = 0; code <= static_cast<int>(ErrorCode::kInternal); ++code) {
    outcomes.emplace_back(errorCodeName(static_cast<ErrorCode>(code)));
  }
  ProxyMetrics metrics({"openai"});

  for (const std::string& outcome : outcomes) {
    metrics.requestFinished("openai", "marketplace", outcome, std::nullopt, microseconds(30));
  }

  std::string text = metrics.render();
  for (const std::string& outcome : outcomes) {
    EXPECT_NE(text.find("keystore_proxy_requests_total{provider=\"openai\",mode=\"marketplace\","
                        "outcome=\"" +
                        outcome + "\"} 1\n"),
              std::string::npos)
        << outcome;
  }
  EXPECT_EQ(text.find("outcome=\"other\""), std::string::npos);
}

TEST(ProxyMetricsTest, RenderIsDeterministic) {
  // The same ids in another order, with a duplicate, give the same label order.
  ProxyMetrics first({"openai", "anthropic", "resend"});
  ProxyMetrics second({"resend", "openai", "anthropic", "openai"});
  for (ProxyMetrics* metrics : {&first, &second}) {
    metrics->requestFinished("resend", "byok", "ok", milliseconds(30), microseconds(20));
    metrics->requestFinished("anthropic", "byok", "ok", milliseconds(900), microseconds(60));
    metrics->requestFinished("openai", "byok", "ok", milliseconds(4), microseconds(45));
  }

  EXPECT_EQ(first.render(), second.render());
  EXPECT_EQ(first.render(), first.render());
  std::string text = first.render();
  size_t anthropic = text.find("keystore_proxy_requests_total{provider=\"anthropic\"");
  size_t openai = text.find("keystore_proxy_requests_total{provider=\"openai\"");
  size_t resend = text.find("keystore_proxy_requests_total{provider=\"resend\"");
  ASSERT_NE(anthropic, std::string::npos);
  ASSERT_NE(openai, std::string::npos);
  ASSERT_NE(resend, std::string::npos);
  EXPECT_LT(anthropic, openai);
  EXPECT_LT(openai, resend);
}

TEST(ProxyMetricsTest, BucketBoundsSuitTheirRanges) {
  std::vector<std::chrono::nanoseconds> overhead = ProxyMetrics::overheadBounds();
  std::vector<std::chrono::nanoseconds> upstream = ProxyMetrics::upstreamBounds();

  ASSERT_FALSE(overhead.empty());
  ASSERT_FALSE(upstream.empty());
  EXPECT_EQ(overhead.front(), microseconds(10));
  EXPECT_EQ(overhead.back(), milliseconds(100));
  EXPECT_EQ(upstream.front(), milliseconds(1));
  EXPECT_EQ(upstream.back(), seconds(600));
}

}  // namespace
}  // namespace keystore::telemetry
