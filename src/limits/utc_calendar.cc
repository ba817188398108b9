#include "limits/utc_calendar.h"

#include <chrono>

namespace keystore::limits {
namespace {

using std::chrono::days;
using std::chrono::milliseconds;
using std::chrono::sys_days;
using std::chrono::year_month_day;

year_month_day utcDate(int64_t unix_millis) {
  return year_month_day(std::chrono::floor<days>(sys_days() + milliseconds(unix_millis)));
}

int64_t toMillis(sys_days day) {
  return std::chrono::duration_cast<milliseconds>(day.time_since_epoch()).count();
}

}  // namespace

int64_t utcDayStart(int64_t unix_millis) {
  return toMillis(std::chrono::floor<days>(sys_days() + milliseconds(unix_millis)));
}

int64_t utcNextDayStart(int64_t unix_millis) {
  return utcDayStart(unix_millis) + kMillisPerDay;
}

int64_t utcMonthStart(int64_t unix_millis) {
  year_month_day date = utcDate(unix_millis);
  return toMillis(sys_days(date.year() / date.month() / 1));
}

int64_t utcNextMonthStart(int64_t unix_millis) {
  year_month_day date = utcDate(unix_millis);
  return toMillis(sys_days((date.year() / date.month() + std::chrono::months(1)) / 1));
}

int64_t utcMonthIndex(int64_t unix_millis) {
  year_month_day date = utcDate(unix_millis);
  return static_cast<int64_t>(static_cast<int>(date.year())) * 12 +
         static_cast<int64_t>(static_cast<unsigned>(date.month())) - 1;
}

}  // namespace keystore::limits
