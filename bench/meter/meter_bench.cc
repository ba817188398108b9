// Micro-benchmark of the proxy's per-request work outside network I/O:
// - metering one OpenAI chat completion with RequestMeter: construction, worstCaseMicros,
//   onResponse, onUpstreamBytes with the whole JSON response in one read, and fillRow. It runs
//   for a small request, a small streamed request (which the meter rewrites to request usage)
//   and a 20 KB request, each against a plain boost::json::parse of the same request body;
// - the one pass over the request body (summarizeRequestBody) alone, against the same parse;
// - admitting a request (admitRequest) and resolving its BYOK credential twice on one snapshot,
//   against one Vault::decryptCredential call.
//
// After the benchmarks the program prints each figure as a ratio to its reference, both
// measured in this run (CPU time per iteration). The counters `new` and `new_upstream` are
// calls of operator new per iteration, in all and within onUpstreamBytes. They do not count
// OpenSSL's own malloc calls.
//
// Usage: meter_bench [Google Benchmark flags]

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <boost/beast/http/fields.hpp>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>

#include "allocation_counter.h"
#include "catalog/catalog.h"
#include "proxy/admission.h"
#include "proxy/request_body.h"
#include "proxy/request_meter.h"
#include "proxy/snapshot.h"
#include "support/ratio_reporter.h"
#include "tokens/agent_token.h"
#include "vault/vault.h"

namespace {

namespace http = boost::beast::http;
using keystore::Secret;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr std::string_view kChatPath = "/v1/chat/completions";

const std::string kSmallRequest =
    R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},)"
    R"({"role":"user","content":"Say hello in five words."}],"max_tokens":64,"temperature":0.2})";

const std::string kStreamedRequest =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words."}],)"
    R"("stream":true,"max_tokens":64})";

const std::string kSmallResponse =
    R"({"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion",)"
    R"("created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"Hello there, nice to meet!","refusal":null,)"
    R"("annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,)"
    R"("completion_tokens":7,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0,)"
    R"("audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,)"
    R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default",)"
    R"("system_fingerprint":"fp_06737a9306"})";

