// LedgerWriter: takes ledger rows from the request path and writes them to the Store in
// batches on its own thread (group commit).
//
// append() only moves the row into a queue under a short lock, so the request path never
// waits for the database. The writer commits whatever is queued every `flush_interval`
// (default 50 ms); a crash loses at most the rows of that window. With strict sync,
// appendDurable() blocks until the row's batch is committed.
//
// Thread-safety: append() and appendDurable() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"

namespace keystore::metering {

class LedgerWriter {
 public:
  LedgerWriter(store::Store& store, std::chrono::milliseconds flush_interval);
  ~LedgerWriter();  // flushes what is queued, then stops

  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;

  void append(store::LedgerRow row);
  // Returns once the row is committed (or the commit failed and was logged).
  void appendDurable(store::LedgerRow row);

  // Commits everything queued so far and returns when done.
  void flush();

  // Rows that failed to commit (counted, logged; the batch is retried once).
  uint64_t failedRows() const;

 private:
  void run();
  void commit(std::vector<store::LedgerRow>& batch);

  store::Store& store_;
  std::chrono::milliseconds flush_interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable committed_;
  std::vector<store::LedgerRow> queue_;
  uint64_t enqueued_sequence_ = 0;
  uint64_t committed_sequence_ = 0;
  uint64_t failed_rows_ = 0;
  bool flush_requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace keystore::metering
