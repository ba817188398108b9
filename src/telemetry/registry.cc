#include "telemetry/registry.h"

#include <cstring>
#include <stdexcept>
#include <utility>

#include "telemetry/exposition.h"

namespace keystore::telemetry {

namespace {

uint64_t load64(const char* data) {
  uint64_t word;
  std::memcpy(&word, data, sizeof(word));
  return word;
}

uint64_t load32(const char* data) {
  uint32_t word;
  std::memcpy(&word, data, sizeof(word));
  return word;
}

}  // namespace

// Reads the first and last eight bytes (fewer for shorter values) and the length, because
// label values are short and usually differ there. Fixed-size loads keep this to a few
// instructions. A collision costs one more probe, never a wrong result.
uint64_t Label::hashValue(std::string_view value) {
  const char* data = value.data();
  size_t size = value.size();
  uint64_t head = 0;
  uint64_t tail = 0;
  if (size >= 8) {
    head = load64(data);
    tail = load64(data + size - 8);
  } else if (size >= 4) {
    head = load32(data);
    tail = load32(data + size - 4);
  } else if (size > 0) {
    head = static_cast<unsigned char>(data[0]);
    tail = (static_cast<unsigned char>(data[size / 2]) << 8) |
           static_cast<unsigned char>(data[size - 1]);
  }
  uint64_t hash = (head * 0x9e3779b97f4a7c15ull) ^ (tail + size);
  hash *= 0xc2b2ae3d27d4eb4full;
  return hash ^ (hash >> 29);
}

Label::Label(std::string name, std::vector<std::string> values) : name_(std::move(name)) {
  if (!isValidLabelName(name_)) {
    throw std::invalid_argument("invalid label name: \"" + name_ + "\"");
  }

  for (std::string& value : values) {
    if (std::find(values_.begin(), values_.end(), value) == values_.end()) {
      values_.push_back(std::move(value));
    }
  }
  auto other = std::find(values_.begin(), values_.end(), kOtherValue);
  if (other == values_.end()) {
    values_.emplace_back(kOtherValue);
    other = values_.end() - 1;
  }
  other_index_ = static_cast<size_t>(other - values_.begin());
  if (values_.size() > kMaxValues) {
    throw std::invalid_argument("label \"" + name_ + "\" has " + std::to_string(values_.size()) +
                                " values, more than the maximum of " + std::to_string(kMaxValues));
  }

  for (const std::string& value : values_) {
    std::string escaped;
    appendEscapedLabelValue(escaped, value);
    escaped_values_.push_back(std::move(escaped));
  }
  size_t slot_count = 4;
  while (slot_count < 2 * values_.size()) {
    slot_count *= 2;
  }
  slots_.assign(slot_count, 0);
  slot_mask_ = slot_count - 1;
  for (size_t position = 0; position < values_.size(); ++position) {
    size_t slot = hashValue(values_[position]) & slot_mask_;
    while (slots_[slot] != 0) {
      slot = (slot + 1) & slot_mask_;
    }
    slots_[slot] = static_cast<uint16_t>(position + 1);
  }
}

size_t Label::indexOf(std::string_view value) const {
  for (size_t slot = hashValue(value) & slot_mask_; slots_[slot] != 0;
       slot = (slot + 1) & slot_mask_) {
    size_t position = slots_[slot] - 1u;
    if (values_[position] == value) {
      return position;
    }
  }
  return other_index_;
}

namespace internal {

ShardedCells::ShardedCells(size_t cell_count)
    : lines_per_shard_((cell_count + kCellsPerLine - 1) / kCellsPerLine),
      lines_(std::make_unique<CellLine[]>(lines_per_shard_ * kShards)) {}

uint64_t ShardedCells::total(size_t index) const {
  uint64_t sum = 0;
  for (size_t shard = 0; shard < kShards; ++shard) {
    const CellLine& line = lines_[shard * lines_per_shard_ + index / kCellsPerLine];
    sum += line.cells[index % kCellsPerLine].load(std::memory_order_relaxed);
  }
  return sum;
}

size_t assignShard() {
  static std::atomic<size_t> next_shard{0};
  return next_shard.fetch_add(1, std::memory_order_relaxed) % kShards;
}

}  // namespace internal

uint64_t Histogram::bucketCount(size_t bucket) const {
  return cells_->total(first_cell_ + bucket);
}

uint64_t Histogram::count() const {
  uint64_t count = 0;
  for (size_t bucket = 0; bucket <= bounds_->size(); ++bucket) {
    count += bucketCount(bucket);
  }
  return count;
}

std::chrono::nanoseconds Histogram::sum() const {
  return std::chrono::nanoseconds(
      static_cast<int64_t>(cells_->total(first_cell_ + bounds_->size() + 1)));
}

Family::Family(std::string name, std::string help, std::vector<Label> labels)
    : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {
  if (!isValidMetricName(name_)) {
    throw std::invalid_argument("invalid metric name: \"" + name_ + "\"");
  }

  for (size_t i = 0; i < labels_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (labels_[i].name() == labels_[j].name()) {
        throw std::invalid_argument("metric " + name_ + " repeats the label \"" +
                                    labels_[i].name() + "\"");
      }
    }
  }

