// Text forms of the CLI's money and reports: exact dollar amounts from integer micro-dollars
// and cents (no floating point anywhere), and CSV rows.
//
// Free functions on values, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::cli {

// An amount of micro-dollars as a decimal with exactly six places: 1234567 -> "1.234567",
// 1500000 -> "1.500000", -5 -> "-0.000005".
std::string decimalMicros(int64_t micros);
// The same with a dollar sign: 1234567 -> "$1.234567", -5 -> "-$0.000005".
std::string dollarsFromMicros(int64_t micros);
// An amount of cents as dollars: 500 -> "$5.00", 1 -> "$0.01".
std::string dollarsFromCents(int64_t cents);

// One CSV record as RFC 4180 quotes it, but ending in LF as Unix tools expect: a field holding
// a comma, a double quote, CR or LF is quoted, with its double quotes doubled. A field starting
// with '=', '+', '-', '@', a tab or CR gets a leading "'" so that a spreadsheet does not run it
// as a formula, because model names in reports come from agents' requests. The CLI writes no
// negative numbers, so no number is changed.
std::string csvRecord(const std::vector<std::string>& fields);

// `text` with every control character replaced by '?', for table cells that show text from
// agents' requests, so that it cannot move the cursor or recolor the terminal.
std::string printableText(std::string_view text);

}  // namespace keystore::cli
