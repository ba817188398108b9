#include "metering/ledger_writer.h"

#include <spdlog/spdlog.h>

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

void LedgerWriter::append(store::LedgerRow row) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(row));
  ++enqueued_sequence_;
}

void LedgerWriter::appendDurable(store::LedgerRow row) {
  std::unique_lock lock(mutex_);
  queue_.push_back(std::move(row));
  uint64_t mine = ++enqueued_sequence_;
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
  std::vector<store::LedgerRow> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, flush_interval_, [&] { return stopping_ || flush_requested_; });
    flush_requested_ = false;
    batch.swap(queue_);
    uint64_t sequence = enqueued_sequence_;
    bool stop = stopping_;
    lock.unlock();

    if (!batch.empty()) {
      commit(batch);
      batch.clear();
    }

    lock.lock();
    committed_sequence_ = sequence;
    committed_.notify_all();
    if (stop && queue_.empty()) {
      return;
    }
  }
}

void LedgerWriter::commit(std::vector<store::LedgerRow>& batch) {
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
