#include "telemetry/registry.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "telemetry/exposition.h"

namespace keystore::telemetry {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(ExpositionTest, LabelValueEscaped) {
  std::string out;
  appendEscapedLabelValue(out, "a\\b\"c\nd\te");

  EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
}

TEST(ExpositionTest, HelpEscapedButQuotesKept) {
  std::string out;
  appendEscapedHelp(out, "say \"hi\"\\\nbye");

  EXPECT_EQ(out, "say \"hi\"\\\\\\nbye");
}

TEST(ExpositionTest, SecondsWrittenExactly) {
  auto seconds = [](nanoseconds duration) {
    std::string out;
    appendSeconds(out, duration);
    return out;
  };

  EXPECT_EQ(seconds(nanoseconds(0)), "0");
  EXPECT_EQ(seconds(nanoseconds(-5)), "0");
  EXPECT_EQ(seconds(nanoseconds(1)), "0.000000001");
  EXPECT_EQ(seconds(microseconds(50)), "0.00005");
  EXPECT_EQ(seconds(milliseconds(2500)), "2.5");
  EXPECT_EQ(seconds(std::chrono::seconds(600)), "600");
  EXPECT_EQ(seconds(nanoseconds(3'000'000'007)), "3.000000007");
}

TEST(ExpositionTest, NamesValidated) {
  EXPECT_TRUE(isValidMetricName("keystore_proxy_requests_total"));
  EXPECT_TRUE(isValidMetricName("ns:rule_total"));
  EXPECT_FALSE(isValidMetricName(""));
  EXPECT_FALSE(isValidMetricName("9lives_total"));
  EXPECT_FALSE(isValidMetricName("bad-name_total"));
  EXPECT_TRUE(isValidLabelName("provider"));
  EXPECT_FALSE(isValidLabelName("__name__"));
  EXPECT_FALSE(isValidLabelName("a:b"));
  EXPECT_FALSE(isValidLabelName("1st"));
}

TEST(LabelTest, OtherAppendedAndDuplicatesDropped) {
  Label label("mode", {"byok", "marketplace", "byok"});

  ASSERT_EQ(label.size(), 3u);
  EXPECT_EQ(label.value(0), "byok");
  EXPECT_EQ(label.value(1), "marketplace");
  EXPECT_EQ(label.value(2), "other");
  EXPECT_EQ(label.otherIndex(), 2u);
  EXPECT_EQ(label.indexOf("marketplace"), 1u);
  EXPECT_EQ(label.indexOf("byok"), 0u);
  EXPECT_EQ(label.indexOf("BYOK"), 2u);
  EXPECT_EQ(label.indexOf(""), 2u);
}

TEST(LabelTest, ListedOtherKeepsItsPlace) {
  Label label("state", {"other", "open"});

  ASSERT_EQ(label.size(), 2u);
  EXPECT_EQ(label.otherIndex(), 0u);
  EXPECT_EQ(label.indexOf("open"), 1u);
  EXPECT_EQ(label.indexOf("closed"), 0u);
}

TEST(LabelTest, TooManyValuesRejected) {
  std::vector<std::string> values;
  for (size_t i = 0; i < Label::kMaxValues; ++i) {
    values.push_back("v" + std::to_string(i));
  }

  // kMaxValues listed values plus "other" is one too many.
  EXPECT_THROW(Label("provider", values), std::invalid_argument);
  values.pop_back();
  EXPECT_EQ(Label("provider", values).size(), Label::kMaxValues);
}

TEST(LabelTest, InvalidNameRejected) {
  EXPECT_THROW(Label("bad-name", {"a"}), std::invalid_argument);
}

TEST(RegistryTest, LabelValuesEscapedInRender) {
  Registry registry;
  CounterFamily& family =
      registry.addCounter("test_events_total", "Help with a backslash \\ and\na line feed.",
                          {Label("source", {"back\\slash", "quote\"d", "line\nfeed"})});

  family.labels({"back\\slash"}).inc();
  family.labels({"quote\"d"}).inc(2);
  family.labels({"line\nfeed"}).inc(3);

  EXPECT_EQ(registry.render(),
            "# HELP test_events_total Help with a backslash \\\\ and\\na line feed.\n"
            "# TYPE test_events_total counter\n"
            "test_events_total{source=\"back\\\\slash\"} 1\n"
            "test_events_total{source=\"quote\\\"d\"} 2\n"
            "test_events_total{source=\"line\\nfeed\"} 3\n");
}

TEST(RegistryTest, CounterWithoutLabelsRendersBareName) {
  Registry registry;
  CounterFamily& family = registry.addCounter("test_plain_total", "Plain.", {});

  family.labels({}).inc(5);

  EXPECT_EQ(registry.render(),
            "# HELP test_plain_total Plain.\n"
            "# TYPE test_plain_total counter\n"
            "test_plain_total 5\n");
}

TEST(RegistryTest, LookupByValueAndByPositionAgree) {
  Registry registry;
  Label provider("provider", {"openai", "anthropic"});
  Label mode("mode", {"byok", "marketplace"});
  CounterFamily& family = registry.addCounter("test_requests_total", "Requests.", {provider, mode});

  family.labels({"anthropic", "marketplace"}).inc();
  family.at({provider.indexOf("anthropic"), mode.indexOf("marketplace")}).inc();

  EXPECT_EQ(family.labels({"anthropic", "marketplace"}).value(), 2u);
  EXPECT_EQ(family.labels({"anthropic", "byok"}).value(), 0u);
  EXPECT_EQ(family.labels({"openai", "marketplace"}).value(), 0u);
}

TEST(RegistryTest, MissingOrInvalidLabelInputsCountAsOther) {
  Registry registry;
  CounterFamily& family = registry.addCounter(
      "test_requests_total", "Requests.", {Label("provider", {"openai"}), Label("mode", {"byok"})});

  family.labels({"openai"}).inc();
  family.labels({"openai", "byok", "surplus"}).inc();
  family.at({0, 99}).inc();

  EXPECT_EQ(family.labels({"openai", "other"}).value(), 2u);
  EXPECT_EQ(family.labels({"openai", "byok"}).value(), 1u);
}

TEST(RegistryTest, ZeroSeriesOmitted) {
  Registry registry;
  CounterFamily& family =
      registry.addCounter("test_events_total", "Events.", {Label("kind", {"a", "b"})});

  family.labels({"a"}).inc(0);

  EXPECT_EQ(registry.render(),
            "# HELP test_events_total Events.\n"
            "# TYPE test_events_total counter\n");
}

TEST(RegistryTest, InvalidRegistrationsRejected) {
  Registry registry;
  registry.addCounter("test_events_total", "Events.", {});

  EXPECT_THROW(registry.addCounter("test_events_total", "Again.", {}), std::invalid_argument);
  EXPECT_THROW(registry.addCounter("test_events", "No suffix.", {}), std::invalid_argument);
  EXPECT_THROW(registry.addCounter("test-events_total", "Bad name.", {}), std::invalid_argument);
  EXPECT_THROW(registry.addCounter("test_twice_total", "Repeated label.",
                                   {Label("kind", {"a"}), Label("kind", {"b"})}),
               std::invalid_argument);
  EXPECT_THROW(
      registry.addHistogram("test_wait_milliseconds", "Not seconds.", {}, {milliseconds(1)}),
      std::invalid_argument);
  EXPECT_THROW(registry.addHistogram("test_wait_seconds", "Label le.", {Label("le", {"1"})},
                                     {milliseconds(1)}),
               std::invalid_argument);
  EXPECT_THROW(registry.addHistogram("test_wait_seconds", "Unordered.", {},
                                     {milliseconds(2), milliseconds(1)}),
               std::invalid_argument);
  EXPECT_THROW(registry.addHistogram("test_wait_seconds", "Repeated bound.", {},
                                     {milliseconds(1), milliseconds(1)}),
               std::invalid_argument);
  EXPECT_THROW(registry.addHistogram("test_wait_seconds", "Zero bound.", {}, {nanoseconds(0)}),
               std::invalid_argument);
  std::vector<nanoseconds> too_many(HistogramFamily::kMaxBuckets + 1);
  for (size_t i = 0; i < too_many.size(); ++i) {
    too_many[i] = milliseconds(i + 1);
  }
  EXPECT_THROW(registry.addHistogram("test_wait_seconds", "Too many buckets.", {}, too_many),
               std::invalid_argument);
}

TEST(RegistryTest, TooManySeriesRejected) {
  std::vector<std::string> values;
  for (int i = 0; i < 255; ++i) {
    values.push_back("v" + std::to_string(i));
  }
  Registry registry;

  // 256 x 256 = 65536 series is the limit; one more label of two values exceeds it.
  registry.addCounter("test_wide_total", "Wide.", {Label("a", values), Label("b", values)});
  EXPECT_THROW(registry.addCounter("test_wider_total", "Wider.",
                                   {Label("a", values), Label("b", values), Label("c", {"x"})}),
               std::invalid_argument);
}

TEST(HistogramTest, ValueOnBoundFallsInThatBucket) {
  Registry registry;
  HistogramFamily& family = registry.addHistogram(
      "test_wait_seconds", "Wait.", {}, {microseconds(100), milliseconds(1), milliseconds(10)});
  Histogram histogram = family.labels({});

  histogram.observe(nanoseconds(-3));                     // counts as 0: bucket 0
  histogram.observe(nanoseconds(0));                      // bucket 0
  histogram.observe(microseconds(100));                   // exactly the first bound: bucket 0
  histogram.observe(microseconds(100) + nanoseconds(1));  // just above: bucket 1
  histogram.observe(milliseconds(1));                     // exactly the second bound: bucket 1
  histogram.observe(milliseconds(10));                    // exactly the last bound: bucket 2
  histogram.observe(milliseconds(10) + nanoseconds(1));   // above every bound: +Inf
  histogram.observe(std::chrono::hours(1));               // +Inf

  EXPECT_EQ(histogram.bucketCount(0), 3u);
  EXPECT_EQ(histogram.bucketCount(1), 2u);
  EXPECT_EQ(histogram.bucketCount(2), 1u);
  EXPECT_EQ(histogram.bucketCount(3), 2u);
  EXPECT_EQ(histogram.count(), 8u);
  EXPECT_EQ(histogram.sum(), microseconds(100) * 2 + nanoseconds(1) + milliseconds(1) +
                                 milliseconds(10) * 2 + nanoseconds(1) + std::chrono::hours(1));
  EXPECT_EQ(registry.render(),
            "# HELP test_wait_seconds Wait.\n"
            "# TYPE test_wait_seconds histogram\n"
            "test_wait_seconds_bucket{le=\"0.0001\"} 3\n"
            "test_wait_seconds_bucket{le=\"0.001\"} 5\n"
            "test_wait_seconds_bucket{le=\"0.01\"} 6\n"
            "test_wait_seconds_bucket{le=\"+Inf\"} 8\n"
            "test_wait_seconds_sum 3600.021200002\n"
            "test_wait_seconds_count 8\n");
}

TEST(HistogramTest, LabelledSeriesRenderedSeparately) {
  Registry registry;
  HistogramFamily& family = registry.addHistogram(
      "test_wait_seconds", "Wait.", {Label("provider", {"a", "b"})}, {milliseconds(5)});

  family.labels({"b"}).observe(milliseconds(5));
  family.labels({"a"}).observe(milliseconds(6));

  EXPECT_EQ(registry.render(),
            "# HELP test_wait_seconds Wait.\n"
            "# TYPE test_wait_seconds histogram\n"
            "test_wait_seconds_bucket{provider=\"a\",le=\"0.005\"} 0\n"
            "test_wait_seconds_bucket{provider=\"a\",le=\"+Inf\"} 1\n"
            "test_wait_seconds_sum{provider=\"a\"} 0.006\n"
            "test_wait_seconds_count{provider=\"a\"} 1\n"
            "test_wait_seconds_bucket{provider=\"b\",le=\"0.005\"} 1\n"
            "test_wait_seconds_bucket{provider=\"b\",le=\"+Inf\"} 1\n"
            "test_wait_seconds_sum{provider=\"b\"} 0.005\n"
            "test_wait_seconds_count{provider=\"b\"} 1\n");
}

TEST(ConcurrencyTest, EightThreadsGiveExactTotals) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 100'000;
  Registry registry;
  CounterFamily& counters =
      registry.addCounter("test_events_total", "Events.", {Label("kind", {"a", "b"})});
  HistogramFamily& histograms =
      registry.addHistogram("test_wait_seconds", "Wait.", {}, {microseconds(10)});
  Counter shared = counters.labels({"a"});
  Histogram histogram = histograms.labels({});

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIncrements; ++i) {
        shared.inc();
        counters.labels({"b"}).inc(2);
        // Odd threads land on the bound itself, even threads just above it.
        histogram.observe(microseconds(10) + nanoseconds(t % 2 == 0 ? 1 : 0));
      }
    });
  }
  // Scrapes while the threads record must neither block them nor break.
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(registry.render().empty());
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  constexpr uint64_t kTotal = uint64_t{kThreads} * kIncrements;
  EXPECT_EQ(shared.value(), kTotal);
  EXPECT_EQ(counters.labels({"b"}).value(), 2 * kTotal);
  EXPECT_EQ(histogram.count(), kTotal);
  EXPECT_EQ(histogram.bucketCount(0), kTotal / 2);
  EXPECT_EQ(histogram.bucketCount(1), kTotal / 2);
  EXPECT_EQ(histogram.sum(), microseconds(10) * kTotal + nanoseconds(kTotal / 2));
  std::string text = registry.render();
  EXPECT_NE(text.find("test_events_total{kind=\"a\"} 800000\n"), std::string::npos);
  EXPECT_NE(text.find("test_events_total{kind=\"b\"} 1600000\n"), std::string::npos);
  EXPECT_NE(text.find("test_wait_seconds_count 800000\n"), std::string::npos);
}

TEST(ConcurrencyTest, ThreadsSharingAShardGiveExactTotals) {
  // More threads than shards, so that some threads add to the same cells.
  constexpr int kThreads = 2 * static_cast<int>(internal::kShards) + 1;
  constexpr int kIncrements = 20'000;
  Registry registry;
  Counter counter = registry.addCounter("test_events_total", "Events.", {}).labels({});

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        counter.inc();
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  EXPECT_EQ(counter.value(), uint64_t{kThreads} * kIncrements);
}

}  // namespace
}  // namespace keystore::telemetry
