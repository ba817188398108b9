#include "limits/cost_estimate.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

// Structs are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::limits {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

TEST(CostEstimateTest, CostRoundsUp) {
  EXPECT_EQ(costCeilMicros(1, 1), 1);
  EXPECT_EQ(costCeilMicros(1'000'000, 1), 1);
  EXPECT_EQ(costCeilMicros(1'000'001, 1), 2);
  EXPECT_EQ(costCeilMicros(251, 150'000), 38);  // 37.65
  EXPECT_EQ(costCeilMicros(0, 150'000), 0);
  EXPECT_EQ(costCeilMicros(100, 0), 0);
  EXPECT_EQ(costCeilMicros(kInt64Max, kInt64Max), kInt64Max);
}

TEST(CostEstimateTest, JsonCountsClampAndRoundUp) {
  EXPECT_EQ(countFromJson(int64_t{42}), 42);
  EXPECT_EQ(countFromJson(int64_t{-1}), std::nullopt);
  EXPECT_EQ(countFromJson(uint64_t{18'000'000'000'000'000'000u}), INT64_MAX);
  EXPECT_EQ(countFromJson(2.1), 3);
  EXPECT_EQ(countFromJson(-0.5), std::nullopt);
  EXPECT_EQ(countFromJson(std::numeric_limits<double>::infinity()), std::nullopt);
  EXPECT_EQ(countFromJson(std::numeric_limits<double>::quiet_NaN()), std::nullopt);
  EXPECT_EQ(countFromJson(1e19), INT64_MAX);
}

TEST(CostEstimateTest, ReadsTopLevelMaxTokens) {
  struct Case {
    std::string body;
    std::optional<int64_t> max_output_tokens;
    int64_t choices;
  };
  const std::vector<Case> cases = {
      {R"({"model":"gpt-4o-mini","max_tokens":100})", 100, 1},
      {R"({"max_completion_tokens":2048})", 2048, 1},
      {R"({"max_output_tokens":77,"input":"hi"})", 77, 1},
      {R"({"max_tokens":10,"max_completion_tokens":300})", 300, 1},
      {R"({"max_tokens":10,"max_tokens":5})", 10, 1},
      {R"({"messages":[{"role":"user","max_tokens":99999,"n":9}],"max_tokens":10})", 10, 1},
      {R"({"tools":{"max_tokens":5},"n":3})", std::nullopt, 3},
      {R"({"max_tokens":-1,"n":0})", std::nullopt, 1},
      {R"({"max_tokens":"100"})", std::nullopt, 1},
      {R"({"max_tokens":null})", std::nullopt, 1},
      {R"({"max_tokens":1e3})", 1000, 1},
      {R"({"max_tokens":12.5})", 13, 1},
      {R"({"max_tokens":1e30})", kInt64Max, 1},
      {R"({"max_tokens":18446744073709551615})", kInt64Max, 1},
      {R"([{"max_tokens":100}])", std::nullopt, 1},
      {R"({"max_tokens":100,)", std::nullopt, 1},
      {"not json", std::nullopt, 1},
      {"", std::nullopt, 1},
  };
  for (const Case& c : cases) {
    OutputRequest request = readOutputRequest(c.body);
    EXPECT_EQ(request.max_output_tokens, c.max_output_tokens) << c.body;
    EXPECT_EQ(request.choices, c.choices) << c.body;
  }
}

TEST(CostEstimateTest, ReadsLongKeysWithoutConfusion) {
  std::string long_key(100, 'x');
  OutputRequest request =
      readOutputRequest(R"({")" + long_key + R"(max_tokens":7,"max_tokens":8})");
  EXPECT_EQ(request.max_output_tokens, std::optional<int64_t>(8));
}

TEST(CostEstimateTest, PriceTableModelOverridesProviderDefault) {
  PriceTable prices;
  ASSERT_TRUE(prices.set("openai", "", "input_tokens", 1'000'000));
  ASSERT_TRUE(prices.set("openai", "gpt-4o-mini", "input_tokens", 150'000));

  EXPECT_EQ(prices.price("openai", "gpt-4o-mini", "input_tokens"), 150'000);
  EXPECT_EQ(prices.price("openai", "gpt-4o", "input_tokens"), 1'000'000);
  EXPECT_EQ(prices.price("openai", "gpt-4o-mini", "output_tokens"), std::nullopt);
  EXPECT_EQ(prices.price("anthropic", "gpt-4o-mini", "input_tokens"), std::nullopt);
}

TEST(CostEstimateTest, PriceTableRejectsUnknownUnitAndNegativePrice) {
  PriceTable prices;
  auto unknown = prices.set("openai", "", "tokens", 1);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidRequest);
  auto negative = prices.set("openai", "", "requests", -1);
  ASSERT_FALSE(negative.has_value());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidRequest);
  EXPECT_TRUE(prices.empty());
}

TEST(CostEstimateTest, PricesForModelFormatAsLedgerJson) {
  PriceTable prices;
  ASSERT_TRUE(prices.set("openai", "", "requests", 0));
  ASSERT_TRUE(prices.set("openai", "", "output_tokens", 1'000'000));
  ASSERT_TRUE(prices.set("openai", "gpt-4o-mini", "output_tokens", 600'000));
  ASSERT_TRUE(prices.set("openai", "gpt-4o-mini", "input_tokens", 150'000));

  UnitPrices mini = prices.pricesFor("openai", "gpt-4o-mini");
  EXPECT_EQ(mini[0], std::optional<int64_t>(150'000));
  EXPECT_EQ(mini[1], std::nullopt);
  EXPECT_EQ(formatPricesJson(mini),
            R"({"input_tokens":150000,"output_tokens":600000,"requests":0})");
  EXPECT_EQ(formatPricesJson(prices.pricesFor("openai", "other")),
            R"({"output_tokens":1000000,"requests":0})");
  EXPECT_EQ(formatPricesJson(prices.pricesFor("anthropic", "claude")), "");
}

PriceTable miniPrices() {
  PriceTable prices;
  EXPECT_TRUE(prices.set("openai", "gpt-4o-mini", "input_tokens", 150'000));
  EXPECT_TRUE(prices.set("openai", "gpt-4o-mini", "cached_input_tokens", 75'000));
  EXPECT_TRUE(prices.set("openai", "gpt-4o-mini", "output_tokens", 600'000));
  return prices;
}

TEST(CostEstimateTest, TokenRequestUsesBodySizeAndMaxTokens) {
  CostEstimate estimate = estimateWorstCase(miniPrices(), {.provider = "openai",
                                                           .model = "gpt-4o-mini",
                                                           .metering_kind = "openai",
                                                           .body_bytes = 1001,
                                                           .output = {.max_output_tokens = 1000}});
  EXPECT_EQ(estimate.input_tokens, 251);
  EXPECT_EQ(estimate.output_tokens, 1000);
  // ceil(251 * 0.15) + 1000 * 0.6 = 38 + 600.
  EXPECT_EQ(estimate.micros, 638);
}

TEST(CostEstimateTest, MissingMaxTokensUsesDefault) {
  CostEstimate estimate = estimateWorstCase(
      miniPrices(),
      {.provider = "openai", .model = "gpt-4o-mini", .metering_kind = "openai", .body_bytes = 0});
  EXPECT_EQ(estimate.input_tokens, 0);
  EXPECT_EQ(estimate.output_tokens, kDefaultMaxOutputTokens);
  EXPECT_EQ(estimate.micros, 2458);  // 4096 * 0.6 = 2457.6
}

TEST(CostEstimateTest, ChoicesMultiplyOutput) {
  CostEstimate estimate =
      estimateWorstCase(miniPrices(), {.provider = "openai",
                                       .model = "gpt-4o-mini",
                                       .metering_kind = "openai",
                                       .output = {.max_output_tokens = 100, .choices = 4}});
  EXPECT_EQ(estimate.output_tokens, 400);
  EXPECT_EQ(estimate.micros, 240);
}

TEST(CostEstimateTest, HigherCachedPriceUsedForInput) {
  PriceTable prices;
  ASSERT_TRUE(prices.set("anthropic", "", "input_tokens", 3'000'000));
  ASSERT_TRUE(prices.set("anthropic", "", "cached_input_tokens", 3'750'000));
  CostEstimate estimate = estimateWorstCase(prices, {.provider = "anthropic",
                                                     .model = "claude",
                                                     .metering_kind = "anthropic",
                                                     .body_bytes = 4000,
                                                     .output = {.max_output_tokens = 0}});
  EXPECT_EQ(estimate.input_tokens, 1000);
  EXPECT_EQ(estimate.micros, 3750);
}

TEST(CostEstimateTest, PerRequestKinds) {
  PriceTable prices;
  ASSERT_TRUE(prices.set("resend", "", "requests", 100));
  ASSERT_TRUE(prices.set("resend", "", "emails", 400'000'000));
  ASSERT_TRUE(prices.set("twilio", "", "messages", 7'900'000'000));
  ASSERT_TRUE(prices.set("tavily", "", "requests", 8'000'000'000));

  EXPECT_EQ(
      estimateWorstCase(
          prices,
          {.provider = "resend", .metering_kind = "emails", .body_bytes = 99'999, .item_count = 3})
          .micros,
      1 + 1200);
  EXPECT_EQ(
      estimateWorstCase(prices, {.provider = "resend", .metering_kind = "emails", .item_count = 0})
          .micros,
      1 + 400);
  EXPECT_EQ(estimateWorstCase(prices, {.provider = "twilio", .metering_kind = "messages"}).micros,
            7900);
  CostEstimate search = estimateWorstCase(
      prices, {.provider = "tavily", .metering_kind = "requests", .body_bytes = 1'000'000});
  EXPECT_EQ(search.micros, 8000);
  EXPECT_EQ(search.input_tokens, 0);
  EXPECT_EQ(estimateWorstCase(prices, {.provider = "unpriced", .metering_kind = "openai"}).micros,
            0);
}

TEST(CostEstimateTest, HugeRequestSaturates) {
  PriceTable prices;
  ASSERT_TRUE(prices.set("openai", "", "output_tokens", 10'000'000));
  ASSERT_TRUE(prices.set("openai", "", "requests", 1'000'000));
  CostEstimate estimate =
      estimateWorstCase(prices, {.provider = "openai",
                                 .model = "gpt-4o",
                                 .metering_kind = "openai",
                                 .output = {.max_output_tokens = kInt64Max / 2 + 1, .choices = 2}});
  EXPECT_EQ(estimate.output_tokens, kInt64Max);
  EXPECT_EQ(estimate.micros, kInt64Max);
}

}  // namespace
}  // namespace keystore::limits

namespace keystore::limits {
namespace {

TEST(PricesForTest, ModelPricesOverProviderDefaults) {
  PriceTable table;
  ASSERT_TRUE(table.set("openai", "", "input_tokens", 100).has_value());
  ASSERT_TRUE(table.set("openai", "", "output_tokens", 200).has_value());
  ASSERT_TRUE(table.set("openai", "gpt-4o", "input_tokens", 300).has_value());
  ASSERT_TRUE(table.set("openai", "gpt-4o-mini", "output_tokens", 400).has_value());
  ASSERT_TRUE(table.set("openaix", "gpt-4o", "requests", 500).has_value());
  ASSERT_TRUE(table.set("anthropic", "", "cached_input_tokens", 600).has_value());

  UnitPrices own = table.pricesFor("openai", "gpt-4o");
  EXPECT_EQ(own[0], 300);  // input_tokens: the model's own
  EXPECT_EQ(own[1], std::nullopt);
  EXPECT_EQ(own[2], 200);           // output_tokens: the provider's default
  EXPECT_EQ(own[3], std::nullopt);  // requests of another provider whose id shares a prefix

  UnitPrices mini = table.pricesFor("openai", "gpt-4o-mini");
  EXPECT_EQ(mini[0], 100);
  EXPECT_EQ(mini[2], 400);

  UnitPrices unknown_model = table.pricesFor("openai", "o3");
  EXPECT_EQ(unknown_model[0], 100);
  EXPECT_EQ(unknown_model[2], 200);

  UnitPrices provider_default = table.pricesFor("openai", "");
  EXPECT_EQ(provider_default[0], 100);
  EXPECT_EQ(provider_default[2], 200);

  for (std::size_t i = 0; i < kMeteredUnits.size(); ++i) {
    SCOPED_TRACE(kMeteredUnits[i]);
    EXPECT_EQ(own[i], table.price("openai", "gpt-4o", kMeteredUnits[i]));
    EXPECT_EQ(mini[i], table.price("openai", "gpt-4o-mini", kMeteredUnits[i]));
    EXPECT_EQ(unknown_model[i], table.price("openai", "o3", kMeteredUnits[i]));
  }
}

}  // namespace
}  // namespace keystore::limits
