// Registry: the metric families of one process, the storage behind them, and their rendering
// in the Prometheus text exposition format (version 0.0.4).
//
// Label values are bounded by construction. Every label takes its values from a set fixed at
// registration (a Label), and any other string is recorded under the value "other". A family
// therefore never has more series than the product of its label sizes, and a string from a
// request (a token, request id, path or model name) never becomes a new label value.
//
// Recording goes through Counter and Histogram handles, small copyable values that point into
// storage owned by the family. Every cell exists once per shard (kShards copies, each shard on
// cache lines of its own). A thread always adds to the shard it was given on its first
// recording, with a relaxed atomic add, and render() sums the shards. Recording therefore
// takes no lock. Two threads share a shard only after more than kShards threads of the
// process have recorded. They then still count exactly, but contend for cache lines. The
// price is memory: each series takes kShards x 8 bytes per cell, so 128 bytes for a counter.
//
// Thread-safety: handles may be used from any thread at once for as long as the Registry
// lives. Registration and render() take the registry's mutex and may be called from any
// thread. Registration throws std::invalid_argument on an invalid name or an oversized
// family: it belongs to start-up, never to the request path.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::telemetry {

// The value under which a Label records every string outside its set.
inline constexpr std::string_view kOtherValue = "other";

// One label of a metric family: its name and the fixed set of values it can take, in the order
// render() writes them. "other" is appended unless the set lists it, and duplicates are dropped.
class Label {
 public:
  static constexpr size_t kMaxValues = 256;

  // Throws std::invalid_argument on an invalid label name or more than kMaxValues values.
  Label(std::string name, std::vector<std::string> values);

  const std::string& name() const { return name_; }
  size_t size() const { return values_.size(); }
  const std::string& value(size_t index) const { return values_[index]; }
  // The value escaped for the exposition format.
  const std::string& escapedValue(size_t index) const { return escaped_values_[index]; }
  size_t otherIndex() const { return other_index_; }

  // The position of `value` in the set, or otherIndex() when the set does not contain it.
  size_t indexOf(std::string_view value) const;

 private:
  static uint64_t hashValue(std::string_view value);

  std::string name_;
  std::vector<std::string> values_;
  std::vector<std::string> escaped_values_;
  // Open-addressing hash table over values_. Each slot contains a position plus one, or 0
  // when empty. The table is at most half full, so a lookup usually probes one or two slots.
  std::vector<uint16_t> slots_;
  size_t slot_mask_ = 0;
  size_t other_index_ = 0;
};

namespace internal {

inline constexpr size_t kShards = 16;
inline constexpr size_t kCellsPerLine = 8;

// Eight cells on one 64-byte cache line, so that two shards never share a line.
struct alignas(64) CellLine {
  std::array<std::atomic<uint64_t>, kCellsPerLine> cells{};
};

// kShards copies of a family's cells, all starting at zero.
class ShardedCells {
 public:
  explicit ShardedCells(size_t cell_count);

  std::atomic<uint64_t>& cell(size_t shard, size_t index) {
    return lines_[shard * lines_per_shard_ + index / kCellsPerLine].cells[index % kCellsPerLine];
  }

  // The sum of the cell over all shards. Relaxed loads: a value recorded concurrently may be
  // missing, and is counted by the next call.
  uint64_t total(size_t index) const;

 private:
  size_t lines_per_shard_;
  std::unique_ptr<CellLine[]> lines_;
};

// The next shard in round-robin order, for a thread that records for the first time.
size_t assignShard();

// The shard the calling thread records into.
inline size_t currentShard() {
  constexpr size_t kUnassigned = ~size_t{0};
  thread_local size_t shard = kUnassigned;
  if (shard == kUnassigned) [[unlikely]] {
    shard = assignShard();
  }
  return shard;
}

}  // namespace internal

// A handle to one counter series: copyable, valid while its Registry lives.
class Counter {
 public:
  void inc(uint64_t amount = 1) const {
    cells_->cell(internal::currentShard(), index_).fetch_add(amount, std::memory_order_relaxed);
  }

  uint64_t value() const { return cells_->total(index_); }

 private:
  friend class CounterFamily;
  Counter(internal::ShardedCells* cells, size_t index) : cells_(cells), index_(index) {}

  internal::ShardedCells* cells_;
  size_t index_;
};

