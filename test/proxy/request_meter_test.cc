// RequestMeter: usage read from responses as they pass, the streamed-usage rewrite invisible to
// the client, and each ledger row priced once from the operator's prices.
#include "proxy/request_meter.h"

#include <gtest/gtest.h>

#include <string>

namespace keystore::proxy {
namespace {

const catalog::ProviderSpec& provider(std::string_view id) {
  static const catalog::Catalog catalog = *catalog::Catalog::builtIn();
  return *catalog.find(id);
}

limits::PriceTable openAiPrices() {
  limits::PriceTable prices;
  EXPECT_TRUE(prices.set("openai", "", "input_tokens", 150'000).has_value());   // $0.15 / M
  EXPECT_TRUE(prices.set("openai", "", "output_tokens", 600'000).has_value());  // $0.60 / M
  EXPECT_TRUE(prices.set("openai", "gpt-4o", "output_tokens", 10'000'000).has_value());
  return prices;
}

store::LedgerRow okRow() {
  store::LedgerRow row;
  row.upstream_status = 200;
  row.outcome = "ok";
  return row;
}

std::string chunk(const std::string& content) {
  return R"(data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":")" +
         content + R"("}}],"usage":null})" + "\n\n";
}

const std::string kUsageChunk =
    R"(data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})"
    "\n\n";

TEST(RequestMeterTest, JsonUsagePricedOncePerRow) {
  std::string body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  meter.onResponse(200, "application/json");
  std::string answer =
      R"({"id":"c1","model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":333,"prompt_tokens_details":{"cached_tokens":0}}})";
  EXPECT_EQ(meter.onUpstreamBytes(answer), answer);
  store::LedgerRow row = okRow();
  meter.fillRow(row, openAiPrices(), true);
  EXPECT_EQ(row.outcome, "ok");
  EXPECT_TRUE(row.usage_reported);
  EXPECT_EQ(row.model, "gpt-4o-mini");  // as requested, not the dated version in the response
  EXPECT_EQ(row.units.input_tokens, 1000);
  EXPECT_EQ(row.units.output_tokens, 333);
  EXPECT_EQ(row.units.requests, 1);
  // 1000 * 0.15 + 333 * 0.60 = 150 + 199.8 micro-dollars, rounded once: 350.
  EXPECT_EQ(row.cost_micros, 350);
  EXPECT_EQ(row.prices, R"({"input_tokens":150000,"output_tokens":600000})");
  EXPECT_TRUE(row.billable);
  EXPECT_EQ(meter.tokensUsed(), 1333);
}

TEST(RequestMeterTest, ModelPriceOverridesProviderDefault) {
  std::string body = R"({"model":"gpt-4o","messages":[]})";
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  meter.onResponse(200, "application/json");
  meter.onUpstreamBytes(
      R"({"model":"gpt-4o","usage":{"prompt_tokens":0,"completion_tokens":100}})");
  store::LedgerRow row = okRow();
  meter.fillRow(row, openAiPrices(), false);
  EXPECT_EQ(row.cost_micros, 1000);  // 100 tokens at $10 per million
  EXPECT_FALSE(row.billable);
}

TEST(RequestMeterTest, StreamAsksForUsageAndHidesIt) {
  const std::string original =
      R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]})";
  std::string body = original;
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  EXPECT_NE(body.find(R"("stream_options":{"include_usage":true})"), std::string::npos) << body;
  EXPECT_TRUE(meter.filtersClientStream());
  meter.onResponse(200, "text/event-stream");

  std::string upstream = chunk("Hel") + chunk("lo") + kUsageChunk + "data: [DONE]\n\n";
  std::string expected = chunk("Hel") + chunk("lo") + "data: [DONE]\n\n";
  for (size_t pos = 0; (pos = expected.find(R"(,"usage":null)", pos)) != std::string::npos;) {
    expected.erase(pos, 13);
  }
  // Every split of the stream into two reads gives the client the same bytes.
  for (size_t split = 0; split <= upstream.size(); split += 7) {
    std::string body_copy = original;
    RequestMeter split_meter(provider("openai"), "POST", "/v1/chat/completions", body_copy);
    split_meter.onResponse(200, "text/event-stream");
    std::string client(split_meter.onUpstreamBytes(std::string_view(upstream).substr(0, split)));
    client += split_meter.onUpstreamBytes(std::string_view(upstream).substr(split));
    client += split_meter.finishClientStream();
    ASSERT_EQ(client, expected) << "split at " << split;
    store::LedgerRow row = okRow();
    split_meter.fillRow(row, openAiPrices(), true);
    EXPECT_EQ(row.units.input_tokens, 12) << "split at " << split;
    EXPECT_EQ(row.units.output_tokens, 34) << "split at " << split;
    EXPECT_EQ(row.outcome, "ok");
  }
}

