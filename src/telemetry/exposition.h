// Pieces of the Prometheus text exposition format, version 0.0.4: name checks, escaping and
// number formatting. Pure functions, safe to call from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace keystore::telemetry {

// Whether `name` matches the metric name grammar [a-zA-Z_:][a-zA-Z0-9_:]*.
bool isValidMetricName(std::string_view name);

// Whether `name` matches the label name grammar [a-zA-Z_][a-zA-Z0-9_]* and does not start
// with "__", which Prometheus reserves for itself.
bool isValidLabelName(std::string_view name);

// Appends a label value escaped for use between double quotes: backslash, double quote and
// line feed become \\, \" and \n. Other bytes, including UTF-8 sequences, pass unchanged.
void appendEscapedLabelValue(std::string& out, std::string_view value);

// Appends HELP text escaped as the format requires: backslash and line feed become \\ and \n.
void appendEscapedHelp(std::string& out, std::string_view help);

// Appends a duration in seconds as an exact decimal with no trailing zeros: 1500 ms is "1.5",
// 50 us is "0.00005", 0 is "0". Negative durations are written as "0", because every
// duration this library records is clamped to zero first.
void appendSeconds(std::string& out, std::chrono::nanoseconds duration);

}  // namespace keystore::telemetry
