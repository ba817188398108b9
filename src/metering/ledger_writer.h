// LedgerWriter: takes ledger rows from the request path and writes them to the Store in
// batches on its own thread (group commit).
//
// append() copies the row's fields, back to back, into a byte buffer that belongs to the
// calling thread. The buffer's lock is shared only with the writer, which holds it just to take
// the buffer, so the request path never waits for the database or for another appending thread.
// The writer takes every thread's buffer every `flush_interval` (default 50 ms) and commits the
// rows in them as one batch, binding the text where it lies in the buffer. A crash loses at most
// the rows of that window. With strict sync, appendDurable() blocks until the row is committed.
//
// Why bytes rather than row objects: a queued row whose strings the writer thread read and
// cleared comes back to the request thread with those strings' memory in the other core's cache.
// Refilling it there costs a cache miss per string. A thread's buffer is written in one
// sequential run, and the writer only reads it.
//
// Thread-safety: append(), appendDurable() and flush() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace keystore::metering {

class LedgerWriter {
 public:
  LedgerWriter(store::Store& store, std::chrono::milliseconds flush_interval);
  // Commits what was appended, then stops. NOTE: appends must end before the destructor
  // starts: a row appended later is neither committed nor counted, and a flush() then never
  // returns.
  ~LedgerWriter();

  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;

  // Queues a copy of the row and leaves `row` cleared: all strings empty, all numbers zero. The
  // strings keep their capacity up to a bound, so a caller that fills the same row for every
  // request does not allocate for it.
  void append(store::LedgerRow& row);
  void append(store::LedgerRow&& row) { append(row); }
  // Queues the row as append() does and returns once it is committed (or the commit failed and
  // was logged).
  void appendDurable(store::LedgerRow& row);
  void appendDurable(store::LedgerRow&& row) { appendDurable(row); }

  // Commits every row appended before the call and returns when done.
  void flush();

  // Rows that failed to commit (counted, logged; the batch is retried once).
  uint64_t failedRows() const;

 private:
  // The rows one thread appended since the writer last took them.
  struct Producer {
    std::thread::id owner;
    std::mutex mutex;
    std::string bytes;     // encoded rows, guarded by `mutex`
    size_t rows = 0;       // guarded by `mutex`
    std::string draining;  // the writer's: the bytes of the batch being committed
  };

  Producer& producer();
  void run();
  // Takes every producer's rows, decodes them into views_ in time order and returns the number
  // of rows.
  size_t takeBatch();
  void orderByTime();
  void commit(std::span<const store::LedgerRowView> batch);

  store::Store& store_;
  std::chrono::milliseconds flush_interval_;
  // Tells this writer's producers apart from those of an earlier writer in a thread's cache.
  const uint64_t id_;

  std::mutex producers_mutex_;
  std::vector<std::unique_ptr<Producer>> producers_;  // only ever grows; guarded

  mutable std::mutex mutex_;  // guards the members below
  std::condition_variable wake_;
  std::condition_variable committed_;
  uint64_t cycles_started_ = 0;
  uint64_t cycles_committed_ = 0;
  uint64_t failed_rows_ = 0;
  bool flush_requested_ = false;
  bool stopping_ = false;

  // The batch and the scratch space that orderByTime() sorts it with, used by the writer thread
  // alone.
  std::vector<store::LedgerRowView> views_;
  std::vector<store::LedgerRowView> ordered_views_;
  std::vector<uint32_t> order_;
  std::thread thread_;
};

}  // namespace keystore::metering
