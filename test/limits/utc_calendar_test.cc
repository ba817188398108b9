#include "limits/utc_calendar.h"

#include <gtest/gtest.h>

#include <optional>

#include "common/clock.h"

namespace keystore::limits {
namespace {

int64_t at(const char* rfc3339) {
  std::optional<int64_t> parsed = parseRfc3339(rfc3339);
  EXPECT_TRUE(parsed.has_value()) << rfc3339;
  return parsed.value_or(0);
}

TEST(UtcCalendarTest, DayBoundaries) {
  EXPECT_EQ(utcDayStart(at("2026-05-01T10:00:00Z")), at("2026-05-01T00:00:00Z"));
  EXPECT_EQ(utcDayStart(at("2026-05-01T00:00:00Z")), at("2026-05-01T00:00:00Z"));
  EXPECT_EQ(utcNextDayStart(at("2026-05-01T23:59:59.999Z")), at("2026-05-02T00:00:00Z"));
  EXPECT_EQ(utcNextDayStart(at("2026-05-02T00:00:00Z")), at("2026-05-03T00:00:00Z"));
}

TEST(UtcCalendarTest, MonthBoundaries) {
  EXPECT_EQ(utcMonthStart(at("2026-05-10T12:00:00Z")), at("2026-05-01T00:00:00Z"));
  EXPECT_EQ(utcNextMonthStart(at("2026-05-10T12:00:00Z")), at("2026-06-01T00:00:00Z"));
  EXPECT_EQ(utcNextMonthStart(at("2026-12-31T23:59:59.999Z")), at("2027-01-01T00:00:00Z"));
  EXPECT_EQ(utcMonthStart(at("2028-02-29T08:00:00Z")), at("2028-02-01T00:00:00Z"));
  EXPECT_EQ(utcNextMonthStart(at("2028-02-29T08:00:00Z")), at("2028-03-01T00:00:00Z"));
  // A time zone offset does not move the UTC month.
  EXPECT_EQ(utcMonthStart(at("2026-06-01T01:00:00+02:00")), at("2026-05-01T00:00:00Z"));
}

TEST(UtcCalendarTest, MonthIndexChangesAtMonthStart) {
  EXPECT_EQ(utcMonthIndex(at("2026-05-31T23:59:59.999Z")) + 1,
            utcMonthIndex(at("2026-06-01T00:00:00Z")));
  EXPECT_EQ(utcMonthIndex(at("2026-12-15T00:00:00Z")) + 1,
            utcMonthIndex(at("2027-01-01T00:00:00Z")));
  EXPECT_EQ(utcMonthIndex(at("2026-01-01T00:00:00Z")), 2026 * 12);
  EXPECT_EQ(utcMonthIndex(0), 1970 * 12);
}

}  // namespace
}  // namespace keystore::limits
