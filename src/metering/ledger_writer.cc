#include "metering/ledger_writer.h"

#include <spdlog/spdlog.h>

#include <string>
#include <tuple>
#include <type_traits>

namespace keystore::metering {

LedgerWriter::LedgerWriter(store::Store& store, std::chrono::milliseconds flush_interval)
    : store_(store), flush_interval_(flush_interval), thread_([this] { run(); }) {}

LedgerWriter::~LedgerWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

namespace {

// Enough rows for a batch at tens of thousands of requests per second. Rows of a larger burst
// are freed after their commit rather than kept.
constexpr size_t kMaxRecycledRows = 4096;
// The maximum capacity a recycled row's string keeps. Ids, paths and price lists fit in it.
constexpr size_t kMaxKeptCapacity = 512;

// References to every member of `row`. The binding names every member, so a field added to
// LedgerRow stops this from compiling until it is listed here too, and the clearing and
// swapping below, which go through this list, never miss one.
auto members(store::LedgerRow& row) {
  auto& [time, request_id, project_id, agent_id, token_id, provider, mode, credential_id, method,
         path, upstream_status, outcome, bytes_in, bytes_out, latency_ms, model, units,
         usage_reported, prices, cost_micros, billable] = row;
  return std::tie(time, request_id, project_id, agent_id, token_id, provider, mode, credential_id,
                  method, path, upstream_status, outcome, bytes_in, bytes_out, latency_ms, model,
                  units, usage_reported, prices, cost_micros, billable);
}

// Empties the row's strings, keeping capacity up to kMaxKeptCapacity, and zeroes the rest, so
// a recycled row never carries a value into the next request.
void clearKeepingCapacity(store::LedgerRow& row) {
  auto clearField = [](auto& field) {
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::string>) {
      // A rare long value (a path near the header limit) would otherwise pin its capacity in
      // this slot for the life of the process.
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

// Exchanges the rows member by member. std::swap on whole rows moves every string three times
// through a temporary row, where this swaps each string once.
void swapRows(store::LedgerRow& a, store::LedgerRow& b) {
  auto from = members(a);
  auto to = members(b);
  from.swap(to);
}

}  // namespace

void LedgerWriter::enqueue(store::LedgerRow& row) {
  if (queued_ < queue_.size()) {
    swapRows(queue_[queued_], row);
  } else {
    queue_.push_back(std::move(row));
    row = store::LedgerRow{};
  }
  ++queued_;
  ++enqueued_sequence_;
}

void LedgerWriter::append(store::LedgerRow& row) {
  std::lock_guard lock(mutex_);
  enqueue(row);
}

void LedgerWriter::appendDurable(store::LedgerRow& row) {
  std::unique_lock lock(mutex_);
  enqueue(row);
  uint64_t mine = enqueued_sequence_;
  flush_requested_ = true;
  wake_.notify_all();
  committed_.wait(lock, [&] { return committed_sequence_ >= mine; });
}

void LedgerWriter::flush() {
  std::unique_lock lock(mutex_);
  uint64_t target = enqueued_sequence_;
  flush_requested_ = true;
  wake_.notify_all();
  committed_.wait(lock, [&] { return committed_sequence_ >= target; });
}

uint64_t LedgerWriter::failedRows() const {
  std::lock_guard lock(mutex_);
  return failed_rows_;
}

void LedgerWriter::run() {
  // Double buffering: while the writer commits `batch`, appenders fill `queue_`, whose rows
  // are those of the batch before, already cleared.
  std::vector<store::LedgerRow> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, flush_interval_, [&] { return stopping_ || flush_requested_; });
    flush_requested_ = false;
    batch.swap(queue_);
    size_t batch_rows = queued_;
    queued_ = 0;
    uint64_t sequence = enqueued_sequence_;
    bool stop = stopping_;
    lock.unlock();

    if (batch_rows > 0) {
      commit(std::span<const store::LedgerRow>(batch.data(), batch_rows));
      for (size_t i = 0; i < batch_rows; ++i) {
        clearKeepingCapacity(batch[i]);
      }
      if (batch.size() > kMaxRecycledRows) {
        batch.resize(kMaxRecycledRows);
      }
    }

    lock.lock();
    // When nothing was queued during the commit, the cleared rows go back to appenders now
    // rather than at the next wake. Both vectors then contain only cleared rows.
    if (batch_rows > 0 && queued_ == 0) {
      batch.swap(queue_);
    }
    committed_sequence_ = sequence;
    committed_.notify_all();
    if (stop && queued_ == 0) {
      return;
    }
  }
}

void LedgerWriter::commit(std::span<const store::LedgerRow> batch) {
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
