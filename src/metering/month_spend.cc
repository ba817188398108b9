#include "metering/month_spend.h"

#include <map>
#include <string>

namespace keystore::metering {
namespace {

// Adds `delta` into `totals` per id; false when a sum would overflow int64.
bool addSpend(std::map<std::string, int64_t>& totals, const std::map<std::string, int64_t>& delta) {
  for (const auto& [id, micros] : delta) {
    int64_t& sum = totals[id];
    if (__builtin_add_overflow(sum, micros, &sum)) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<void> MonthSpend::refresh(int64_t month_start_ms, int64_t month_end_ms) {
  if (!loaded_ || month_start_ms != month_start_ms_ || month_end_ms != month_end_ms_) {
    clear();
  }

  auto delta = store_.spendSince(cursor_, month_start_ms, month_end_ms);
  if (!delta) {
    clear();
    return std::unexpected(delta.error());
  }
  if (!addSpend(totals_.by_agent, delta->spend.by_agent) ||
      !addSpend(totals_.by_project, delta->spend.by_project)) {
    clear();
    return fail(ErrorCode::kInternal, "the month's spend overflows a 64-bit micro-dollar sum");
  }

  loaded_ = true;
  month_start_ms_ = month_start_ms;
  month_end_ms_ = month_end_ms;
  cursor_ = delta->cursor;
  return {};
}

void MonthSpend::clear() {
  loaded_ = false;
  cursor_ = 0;
  totals_ = {};
}

}  // namespace keystore::metering
