// Micro-benchmark of the proxy's metrics: what recording one request costs, against a bare
// relaxed atomic increment measured in the same run.
//
// One request's metrics are what the proxy records per request: ProxyMetrics::requestFinished
// (one counter and two duration histograms) and two ProxyMetrics::usage calls (input and
// output tokens). Every thread records the same provider, mode and outcome, the worst case for
// contention. The reference increments one std::atomic<uint64_t> shared by all threads with
// memory_order_relaxed, the cost of the naive unsharded counter, and a second reference gives
// each thread an atomic on a cache line of its own, the floor of any atomic counter.
//
// Figures are CPU time per iteration: the CPU time of all threads divided by the iterations of
// all threads, so with 2 threads they are the CPU cost of one recorded request while another
// thread records at the same time. After the benchmarks, the program prints each figure as a
// ratio to the references at the same thread count.
//
// Usage: telemetry_bench [Google Benchmark flags, e.g. --benchmark_filter=record]

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "telemetry/proxy_metrics.h"

namespace {

using keystore::telemetry::Counter;
using keystore::telemetry::Histogram;
using keystore::telemetry::ProxyMetrics;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// The provider ids of the built-in catalog at the time of writing.
const std::vector<std::string> kProviders = {"openai",   "anthropic", "resend", "groq",  "twilio",
                                             "pinecone", "neon",      "stripe", "tavily"};

// Durations cycled through, so that observations spread over several buckets.
constexpr std::array<nanoseconds, 8> kUpstream = {
    milliseconds(3),    milliseconds(40), milliseconds(180),  milliseconds(700),
    milliseconds(1200), milliseconds(9),  milliseconds(2600), milliseconds(31000)};
constexpr std::array<nanoseconds, 8> kOverhead = {
    microseconds(12), microseconds(30),  microseconds(45),  microseconds(70),
    microseconds(90), microseconds(140), microseconds(600), microseconds(2000)};

ProxyMetrics& sharedMetrics() {
  static ProxyMetrics metrics(kProviders);
  return metrics;
}

std::atomic<uint64_t> shared_atomic{0};

struct alignas(64) PaddedAtomic {
  std::atomic<uint64_t> value{0};
};
std::array<PaddedAtomic, 64> per_thread_atomics;

void sharedAtomicIncrement(benchmark::State& state) {
  for (auto _ : state) {
    shared_atomic.fetch_add(1, std::memory_order_relaxed);
  }
}
BENCHMARK(sharedAtomicIncrement)->Threads(1)->Threads(2);

void perThreadAtomicIncrement(benchmark::State& state) {
  std::atomic<uint64_t>& own = per_thread_atomics[state.thread_index()].value;
  for (auto _ : state) {
    own.fetch_add(1, std::memory_order_relaxed);
  }
}
BENCHMARK(perThreadAtomicIncrement)->Threads(1)->Threads(2);

// The call sequence the proxy makes, with string labels looked up on every call.
void recordRequest(benchmark::State& state) {
  ProxyMetrics& metrics = sharedMetrics();
  size_t i = 0;
  for (auto _ : state) {
    size_t slot = i++ % kUpstream.size();
    metrics.requestFinished("openai", "byok", "ok", kUpstream[slot], kOverhead[slot]);
    metrics.usage("openai", "byok", "input_tokens", 812);
    metrics.usage("openai", "byok", "output_tokens", 95);
  }
}
BENCHMARK(recordRequest)->Threads(1)->Threads(2);

// The same records through handles resolved once, as a caller that caches them would do.
void recordRequestCachedHandles(benchmark::State& state) {
  keystore::telemetry::Registry registry;
  std::vector<std::string> providers = kProviders;
  auto& requests =
      registry.addCounter("bench_requests_total", "Requests.",
                          {keystore::telemetry::Label("provider", providers),
                           keystore::telemetry::Label("mode", {"byok", "marketplace"}),
                           keystore::telemetry::Label("outcome", {"ok", "upstream_error"})});
  auto& upstream = registry.addHistogram("bench_upstream_seconds", "Upstream.",
                                         {keystore::telemetry::Label("provider", providers)},
                                         ProxyMetrics::upstreamBounds());
  auto& overhead = registry.addHistogram("bench_overhead_seconds", "Overhead.",
                                         {keystore::telemetry::Label("provider", providers)},
                                         ProxyMetrics::overheadBounds());
  auto& units =
      registry.addCounter("bench_units_total", "Units.",
                          {keystore::telemetry::Label("provider", providers),
                           keystore::telemetry::Label("unit", {"input_tokens", "output_tokens"})});
  Counter request_counter = requests.labels({"openai", "byok", "ok"});
  Histogram upstream_histogram = upstream.labels({"openai"});
  Histogram overhead_histogram = overhead.labels({"openai"});
  Counter input_tokens = units.labels({"openai", "input_tokens"});
  Counter output_tokens = units.labels({"openai", "output_tokens"});

  size_t i = 0;
  for (auto _ : state) {
    size_t slot = i++ % kUpstream.size();
    request_counter.inc();
    upstream_histogram.observe(kUpstream[slot]);
    overhead_histogram.observe(kOverhead[slot]);
    input_tokens.inc(812);
    output_tokens.inc(95);
  }
}
BENCHMARK(recordRequestCachedHandles)->Threads(1)->Threads(2);

// One scrape after every provider has traffic, for the cost of GET /metrics.
void renderAfterTraffic(benchmark::State& state) {
  ProxyMetrics metrics(kProviders);
  for (const std::string& provider : kProviders) {
    for (size_t slot = 0; slot < kUpstream.size(); ++slot) {
      metrics.requestFinished(provider, "marketplace", "ok", kUpstream[slot], kOverhead[slot]);
      metrics.usage(provider, "marketplace", "output_tokens", 10);
    }
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = metrics.render();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(renderAfterTraffic)->Unit(benchmark::kMicrosecond);

// Prints every run as usual and keeps its CPU and real time per iteration for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  explicit RatioReporter(OutputOptions options) : ConsoleReporter(options) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) {
        continue;
      }
      double to_nanos = 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
      times_[{run.run_name.function_name, run.threads}] = {run.GetAdjustedCPUTime() * to_nanos,
                                                           run.GetAdjustedRealTime() * to_nanos};
    }
  }

  // With N threads, real time per iteration is wall time divided by the iterations of all
  // threads, so CPU / real time is how many threads actually ran at once. It is about N on
  // idle cores, and less when other processes took the CPU and the threads ran in turn.
  void printRatios() const {
    std::printf(
        "\nCPU ns per iteration, ratio to a relaxed atomic increment (one atomic shared by all "
        "threads / one per thread), and threads running at once (CPU / real time):\n");
    for (int threads : {1, 2}) {
      auto shared = times_.find({"sharedAtomicIncrement", threads});
      auto own = times_.find({"perThreadAtomicIncrement", threads});
      if (shared == times_.end() || own == times_.end()) {
        continue;
      }
      std::printf(
          "  threads=%d references: shared %.1f ns (at once %.2f), per-thread %.1f ns "
          "(at once %.2f)\n",
          threads, shared->second.cpu, shared->second.parallelism(), own->second.cpu,
          own->second.parallelism());
      for (const char* name : {"recordRequest", "recordRequestCachedHandles"}) {
        auto found = times_.find({name, threads});
        if (found == times_.end()) {
          continue;
        }
        std::printf(
            "  threads=%d %-27s %7.1f ns  %5.1fx shared  %5.1fx per-thread  (at once %.2f)\n",
            threads, name, found->second.cpu, found->second.cpu / shared->second.cpu,
            found->second.cpu / own->second.cpu, found->second.parallelism());
      }
    }
  }

 private:
  struct Times {
    double cpu = 0;
    double real = 0;
    double parallelism() const { return real > 0 ? cpu / real : 0; }
  };
  std::map<std::pair<std::string, int64_t>, Times> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  RatioReporter reporter(isatty(fileno(stdout)) != 0 ? benchmark::ConsoleReporter::OO_Defaults
                                                     : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.printRatios();
  benchmark::Shutdown();
  return 0;
}
