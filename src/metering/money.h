// Integer money arithmetic for metering: prices, costs and their parsing.
//
// Prices are integer micro-dollars per million units (a "$0.15 per million tokens" price is
// 150000), costs are integer micro-dollars. No floating point is involved anywhere, so a price
// entered as "0.15" is stored and applied exactly.
//
// Thread-safety: free functions without state; callable from any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/error.h"

namespace keystore::metering {

inline constexpr int64_t kMicrosPerDollar = 1'000'000;
// Prices are quoted per this many units.
inline constexpr int64_t kUnitsPerPrice = 1'000'000;

// Parses a non-negative decimal dollar amount into micro-dollars: "0.15" -> 150000, "2.5" ->
// 2500000, "0.000001" -> 1. Accepted form: one or more digits, optionally followed by '.' and
// one to six digits. Rejected with kInvalidRequest: empty text, a sign ('+' or '-'), more than
// six decimals, an exponent, whitespace or any other character, and amounts above INT64_MAX
// micro-dollars. Applied to a price string, the result is the price in micro-dollars per
// million units.
Result<int64_t> parseDollarAmount(std::string_view text);

// Computes the cost in micro-dollars of `units` at `price` micro-dollars per million units:
// units * price / 1e6, rounded half up, with one rounding per ledger row (never per unit).
// The product is formed in 128-bit arithmetic, so any int64 inputs are safe (units and prices
// up to 1e12 give costs up to 1e18). Fails with kInvalidRequest on a negative input and with
// kInternal when the cost does not fit in int64.
Result<int64_t> rowCostMicros(int64_t units, int64_t price);

}  // namespace keystore::metering