  // Row-major strides. The size check runs at every step, so the product cannot overflow.
  strides_.assign(labels_.size(), 1);
  for (size_t i = labels_.size(); i-- > 0;) {
    strides_[i] = series_count_;
    series_count_ *= labels_[i].size();
    if (series_count_ > kMaxSeries) {
      throw std::invalid_argument("metric " + name_ + " has more than " +
                                  std::to_string(kMaxSeries) + " label combinations");
    }
  }
}

size_t Family::seriesOf(std::initializer_list<std::string_view> values) const {
  size_t series = 0;
  const std::string_view* value = values.begin();
  for (size_t i = 0; i < labels_.size(); ++i) {
    size_t position =
        value != values.end() ? labels_[i].indexOf(*value++) : labels_[i].otherIndex();
    series += position * strides_[i];
  }
  return series;
}

size_t Family::seriesAt(std::initializer_list<size_t> positions) const {
  size_t series = 0;
  const size_t* position = positions.begin();
  for (size_t i = 0; i < labels_.size(); ++i) {
    size_t index = labels_[i].otherIndex();
    if (position != positions.end()) {
      if (*position < labels_[i].size()) {
        index = *position;
      }
      ++position;
    }
    series += index * strides_[i];
  }
  return series;
}

bool Family::hasLabel(std::string_view label_name) const {
  return std::any_of(labels_.begin(), labels_.end(),
                     [label_name](const Label& label) { return label.name() == label_name; });
}

void Family::appendHeader(std::string& out, std::string_view type) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  appendEscapedHelp(out, help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type;
  out += '\n';
}

void Family::appendLabels(std::string& out, size_t series, std::string_view extra_name,
                          std::string_view extra_value) const {
  if (labels_.empty() && extra_name.empty()) {
    return;
  }

  out += '{';
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += labels_[i].name();
    out += "=\"";
    out += labels_[i].escapedValue((series / strides_[i]) % labels_[i].size());
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!labels_.empty()) {
      out += ',';
    }
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

CounterFamily::CounterFamily(std::string name, std::string help, std::vector<Label> labels)
    : Family(std::move(name), std::move(help), std::move(labels)), cells_(seriesCount()) {}

void CounterFamily::render(std::string& out) const {
  appendHeader(out, "counter");
  for (size_t series = 0; series < seriesCount(); ++series) {
    uint64_t value = cells_.total(series);
    if (value == 0) {
      continue;
    }
    out += name();
    appendLabels(out, series);
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  }
}

