// Wall-clock time as Unix milliseconds, RFC 3339 text and human durations ("90s", "30d").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keystore {

// Milliseconds since the Unix epoch, UTC.
int64_t nowUnixMillis();

// "2026-12-04T20:07:14.123Z".
std::string formatRfc3339(int64_t unix_millis);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)" and plain "YYYY-MM-DD" (midnight UTC).
std::optional<int64_t> parseRfc3339(std::string_view text);

// A positive duration of at most 100 years made of whole numbers with units ms, s, m, h, d, w,
// e.g. "1h30m"; returns milliseconds, or nullopt when the text is not such a duration.
std::optional<int64_t> parseDurationMillis(std::string_view text);
// parseDurationMillis that also accepts a zero duration: "0", or zeros with units such as "0s".
std::optional<int64_t> parseDurationMillisOrZero(std::string_view text);

}  // namespace keystore