// A chat request of about 20 KB: a long conversation of short messages.
std::string makeLargeRequest() {
  std::string body = R"({"model":"gpt-4o-mini","messages":[)";
  int turn = 0;
  while (body.size() < 20 * 1024) {
    if (turn > 0) {
      body += ',';
    }
    body += turn % 2 == 0 ? R"({"role":"user","content":")" : R"({"role":"assistant","content":")";
    body += "Message number " + std::to_string(turn) +
            " of a long conversation, with some ordinary text to fill the prompt.\"}";
    ++turn;
  }
  body += R"(],"max_completion_tokens":256,"n":1,"temperature":0.7})";
  return body;
}

const std::string kLargeRequest = makeLargeRequest();

const keystore::catalog::Catalog& catalog() {
  static const keystore::catalog::Catalog kCatalog = *keystore::catalog::Catalog::builtIn();
  return kCatalog;
}

const keystore::limits::PriceTable& prices() {
  static const keystore::limits::PriceTable kPrices = [] {
    keystore::limits::PriceTable table;
    (void)table.set("openai", "gpt-4o-mini", "input_tokens", 150'000);
    (void)table.set("openai", "gpt-4o-mini", "cached_input_tokens", 75'000);
    (void)table.set("openai", "gpt-4o-mini", "output_tokens", 600'000);
    return table;
  }();
  return kPrices;
}

// One request's metering, from the request body to the ledger row's fields.
// `upstream_allocations` grows by the operator new calls within onUpstreamBytes.
int64_t meterOnce(std::string& body, int64_t& upstream_allocations) {
  const keystore::catalog::ProviderSpec& provider = *catalog().find("openai");
  keystore::proxy::RequestMeter meter(provider, "POST", kChatPath, body);
  int64_t reserved = meter.worstCaseMicros(prices(), body);
  meter.onResponse(200, "application/json");
  int64_t before = allocationCount();
  std::string_view relayed = meter.onUpstreamBytes(kSmallResponse);
  upstream_allocations += allocationCount() - before;
  benchmark::DoNotOptimize(relayed);
  keystore::store::LedgerRow row;
  row.upstream_status = 200;
  row.outcome = "ok";
  meter.fillRow(row, prices(), false);
  return reserved + row.cost_micros;
}

// Runs `body_of_iteration` per iteration and reports operator new calls per iteration.
template <typename Body>
void runCounted(benchmark::State& state, Body&& body_of_iteration) {
  int64_t upstream_allocations = 0;
  int64_t start = allocationCount();
  for (auto _ : state) {
    body_of_iteration(upstream_allocations);
  }
  auto iterations = static_cast<double>(state.iterations());
  state.counters["new"] = static_cast<double>(allocationCount() - start) / iterations;
  state.counters["new_upstream"] = static_cast<double>(upstream_allocations) / iterations;
}

void BM_MeterSmallChat(benchmark::State& state) {
  std::string body = kSmallRequest;  // not streamed, so never rewritten
  runCounted(state, [&](int64_t& upstream_allocations) {
    benchmark::DoNotOptimize(meterOnce(body, upstream_allocations));
  });
}
BENCHMARK(BM_MeterSmallChat);

// Includes copying the body each iteration, because the meter rewrites it in place.
void BM_MeterStreamedChat(benchmark::State& state) {
  runCounted(state, [&](int64_t& upstream_allocations) {
    std::string body = kStreamedRequest;
    benchmark::DoNotOptimize(meterOnce(body, upstream_allocations));
  });
}
BENCHMARK(BM_MeterStreamedChat);

void BM_MeterLargeChat(benchmark::State& state) {
  std::string body = kLargeRequest;
  runCounted(state, [&](int64_t& upstream_allocations) {
    benchmark::DoNotOptimize(meterOnce(body, upstream_allocations));
  });
}
BENCHMARK(BM_MeterLargeChat);

// The one pass over the body alone, to compare with a DOM parse.
void BM_SummarizeSmall(benchmark::State& state) {
  for (auto _ : state) {
    keystore::proxy::RequestBodySummary summary =
        keystore::proxy::summarizeRequestBody(kSmallRequest);
    benchmark::DoNotOptimize(summary);
  }
}
BENCHMARK(BM_SummarizeSmall);

void BM_SummarizeLarge(benchmark::State& state) {
  for (auto _ : state) {
    keystore::proxy::RequestBodySummary summary =
        keystore::proxy::summarizeRequestBody(kLargeRequest);
    benchmark::DoNotOptimize(summary);
  }
}
BENCHMARK(BM_SummarizeLarge);

void BM_ParseSmallReference(benchmark::State& state) {
  for (auto _ : state) {
    boost::json::value parsed = boost::json::parse(kSmallRequest);
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_ParseSmallReference);

void BM_ParseLargeReference(benchmark::State& state) {
  for (auto _ : state) {
    boost::json::value parsed = boost::json::parse(kLargeRequest);
    benchmark::DoNotOptimize(parsed);
  }
}
BENCHMARK(BM_ParseLargeReference);

// A snapshot with one project whose OpenAI key is stored in BYOK mode, and its agent token.
struct ByokFixture {
  ByokFixture() {
    data_key = keystore::vault::Vault::newDataKey();
    token = std::string(keystore::tokens::generateAgentToken().reveal());
    binding = keystore::vault::CredentialBinding{"prj_bench", "openai", "cred_bench"};
    ciphertext = *keystore::vault::Vault::encryptCredential(
        data_key, "dk_bench", binding,
        Secret(std::string("sk-test-BENCHMARK-0000000000000000000000000000000000")));

    auto built = std::make_shared<keystore::proxy::Snapshot>();
    keystore::proxy::TokenEntry entry;
    entry.token_id = "tok_bench";
    entry.agent_id = "agt_bench";
    entry.project_id = "prj_bench";
    built->tokens_by_hash.emplace(keystore::tokens::hashToken(token), entry);
    built->agents["agt_bench"].status = "active";
    keystore::proxy::ProjectEntry& project = built->projects["prj_bench"];
    project.data_key = std::make_shared<const Secret>(std::string(data_key.reveal()));
    keystore::proxy::ProviderEntry& setting = project.providers["openai"];
    setting.mode = "byok";
    setting.enabled = true;
    setting.byok_credential = std::make_shared<const keystore::proxy::CredentialEntry>(
        keystore::proxy::CredentialEntry{"cred_bench", ciphertext});
    snapshot = built;

    headers.set(http::field::authorization, "Bearer " + token);
    headers.set(http::field::content_type, "application/json");
  }

  Secret data_key;
  std::string token;
  keystore::vault::CredentialBinding binding;
  std::string ciphertext;
  std::shared_ptr<const keystore::proxy::Snapshot> snapshot;
  http::fields headers;
};

const ByokFixture& byok() {
  static const ByokFixture kFixture;
  return kFixture;
}

void BM_AdmitRequest(benchmark::State& state) {
  const ByokFixture& fixture = byok();
  int64_t start = allocationCount();
  for (auto _ : state) {
    keystore::proxy::AdmissionContext context;
    context.snapshot = fixture.snapshot;
    auto admitted = keystore::proxy::admitRequest("POST", "/v1/openai/v1/chat/completions",
                                                  fixture.headers, catalog(), kNow, context);
    if (!admitted) {
      state.SkipWithError("admitRequest failed");
      break;
    }
    benchmark::DoNotOptimize(context);
  }
  state.counters["new"] =
      static_cast<double>(allocationCount() - start) /
      static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1));
}
BENCHMARK(BM_AdmitRequest);

void BM_ResolveCredentialTwice(benchmark::State& state) {
  const ByokFixture& fixture = byok();
  keystore::proxy::AdmissionContext context;
  context.snapshot = fixture.snapshot;
  if (!keystore::proxy::admitRequest("POST", "/v1/openai/v1/chat/completions", fixture.headers,
                                     catalog(), kNow, context)) {
    state.SkipWithError("admitRequest failed");
    return;
  }
  for (auto _ : state) {
    auto first = keystore::proxy::resolveCredential(context, kNow);
    auto second = keystore::proxy::resolveCredential(context, kNow);
    if (!first || !second) {
      state.SkipWithError("resolveCredential failed");
      break;
    }
    benchmark::DoNotOptimize(first);
    benchmark::DoNotOptimize(second);
  }
}
BENCHMARK(BM_ResolveCredentialTwice);

void BM_DecryptCredentialReference(benchmark::State& state) {
  const ByokFixture& fixture = byok();
  for (auto _ : state) {
    auto plaintext = keystore::vault::Vault::decryptCredential(fixture.data_key, fixture.binding,
                                                               fixture.ciphertext);
    benchmark::DoNotOptimize(plaintext);
  }
}
BENCHMARK(BM_DecryptCredentialReference);

}  // namespace

int main(int argc, char** argv) {
  return keystore::bench::runWithRatios(
      argc, argv, [](const keystore::bench::RatioReporter& reporter) {
        reporter.printRatio("meter small chat", "BM_MeterSmallChat", "BM_ParseSmallReference");
        reporter.printRatio("meter streamed small chat", "BM_MeterStreamedChat",
                            "BM_ParseSmallReference");
        reporter.printRatio("meter 20 KB chat", "BM_MeterLargeChat", "BM_ParseLargeReference");
        reporter.printRatio("one pass, small body", "BM_SummarizeSmall", "BM_ParseSmallReference");
        reporter.printRatio("one pass, 20 KB body", "BM_SummarizeLarge", "BM_ParseLargeReference");
        reporter.printRatio("admit request", "BM_AdmitRequest", "BM_DecryptCredentialReference");
        reporter.printRatio("resolve credential twice", "BM_ResolveCredentialTwice",
                            "BM_DecryptCredentialReference");
      });
}
