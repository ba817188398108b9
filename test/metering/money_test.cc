#include "metering/money.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace keystore::metering {
namespace {

int64_t parsed(std::string_view text) {
  Result<int64_t> result = parseDollarAmount(text);
  EXPECT_TRUE(result.has_value()) << text << ": " << result.error().message;
  return result.value_or(-1);
}

void expectRejected(std::string_view text) {
  Result<int64_t> result = parseDollarAmount(text);
  ASSERT_FALSE(result.has_value()) << "\"" << text << "\" parsed as " << *result;
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidRequest) << text;
}

TEST(ParseDollarAmount, DecimalsBecomeExactMicroDollars) {
  EXPECT_EQ(parsed("0.15"), 150000);
  EXPECT_EQ(parsed("2.5"), 2500000);
  EXPECT_EQ(parsed("0.000001"), 1);
  EXPECT_EQ(parsed("0"), 0);
  EXPECT_EQ(parsed("0.0"), 0);
  EXPECT_EQ(parsed("10"), 10000000);
  EXPECT_EQ(parsed("60.00"), 60000000);
  EXPECT_EQ(parsed("1.234567"), 1234567);
  EXPECT_EQ(parsed("007.5"), 7500000);
}

TEST(ParseDollarAmount, DecimalsThatBinaryFloatsRoundAreExact) {
  // 0.1 + 0.2 and 1.005 are the classic floating-point misses.
  EXPECT_EQ(parsed("0.3"), 300000);
  EXPECT_EQ(parsed("1.005"), 1005000);
  EXPECT_EQ(parsed("0.07"), 70000);
}

TEST(ParseDollarAmount, LargestAmountParses) {
  // INT64_MAX micro-dollars = 9223372036854.775807 dollars.
  EXPECT_EQ(parsed("9223372036854.775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parsed("1000000000000"), int64_t{1'000'000'000'000} * 1'000'000);
}

TEST(ParseDollarAmount, OverflowRejected) {
  expectRejected("9223372036854.775808");
  expectRejected("9223372036855");
  expectRejected("99999999999999999999999999");
}

TEST(ParseDollarAmount, MalformedAmountsRejected) {
  expectRejected("");
  expectRejected("-0.15");
  expectRejected("-0");
  expectRejected("+0.15");
  expectRejected("0.0000001");
  expectRejected("1.1234567");
  expectRejected("1e3");
  expectRejected("1E3");
  expectRejected("1.5e-3");
  expectRejected(".5");
  expectRejected("5.");
  expectRejected(".");
  expectRejected("1.2.3");
  expectRejected(" 1");
  expectRejected("1 ");
  expectRejected("1,5");
  expectRejected("$1");
  expectRejected("abc");
  expectRejected("0x10");
  expectRejected("NaN");
  expectRejected("inf");
}

TEST(ParseDollarAmount, ErrorNamesTheAmountAndReason) {
  Result<int64_t> result = parseDollarAmount("1.1234567");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "invalid dollar amount \"1.1234567\": more than 6 decimals (the unit is one "
            "micro-dollar)");
}

TEST(ParseDollarAmount, ErrorCutsLongInput) {
  Result<int64_t> result = parseDollarAmount(std::string(1000, 'x'));
  ASSERT_FALSE(result.has_value());
  EXPECT_LT(result.error().message.size(), 150u);
}

int64_t cost(int64_t units, int64_t price) {
  Result<int64_t> result = rowCostMicros(units, price);
  EXPECT_TRUE(result.has_value()) << units << " x " << price << ": " << result.error().message;
  return result.value_or(-1);
}

TEST(RowCostMicros, ExactProducts) {
  // 1M tokens at $0.15 per million cost $0.15.
  EXPECT_EQ(cost(1'000'000, 150000), 150000);
  // 1000 tokens at $2.50 per million cost $0.0025.
  EXPECT_EQ(cost(1000, 2500000), 2500);
  EXPECT_EQ(cost(0, 150000), 0);
  EXPECT_EQ(cost(123, 0), 0);
}

TEST(RowCostMicros, RoundsHalfUpOncePerRow) {
  // 12 tokens at $0.15/M = 1.8 micro-dollars -> 2.
  EXPECT_EQ(cost(12, 150000), 2);
  // 34 tokens at $0.60/M = 20.4 micro-dollars -> 20.
  EXPECT_EQ(cost(34, 600000), 20);
  // Exactly half rounds up: 1 unit at 500000/M = 0.5 -> 1.
  EXPECT_EQ(cost(1, 500000), 1);
  // Just below half rounds down: 1 unit at 499999/M.
  EXPECT_EQ(cost(1, 499999), 0);
  // 3 units at 1500000/M = 4.5 -> 5.
  EXPECT_EQ(cost(3, 1500000), 5);
  // One rounding per row, not per unit: 10 units at 0.4 micro-dollars each = 4, where
  // rounding each unit would give 0.
  EXPECT_EQ(cost(10, 400000), 4);
}

TEST(RowCostMicros, LargeInputsDoNotOverflow) {
  constexpr int64_t kTrillion = 1'000'000'000'000;
  // 1e12 units at 1e12 micro-dollars per million = 1e24 / 1e6 = 1e18.
  EXPECT_EQ(cost(kTrillion, kTrillion), int64_t{1'000'000'000'000'000'000});
  EXPECT_EQ(cost(kTrillion, 1), 1'000'000);
  EXPECT_EQ(cost(kTrillion + 1, 1), 1'000'000);
  // INT64_MAX / 1e6 = 9223372036854.775807, which rounds up.
  EXPECT_EQ(cost(std::numeric_limits<int64_t>::max(), 1), 9223372036855);
}

TEST(RowCostMicros, CostBeyondInt64Rejected) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  Result<int64_t> result = rowCostMicros(kMax, kMax);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);
}

TEST(RowCostMicros, NegativeInputsRejected) {
  Result<int64_t> negative_units = rowCostMicros(-1, 150000);
  ASSERT_FALSE(negative_units.has_value());
  EXPECT_EQ(negative_units.error().code, ErrorCode::kInvalidRequest);

  Result<int64_t> negative_price = rowCostMicros(10, -1);
  ASSERT_FALSE(negative_price.has_value());
  EXPECT_EQ(negative_price.error().code, ErrorCode::kInvalidRequest);
}

TEST(RowCostMicros, ParsedPriceAppliesExactly) {
  Result<int64_t> price = parseDollarAmount("0.15");
  ASSERT_TRUE(price.has_value());
  EXPECT_EQ(cost(2'000'000, *price), 300000);
}

}  // namespace
}  // namespace keystore::metering