TEST(RequestMeterTest, ClientAskingForUsageKeepsItsStream) {
  std::string body =
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]})";
  std::string original = body;
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  EXPECT_EQ(body, original);
  EXPECT_FALSE(meter.filtersClientStream());
  meter.onResponse(200, "text/event-stream");
  std::string upstream = chunk("x") + kUsageChunk + "data: [DONE]\n\n";
  EXPECT_EQ(meter.onUpstreamBytes(upstream), upstream);
}

TEST(RequestMeterTest, MissingUsageEstimatedAndMarked) {
  std::string body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";
  RequestMeter meter(provider("openai"), "POST", "/v1/embeddings", body);
  meter.onResponse(200, "application/json");
  std::string answer = R"({"object":"list","data":[]})";  // 27 bytes, no usage
  meter.onUpstreamBytes(answer);
  store::LedgerRow row = okRow();
  meter.fillRow(row, openAiPrices(), true);
  EXPECT_EQ(row.outcome, "usage_missing");
  EXPECT_FALSE(row.usage_reported);
  EXPECT_EQ(row.units.input_tokens, (static_cast<int64_t>(body.size()) + 3) / 4);
  EXPECT_EQ(row.units.output_tokens, 7);  // ceil(27 / 4)
  EXPECT_GT(row.cost_micros, 0);
}

TEST(RequestMeterTest, ErrorAnswerCostsNothing) {
  std::string body = R"({"model":"gpt-4o-mini","messages":[]})";
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  meter.onResponse(429, "application/json");
  meter.onUpstreamBytes(R"({"error":{"message":"slow down"}})");
  store::LedgerRow row = okRow();
  row.upstream_status = 429;
  row.outcome = "upstream_error";
  meter.fillRow(row, openAiPrices(), true);
  EXPECT_EQ(row.outcome, "upstream_error");
  EXPECT_EQ(row.cost_micros, 0);
  EXPECT_EQ(row.units, store::UnitCounts{});
  EXPECT_EQ(row.prices, "");
}

TEST(RequestMeterTest, WorstCaseUsesMaxTokensAndModelPrice) {
  std::string body = R"({"model":"gpt-4o","max_tokens":1000,"messages":[]})";
  RequestMeter meter(provider("openai"), "POST", "/v1/chat/completions", body);
  EXPECT_EQ(meter.requestModel(), "gpt-4o");
  // 1000 output tokens at $10 per million plus ceil(bytes / 4) input tokens at $0.15.
  int64_t input_tokens = (static_cast<int64_t>(body.size()) + 3) / 4;
  int64_t expected = 10'000 + (input_tokens * 150'000 + 999'999) / 1'000'000;
  EXPECT_EQ(meter.worstCaseMicros(openAiPrices(), body), expected);
}

TEST(RequestMeterTest, EmailCountedPerSend) {
  std::string body = R"({"from":"a@x.test","to":"b@y.test","subject":"s","text":"t"})";
  RequestMeter meter(provider("resend"), "POST", "/emails", body);
  meter.onResponse(200, "application/json");
  meter.onUpstreamBytes(R"({"id":"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})");
  limits::PriceTable prices;
  ASSERT_TRUE(prices.set("resend", "", "emails", 400'000'000).has_value());  // $0.0004 each
  store::LedgerRow row = okRow();
  meter.fillRow(row, prices, true);
  EXPECT_EQ(row.units.emails, 1);
  EXPECT_EQ(row.cost_micros, 400);
  EXPECT_EQ(row.outcome, "ok");
}

}  // namespace
}  // namespace keystore::proxy
