// UTC calendar periods for limits and budgets: the day that a requests-per-day limit counts in
// and the month that a budget caps. Times are Unix milliseconds.
//
// Thread-safety: pure functions, callable from any thread.
#pragma once

#include <cstdint>

namespace keystore::limits {

inline constexpr int64_t kMillisPerDay = 86'400'000;

// Midnight UTC at the start of the day that contains `unix_millis`.
int64_t utcDayStart(int64_t unix_millis);
// Midnight UTC at the end of that day, when a requests-per-day count resets.
int64_t utcNextDayStart(int64_t unix_millis);

// 00:00 UTC on the first day of the calendar month that contains `unix_millis`.
int64_t utcMonthStart(int64_t unix_millis);
// 00:00 UTC on the first day of the next month, when monthly budgets reset.
int64_t utcNextMonthStart(int64_t unix_millis);
// The month as a number that grows by one per calendar month (year * 12 + month - 1), so two
// times fall in the same month exactly when their indexes are equal.
int64_t utcMonthIndex(int64_t unix_millis);

}  // namespace keystore::limits