// A handle to one histogram series of durations: copyable, valid while its Registry lives.
// Bucket i counts the observations d with bound[i-1] < d <= bound[i], and the last bucket
// (+Inf) counts those above every bound. The sum is kept in whole nanoseconds, so it is exact.
class Histogram {
 public:
  // Records one duration. A negative duration counts as zero.
  void observe(std::chrono::nanoseconds duration) const {
    uint64_t nanos = duration.count() > 0 ? static_cast<uint64_t>(duration.count()) : 0;
    size_t bucket = static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), nanos) -
                                        bounds_->begin());
    size_t shard = internal::currentShard();
    cells_->cell(shard, first_cell_ + bucket).fetch_add(1, std::memory_order_relaxed);
    cells_->cell(shard, first_cell_ + bounds_->size() + 1)
        .fetch_add(nanos, std::memory_order_relaxed);
  }

  // Observations in bucket `bucket` alone, not cumulative. The last bucket is +Inf.
  uint64_t bucketCount(size_t bucket) const;
  uint64_t count() const;
  std::chrono::nanoseconds sum() const;

 private:
  friend class HistogramFamily;
  Histogram(internal::ShardedCells* cells, const std::vector<uint64_t>* bounds, size_t first_cell)
      : cells_(cells), bounds_(bounds), first_cell_(first_cell) {}

  internal::ShardedCells* cells_;
  const std::vector<uint64_t>* bounds_;  // upper bounds in nanoseconds, increasing
  size_t first_cell_;                    // buckets, then +Inf, then the sum
};

// The base of counter and histogram families: name, help text, labels and series numbering.
// Series are numbered row-major over the labels (the last label varies fastest), which is
// also the order render() writes them in.
class Family {
 public:
  static constexpr size_t kMaxSeries = 1 << 16;

  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  const Label& label(size_t position) const { return labels_[position]; }
  size_t seriesCount() const { return series_count_; }

 protected:
  // Throws std::invalid_argument on an invalid metric name, a repeated label name, or more
  // than kMaxSeries series.
  Family(std::string name, std::string help, std::vector<Label> labels);

  // The series of the given label values, in label order. A value outside its label's set
  // and a missing value count as "other", and extra values are ignored.
  size_t seriesOf(std::initializer_list<std::string_view> values) const;
  // The series of the given value positions, as returned by Label::indexOf(). An out-of-range
  // or missing position counts as "other".
  size_t seriesAt(std::initializer_list<size_t> positions) const;

  bool hasLabel(std::string_view label_name) const;
  // Appends the "# HELP" and "# TYPE" lines.
  void appendHeader(std::string& out, std::string_view type) const;
  // Appends "{name="value",...}" for the series, with one more label at the end when
  // extra_name is not empty. Appends nothing when there is no label to write.
  void appendLabels(std::string& out, size_t series, std::string_view extra_name = {},
                    std::string_view extra_value = {}) const;

 private:
  friend class Registry;
  virtual void render(std::string& out) const = 0;

  std::string name_;
  std::string help_;
  std::vector<Label> labels_;
  std::vector<size_t> strides_;
  size_t series_count_ = 1;
};

// A counter with labels. Only series with a non-zero value are rendered.
class CounterFamily final : public Family {
 public:
  CounterFamily(std::string name, std::string help, std::vector<Label> labels);

  Counter labels(std::initializer_list<std::string_view> values) {
    return Counter(&cells_, seriesOf(values));
  }
  Counter at(std::initializer_list<size_t> positions) {
    return Counter(&cells_, seriesAt(positions));
  }

 private:
  void render(std::string& out) const override;

  internal::ShardedCells cells_;
};

// A histogram of durations with labels, rendered in seconds. Only series with at least one
// observation are rendered.
class HistogramFamily final : public Family {
 public:
  static constexpr size_t kMaxBuckets = 64;

  // Throws std::invalid_argument unless the bounds are positive, strictly increasing and at
  // most kMaxBuckets, or when a label is named "le".
  HistogramFamily(std::string name, std::string help, std::vector<Label> labels,
                  const std::vector<std::chrono::nanoseconds>& bounds);

  Histogram labels(std::initializer_list<std::string_view> values) {
    return series(seriesOf(values));
  }
  Histogram at(std::initializer_list<size_t> positions) { return series(seriesAt(positions)); }

  size_t bucketCount() const { return bounds_.size(); }

 private:
  Histogram series(size_t index) { return Histogram(&cells_, &bounds_, index * cellsPerSeries()); }
  size_t cellsPerSeries() const { return bounds_.size() + 2; }
  void render(std::string& out) const override;

  std::vector<uint64_t> bounds_;
  std::vector<std::string> le_values_;  // the bounds in seconds, as rendered in le="..."
  internal::ShardedCells cells_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a counter family. The name must end in "_total". Throws std::invalid_argument
  // on an invalid or already registered name and for the reasons Family gives.
  CounterFamily& addCounter(std::string name, std::string help, std::vector<Label> labels);

  // Registers a histogram family of durations. The name must end in "_seconds". Throws
  // std::invalid_argument as addCounter() does and for the reasons HistogramFamily gives.
  HistogramFamily& addHistogram(std::string name, std::string help, std::vector<Label> labels,
                                const std::vector<std::chrono::nanoseconds>& bounds);

  // Every family in registration order, each series in its family's order, as Prometheus
  // text exposition format 0.0.4. The same recorded values always give the same text.
  std::string render() const;

 private:
  void checkNewName(const std::string& name, std::string_view required_suffix) const;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace keystore::telemetry
