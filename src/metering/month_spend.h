// MonthSpend: the month-to-date spend per agent and per project, kept as a running total
// from the ledger so that a refresh reads only the rows appended since the last one.
//
// The first refresh of a window sums the whole window; later refreshes of the same window add
// Store::spendSince() deltas past the stored cursor. A new window (the UTC month changed)
// starts again from a full read. The totals are what the ledger held at the last refresh, so
// they trail the rows that the LedgerWriter has not yet committed.
//
// Thread-safety: not thread-safe; one thread (the serve loop) owns an instance.
#pragma once

#include <cstdint>

#include "common/error.h"
#include "store/store.h"

namespace keystore::metering {

class MonthSpend {
 public:
  explicit MonthSpend(store::Store& store) : store_(store) {}

  // Brings totals() up to date for ledger rows with month_start_ms <= time < month_end_ms.
  // On failure the totals are cleared and the next call reads the whole window again, so a
  // failed or partly added delta is never counted twice.
  Result<void> refresh(int64_t month_start_ms, int64_t month_end_ms);

  const store::SpendTotals& totals() const { return totals_; }
  // The highest ledger id included in totals(); 0 before the first refresh.
  int64_t cursor() const { return cursor_; }

 private:
  void clear();

  store::Store& store_;
  bool loaded_ = false;
  int64_t month_start_ms_ = 0;
  int64_t month_end_ms_ = 0;
  int64_t cursor_ = 0;
  store::SpendTotals totals_;
};

}  // namespace keystore::metering
