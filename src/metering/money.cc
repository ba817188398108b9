#include "metering/money.h"

#include <limits>
#include <string>

namespace keystore::metering {
namespace {

constexpr int kMaxDecimals = 6;
// Long input is cut in error messages so a pasted blob does not flood a log line.
constexpr std::size_t kMaxQuotedChars = 32;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::unexpected<Error> invalidAmount(std::string_view text, std::string_view reason) {
  std::string quoted(text.substr(0, kMaxQuotedChars));
  if (text.size() > kMaxQuotedChars) {
    quoted += "...";
  }
  return fail(ErrorCode::kInvalidRequest,
              "invalid dollar amount \"" + quoted + "\": " + std::string(reason));
}

}  // namespace

Result<int64_t> parseDollarAmount(std::string_view text) {
  if (text.empty()) {
    return invalidAmount(text, "the amount is empty");
  }
  if (text.front() == '-') {
    return invalidAmount(text, "negative amounts are not allowed");
  }
  if (text.front() == '+') {
    return invalidAmount(text, "a leading '+' is not allowed");
  }

  std::size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  std::string_view fraction =
      point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
  for (std::string_view part : {whole, fraction}) {
    for (char c : part) {
      if (c == 'e' || c == 'E') {
        return invalidAmount(text, "exponents are not allowed, write the digits out");
      }
      if (!isDigit(c)) {
        return invalidAmount(text, "expected digits with an optional '.' and up to 6 decimals");
      }
    }
  }
  if (whole.empty()) {
    return invalidAmount(text, "a digit is required before the '.'");
  }
  if (point != std::string_view::npos && fraction.empty()) {
    return invalidAmount(text, "a digit is required after the '.'");
  }
  if (fraction.size() > kMaxDecimals) {
    return invalidAmount(text, "more than 6 decimals (the unit is one micro-dollar)");
  }

  int64_t micros = 0;
  for (char c : whole) {
    int64_t digit = c - '0';
    if (micros > (std::numeric_limits<int64_t>::max() - digit) / 10) {
      return invalidAmount(text, "the amount is too large");
    }
    micros = micros * 10 + digit;
  }
  if (micros > std::numeric_limits<int64_t>::max() / kMicrosPerDollar) {
    return invalidAmount(text, "the amount is too large");
  }
  micros *= kMicrosPerDollar;

  int64_t fraction_micros = 0;
  for (int i = 0; i < kMaxDecimals; ++i) {
    int64_t digit = i < static_cast<int>(fraction.size()) ? fraction[i] - '0' : 0;
    fraction_micros = fraction_micros * 10 + digit;
  }
  if (micros > std::numeric_limits<int64_t>::max() - fraction_micros) {
    return invalidAmount(text, "the amount is too large");
  }
  return micros + fraction_micros;
}

Result<int64_t> rowCostMicros(int64_t units, int64_t price) {
  if (units < 0 || price < 0) {
    return fail(ErrorCode::kInvalidRequest, "units and price must not be negative (units " +
                                                std::to_string(units) + ", price " +
                                                std::to_string(price) + ")");
  }

  __int128 product = static_cast<__int128>(units) * price;
  __int128 cost = (product + kUnitsPerPrice / 2) / kUnitsPerPrice;
  if (cost > std::numeric_limits<int64_t>::max()) {
    return fail(ErrorCode::kInternal, "cost of " + std::to_string(units) + " units at price " +
                                          std::to_string(price) + " does not fit in int64");
  }
  return static_cast<int64_t>(cost);
}

}  // namespace keystore::metering
