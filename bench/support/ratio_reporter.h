// RatioReporter: Google Benchmark's console output, followed by lines that compare two
// benchmarks of the same run, so a figure always comes with its reference measured under the
// same machine load.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace keystore::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // Prints every run as usual and keeps its CPU time per iteration.
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        cpu_ns_[run.benchmark_name()] = run.GetAdjustedCPUTime();
      }
    }
  }

  // Prints `measured` against `reference` as CPU time per `unit` (an iteration divided by
  // `units_per_iteration`) and their ratio. Prints nothing when either did not run.
  void printRatio(const char* what, const std::string& measured, const std::string& reference,
                  double units_per_iteration = 1, const char* unit = "") const {
    auto found = cpu_ns_.find(measured);
    auto base = cpu_ns_.find(reference);
    if (found == cpu_ns_.end() || base == cpu_ns_.end() || base->second <= 0) {
      return;
    }
    std::printf("%-26s %8.0f ns%s vs reference %8.0f ns%s: ratio %.2f\n", what,
                found->second / units_per_iteration, unit, base->second / units_per_iteration, unit,
                found->second / base->second);
  }

 private:
  std::map<std::string, double> cpu_ns_;
};

// Runs the benchmarks the command line selects with a RatioReporter, then calls
// `print_ratios(reporter)`. Returns main()'s exit status (1 for an unknown argument).
template <typename PrintRatios>
int runWithRatios(int argc, char** argv, PrintRatios print_ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\n");
  print_ratios(reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace keystore::bench
