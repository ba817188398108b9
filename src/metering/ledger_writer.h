// LedgerWriter: takes ledger rows from the request path and writes them to the Store in
// batches on its own thread (group commit).
//
// append() only moves the row into a queue under a short lock, so the request path never
// waits for the database. The writer commits whatever is queued every `flush_interval`
// (default 50 ms); a crash loses at most the rows of that window. With strict sync,
// appendDurable() blocks until the row's batch is committed.
//
// Rows are recycled: the queue contains the rows of an earlier, committed batch, cleared by the
// writer thread with their strings' capacity kept, and append() hands one back in exchange
// for the row it takes. A caller that fills the same row for every request therefore makes no
// allocation for it once its strings have grown to the usual sizes.
//
// Thread-safety: append() and appendDurable() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
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

  // Queues the row's contents and leaves in `row` a cleared row (all strings empty, all numbers
  // zero), recycled when one is available.
  void append(store::LedgerRow& row);
  void append(store::LedgerRow&& row) { append(row); }
  // Queues the row as append() does and returns once it is committed (or the commit failed and was
  // logged).
  void appendDurable(store::LedgerRow& row);
  void appendDurable(store::LedgerRow&& row) { appendDurable(row); }

  // Commits everything queued so far and returns when done.
  void flush();

  // Rows that failed to commit (counted, logged; the batch is retried once).
  uint64_t failedRows() const;

 private:
  // Moves the row into the queue and puts a recycled or empty row in its place. Requires the
  // lock.
  void enqueue(store::LedgerRow& row);
  void run();
  void commit(std::span<const store::LedgerRow> batch);

  store::Store& store_;
  std::chrono::milliseconds flush_interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable committed_;
  // Rows [0, queued_) wait for the writer, and the rest are cleared rows kept for reuse.
  std::vector<store::LedgerRow> queue_;
  size_t queued_ = 0;
  uint64_t enqueued_sequence_ = 0;
  uint64_t committed_sequence_ = 0;
  uint64_t failed_rows_ = 0;
  bool flush_requested_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace keystore::metering
