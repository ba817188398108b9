#include "metering/ledger_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "common/thread_name.h"

namespace keystore::metering {
namespace {

// The maximum capacity a cleared row's string keeps. Ids, paths and price lists fit in it.
constexpr size_t kMaxKeptCapacity = 512;
// The maximum capacity a thread's buffer keeps between batches: about 16,000 rows, which is
// 50 ms of one thread at 300,000 requests per second. A larger burst is freed after its commit.
constexpr size_t kMaxKeptBufferBytes = 4 << 20;

// The maximum number of row views each of the writer's two view vectors keeps between batches,
// about 5 MB each. The views of a larger burst are freed after its commit, like its bytes.
constexpr size_t kMaxKeptViews = 16'384;

std::atomic<uint64_t> next_writer_id{1};

// The producer this thread last used, and the writer it belongs to.
struct ProducerCache {
  uint64_t writer_id = 0;
  void* producer = nullptr;
};
thread_local ProducerCache producer_cache;

// References to every member of `row`, a LedgerRow or LedgerRowView, in declaration order. The
// binding names every member, so a field added to either type stops this from compiling until
// it is listed here too, and encoding, decoding and clearing, which all go through this list,
// never miss one.
template <typename Row>
auto members(Row& row) {
  auto& [time, request_id, project_id, agent_id, token_id, provider, mode, credential_id, method,
         path, upstream_status, outcome, bytes_in, bytes_out, latency_ms, model, units,
         usage_reported, prices, cost_micros, billable] = row;
  return std::tie(time, request_id, project_id, agent_id, token_id, provider, mode, credential_id,
                  method, path, upstream_status, outcome, bytes_in, bytes_out, latency_ms, model,
                  units, usage_reported, prices, cost_micros, billable);
}

using RowMembers = decltype(members(std::declval<const store::LedgerRow&>()));
using ViewMembers = decltype(members(std::declval<store::LedgerRowView&>()));

// A view's member at each position is the row's, with std::string_view for std::string.
template <size_t... I>
consteval bool viewMatchesRow(std::index_sequence<I...>) {
  auto matches = []<size_t N>() {
    using RowField = std::remove_cvref_t<std::tuple_element_t<N, RowMembers>>;
    using ViewField = std::remove_cvref_t<std::tuple_element_t<N, ViewMembers>>;
    if constexpr (std::is_same_v<RowField, std::string>) {
      return std::is_same_v<ViewField, std::string_view>;
    } else {
      return std::is_same_v<RowField, ViewField> && std::is_trivially_copyable_v<RowField>;
    }
  };
  return (matches.template operator()<I>() && ...);
}
static_assert(std::tuple_size_v<RowMembers> == std::tuple_size_v<ViewMembers>);
static_assert(viewMatchesRow(std::make_index_sequence<std::tuple_size_v<RowMembers>>()));

// The encoding of a row: each member in declaration order, a string as its 32-bit length and
// its bytes, anything else as its object representation. Both ends are this process.
template <typename T>
size_t encodedSize(const T& field) {
  if constexpr (std::is_same_v<T, std::string>) {
    return sizeof(uint32_t) + field.size();
  } else {
    return sizeof(T);
  }
}

template <typename T>
char* encodeField(char* out, const T& field) {
  if constexpr (std::is_same_v<T, std::string>) {
    const auto size = static_cast<uint32_t>(field.size());
    std::memcpy(out, &size, sizeof size);
    std::memcpy(out + sizeof size, field.data(), field.size());
    return out + sizeof size + field.size();
  } else {
    std::memcpy(out, &field, sizeof(T));
    return out + sizeof(T);
  }
}

template <typename T>
const char* decodeField(const char* in, T& field) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    uint32_t size = 0;
    std::memcpy(&size, in, sizeof size);
    field = std::string_view(in + sizeof size, size);
    return in + sizeof size + size;
  } else {
    std::memcpy(&field, in, sizeof(T));
    return in + sizeof(T);
  }
}

void encodeRow(const store::LedgerRow& row, std::string& out) {
  auto fields = members(row);
  const size_t size =
      std::apply([](const auto&... field) { return (encodedSize(field) + ...); }, fields);
  // resize() rather than resize_and_overwrite(): with g++ 12.2, growing a string with it left a
  // wrong length (five appends of 20 bytes to "abc" gave 480 bytes, not 103).
  const size_t start = out.size();
  out.resize(start + size);
  char* cursor = out.data() + start;
  std::apply([&](const auto&... field) { ((cursor = encodeField(cursor, field)), ...); }, fields);
}

const char* decodeRow(const char* in, store::LedgerRowView& view) {
  std::apply([&](auto&... field) { ((in = decodeField(in, field)), ...); }, members(view));
  return in;
}

// Empties the row's strings, keeping capacity up to kMaxKeptCapacity, and zeroes the rest, so
// a reused row never carries a value into the next request.
void clearKeepingCapacity(store::LedgerRow& row) {
  auto clearField = [](auto& field) {
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::string>) {
      // A rare long value (a path near the header limit) would otherwise pin its capacity in
      // the caller's row for the life of the process.
      if (field.capacity() > kMaxKeptCapacity) {
        std::string().swap(field);
      }
      field.clear();
    } else {
      field = {};
    }
  };
  std::apply([&](auto&... fields) { (clearField(fields), ...); }, members(row));
}

}  // namespace