namespace {

std::vector<uint64_t> checkedBounds(const std::string& name,
                                    const std::vector<std::chrono::nanoseconds>& bounds) {
  if (bounds.size() > HistogramFamily::kMaxBuckets) {
    throw std::invalid_argument("histogram " + name + " has more than " +
                                std::to_string(HistogramFamily::kMaxBuckets) + " buckets");
  }
  std::vector<uint64_t> nanos;
  for (std::chrono::nanoseconds bound : bounds) {
    if (bound.count() <= 0 ||
        (!nanos.empty() && static_cast<uint64_t>(bound.count()) <= nanos.back())) {
      throw std::invalid_argument("histogram " + name +
                                  " needs positive, strictly increasing bucket bounds");
    }
    nanos.push_back(static_cast<uint64_t>(bound.count()));
  }
  return nanos;
}

}  // namespace

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<Label> labels,
                                 const std::vector<std::chrono::nanoseconds>& bounds)
    : Family(std::move(name), std::move(help), std::move(labels)),
      bounds_(checkedBounds(this->name(), bounds)),
      cells_(seriesCount() * cellsPerSeries()) {
  if (hasLabel("le")) {
    throw std::invalid_argument("histogram " + this->name() + " may not have a label named \"le\"");
  }
  for (std::chrono::nanoseconds bound : bounds) {
    std::string le;
    appendSeconds(le, bound);
    le_values_.push_back(std::move(le));
  }
}

void HistogramFamily::render(std::string& out) const {
  appendHeader(out, "histogram");
  std::vector<uint64_t> counts(bounds_.size() + 1);
  for (size_t series = 0; series < seriesCount(); ++series) {
    size_t first_cell = series * cellsPerSeries();
    uint64_t count = 0;
    for (size_t bucket = 0; bucket < counts.size(); ++bucket) {
      counts[bucket] = cells_.total(first_cell + bucket);
      count += counts[bucket];
    }
    if (count == 0) {
      continue;
    }

    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < counts.size(); ++bucket) {
      cumulative += counts[bucket];
      out += name();
      out += "_bucket";
      appendLabels(out, series, "le", bucket < le_values_.size() ? le_values_[bucket] : "+Inf");
      out += ' ';
      out += std::to_string(cumulative);
      out += '\n';
    }
    out += name();
    out += "_sum";
    appendLabels(out, series);
    out += ' ';
    appendSeconds(out, std::chrono::nanoseconds(
                           static_cast<int64_t>(cells_.total(first_cell + bounds_.size() + 1))));
    out += '\n';
    out += name();
    out += "_count";
    appendLabels(out, series);
    out += ' ';
    out += std::to_string(count);
    out += '\n';
  }
}

void Registry::checkNewName(const std::string& name, std::string_view required_suffix) const {
  if (!name.ends_with(required_suffix)) {
    throw std::invalid_argument("metric name " + name + " must end in " +
                                std::string(required_suffix));
  }
  for (const auto& family : families_) {
    if (family->name() == name) {
      throw std::invalid_argument("metric " + name + " is already registered");
    }
  }
}

CounterFamily& Registry::addCounter(std::string name, std::string help, std::vector<Label> labels) {
  std::lock_guard lock(mutex_);
  checkNewName(name, "_total");
  auto family =
      std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(labels));
  CounterFamily& added = *family;
  families_.push_back(std::move(family));
  return added;
}

HistogramFamily& Registry::addHistogram(std::string name, std::string help,
                                        std::vector<Label> labels,
                                        const std::vector<std::chrono::nanoseconds>& bounds) {
  std::lock_guard lock(mutex_);
  checkNewName(name, "_seconds");
  auto family = std::make_unique<HistogramFamily>(std::move(name), std::move(help),
                                                  std::move(labels), bounds);
  HistogramFamily& added = *family;
  families_.push_back(std::move(family));
  return added;
}

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : families_) {
    family->render(out);
  }
  return out;
}

}  // namespace keystore::telemetry