LedgerWriter::LedgerWriter(store::Store& store, std::chrono::milliseconds flush_interval)
    : store_(store),
      flush_interval_(flush_interval),
      id_(next_writer_id.fetch_add(1, std::memory_order_relaxed)),
      thread_([this] { run(); }) {}

LedgerWriter::~LedgerWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

LedgerWriter::Producer& LedgerWriter::producer() {
  if (producer_cache.writer_id == id_) {
    return *static_cast<Producer*>(producer_cache.producer);
  }
  // First use from this thread, or this thread used another writer since: a thread keeps one
  // producer per writer, so alternating between writers does not add producers.
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(producers_mutex_);
  Producer* found = nullptr;
  for (auto& candidate : producers_) {
    if (candidate->owner == me) {
      found = candidate.get();
      break;
    }
  }
  if (found == nullptr) {
    found = producers_.emplace_back(std::make_unique<Producer>()).get();
    found->owner = me;
  }
  producer_cache = ProducerCache{.writer_id = id_, .producer = found};
  return *found;
}

void LedgerWriter::append(store::LedgerRow& row) {
  Producer& mine = producer();
  {
    // Contended only for the moment the writer takes the buffer, once per flush interval.
    std::lock_guard lock(mine.mutex);
    encodeRow(row, mine.bytes);
    ++mine.rows;
  }
  clearKeepingCapacity(row);
}

void LedgerWriter::appendDurable(store::LedgerRow& row) {
  append(row);
  flush();
}

void LedgerWriter::flush() {
  std::unique_lock lock(mutex_);
  // The next cycle to start takes every buffer after this point, so it contains every row
  // appended before the call. A cycle already under way may have taken its buffers earlier.
  const uint64_t target = cycles_started_ + 1;
  flush_requested_ = true;
  wake_.notify_all();
  committed_.wait(lock, [&] { return cycles_committed_ >= target; });
}

uint64_t LedgerWriter::failedRows() const {
  std::lock_guard lock(mutex_);
  return failed_rows_;
}

size_t LedgerWriter::takeBatch() {
  views_.clear();
  {
    std::lock_guard list_lock(producers_mutex_);
    for (auto& producer : producers_) {
      // The buffer committed last time goes back to the producer, emptied.
      producer->draining.clear();
      if (producer->draining.capacity() > kMaxKeptBufferBytes) {
        std::string().swap(producer->draining);
      }
      size_t rows = 0;
      {
        std::lock_guard lock(producer->mutex);
        producer->bytes.swap(producer->draining);
        rows = producer->rows;
        producer->rows = 0;
      }
      const char* cursor = producer->draining.data();
      for (size_t i = 0; i < rows; ++i) {
        cursor = decodeRow(cursor, views_.emplace_back());
      }
    }
  }
  orderByTime();
  return views_.size();
}

// One thread's rows are in time order, but different threads' rows overlap. Inserted in time
// order, a batch adds to the end of the time indexes instead of splitting pages in their middle
// (bench/ledger measures the cost). The sort is stable, so rows of one millisecond keep their
// order.
void LedgerWriter::orderByTime() {
  auto by_time = [](const store::LedgerRowView& a, const store::LedgerRowView& b) {
    return a.time < b.time;
  };
  if (std::ranges::is_sorted(views_, by_time)) {
    return;
  }
  // Sorting positions moves 4 bytes per step instead of a whole view.
  order_.resize(views_.size());
  std::iota(order_.begin(), order_.end(), uint32_t{0});
  std::ranges::stable_sort(order_, {}, [this](uint32_t i) { return views_[i].time; });
  ordered_views_.clear();
  ordered_views_.reserve(views_.size());
  for (uint32_t i : order_) {
    ordered_views_.push_back(views_[i]);
  }
  views_.swap(ordered_views_);
}

void LedgerWriter::run() {
  nameThisThread("ks-ledger");
  while (true) {
    uint64_t cycle = 0;
    bool stop = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, flush_interval_, [&] { return stopping_ || flush_requested_; });
      flush_requested_ = false;
      cycle = ++cycles_started_;
      stop = stopping_;
    }
    if (takeBatch() > 0) {
      commit(views_);
    }
    // orderByTime() swaps the two vectors, so either may hold the larger capacity.
    if (views_.capacity() > kMaxKeptViews || ordered_views_.capacity() > kMaxKeptViews) {
      std::vector<store::LedgerRowView>().swap(views_);
      std::vector<store::LedgerRowView>().swap(ordered_views_);
      std::vector<uint32_t>().swap(order_);
    }
    {
      std::lock_guard lock(mutex_);
      cycles_committed_ = cycle;
    }
    committed_.notify_all();
    // Appends end before the destructor starts, so the cycle that saw stopping_ took them all.
    if (stop) {
      return;
    }
  }
}

void LedgerWriter::commit(std::span<const store::LedgerRowView> batch) {
  auto result = store_.appendLedger(batch);
  if (!result) {
    spdlog::warn("ledger batch of {} rows failed, retrying once: {}", batch.size(),
                 result.error().message);
    result = store_.appendLedger(batch);
  }
  if (!result) {
    spdlog::error("ledger batch of {} rows lost: {}", batch.size(), result.error().message);
    std::lock_guard lock(mutex_);
    failed_rows_ += batch.size();
  }
}

}  // namespace keystore::metering
