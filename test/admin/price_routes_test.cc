// The operator's price table through the management API: exact decimal prices, validation,
// operator-only access and the prices in effect now.
#include <tuple>

#include "admin_fixture.h"

namespace keystore::admin {
namespace {

class PriceRoutesTest : public AdminApiTest {
 protected:
  CallResult postPrice(boost::json::object body) {
    return callAsOperator("POST", "/api/v1/prices", boost::json::serialize(body));
  }

  // Appends a price and returns its id, failing the test unless it is created.
  int64_t addPrice(boost::json::object body) {
    CallResult result = postPrice(std::move(body));
    EXPECT_EQ(result.response.status, 201) << result.response.body;
    return result.json.is_object() ? result.json.at("id").as_int64() : 0;
  }

  static std::vector<int64_t> ids(const CallResult& result) {
    std::vector<int64_t> found;
    for (const boost::json::value& entry : result.json.at("data").as_array()) {
      found.push_back(entry.at("id").as_int64());
    }
    return found;
  }
};

TEST_F(PriceRoutesTest, CreatePriceReturnsEntry) {
  int before = config_changes_;
  CallResult result = postPrice({{"provider", "openai"},
                                 {"unit", "input_tokens"},
                                 {"model", "gpt-4o-mini"},
                                 {"usd_per_million", "0.15"}});
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(config_changes_, before + 1);

  EXPECT_GT(result.json.at("id").as_int64(), 0);
  EXPECT_EQ(result.str("/provider"), "openai");
  EXPECT_EQ(result.str("/model"), "gpt-4o-mini");
  EXPECT_EQ(result.str("/unit"), "input_tokens");
  EXPECT_EQ(result.str("/usd_per_million"), "0.15");
  EXPECT_EQ(result.json.at("micros_per_million").as_int64(), 150000);
  // Without effective_from the price takes effect when it is created.
  ASSERT_TRUE(parseRfc3339(result.str("/created_at")).has_value());
  EXPECT_EQ(result.str("/effective_from"), result.str("/created_at"));

  auto stored = store_->listPrices();
  ASSERT_TRUE(stored.has_value());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].micros_per_million, 150000);
  EXPECT_EQ((*stored)[0].model, "gpt-4o-mini");
  EXPECT_EQ((*stored)[0].unit, "input_tokens");
}

TEST_F(PriceRoutesTest, DecimalPricesRoundTripExactly) {
  const std::vector<std::tuple<std::string, int64_t, std::string>> cases = {
      {"0.15", 150000, "0.15"},
      {"2.5", 2500000, "2.5"},
      {"0.000001", 1, "0.000001"},
      {"3", 3000000, "3"},
      {"0", 0, "0"},
      {"1.50", 1500000, "1.5"},
      {"10.000100", 10000100, "10.0001"},
      {"123456.789012", 123456789012, "123456.789012"},
      {"9223372036854.775807", 9223372036854775807, "9223372036854.775807"},
  };
  for (const auto& [text, micros, rendered] : cases) {
    CallResult result =
        postPrice({{"provider", "openai"}, {"unit", "output_tokens"}, {"usd_per_million", text}});
    ASSERT_EQ(result.response.status, 201) << text << ": " << result.response.body;
    EXPECT_EQ(result.json.at("micros_per_million").as_int64(), micros) << text;
    EXPECT_EQ(result.str("/usd_per_million"), rendered) << text;
  }
}

TEST_F(PriceRoutesTest, MissingOrNullModelIsDefault) {
  CallResult absent =
      postPrice({{"provider", "resend"}, {"unit", "emails"}, {"usd_per_million", "400"}});
  ASSERT_EQ(absent.response.status, 201) << absent.response.body;
  EXPECT_TRUE(absent.json.at("model").is_null());

  CallResult null_model = postPrice(
      {{"provider", "resend"}, {"unit", "emails"}, {"model", nullptr}, {"usd_per_million", "1"}});
  ASSERT_EQ(null_model.response.status, 201) << null_model.response.body;
  EXPECT_TRUE(null_model.json.at("model").is_null());
  EXPECT_EQ(store_->listPrices()->at(0).model, "");
}

TEST_F(PriceRoutesTest, EffectiveFromParsed) {
  CallResult result = postPrice({{"provider", "openai"},
                                 {"unit", "requests"},
                                 {"usd_per_million", "1"},
                                 {"effective_from", "2030-01-01T00:00:00+02:00"}});
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(result.str("/effective_from"), "2029-12-31T22:00:00.000Z");

  CallResult date = postPrice({{"provider", "openai"},
                               {"unit", "requests"},
                               {"usd_per_million", "1"},
                               {"effective_from", "2031-05-01"}});
  ASSERT_EQ(date.response.status, 201) << date.response.body;
  EXPECT_EQ(date.str("/effective_from"), "2031-05-01T00:00:00.000Z");
}

TEST_F(PriceRoutesTest, InvalidPricesRejected) {
  boost::json::object valid{
      {"provider", "openai"}, {"unit", "input_tokens"}, {"usd_per_million", "0.15"}};
  auto with = [&](std::string_view name, boost::json::value value) {
    boost::json::object body = valid;
    body[name] = std::move(value);
    return body;
  };
  auto without = [&](std::string_view name) {
    boost::json::object body = valid;
    body.erase(name);
    return body;
  };
  const std::vector<std::pair<boost::json::object, std::string>> cases = {
      {with("usd_per_million", 0.15),
       "\"usd_per_million\" must be a decimal string such as \"0.15\", not a JSON number, so "
       "that the price is read exactly"},
      {with("usd_per_million", 1),
       "\"usd_per_million\" must be a decimal string such as \"0.15\", not a JSON number, so "
       "that the price is read exactly"},
      {with("usd_per_million", "-1"),
       "\"usd_per_million\": invalid dollar amount \"-1\": negative amounts are not allowed"},
      {with("usd_per_million", "1e3"),
       "\"usd_per_million\": invalid dollar amount \"1e3\": exponents are not allowed, write "
       "the digits out"},
      {with("usd_per_million", "0.1234567"),
       "\"usd_per_million\": invalid dollar amount \"0.1234567\": more than 6 decimals (the "
       "unit is one micro-dollar)"},
      {with("usd_per_million", ""),
       "\"usd_per_million\": invalid dollar amount \"\": the amount is empty"},
      {with("usd_per_million", " 1"),
       "\"usd_per_million\": invalid dollar amount \" 1\": expected digits with an optional "
       "'.' and up to 6 decimals"},
      {without("usd_per_million"),
       "\"usd_per_million\" is required: the price in dollars per million units as a decimal "
       "string such as \"0.15\""},
      {with("unit", "tokens"),
       "\"unit\" must be one of: input_tokens, cached_input_tokens, output_tokens, requests, "
       "emails, messages, read_units, write_units"},
      {without("unit"), "\"unit\" is required"},
      {with("provider", "nope"),
       "\"provider\" names unknown provider nope; GET /api/v1/catalog lists the providers"},
      {without("provider"), "\"provider\" is required"},
      {with("model", ""),
       "\"model\" must be 1 to 200 characters without spaces or control characters, or null "
       "for the provider's default price"},
      {with("model", "gpt 4"),
       "\"model\" must be 1 to 200 characters without spaces or control characters, or null "
       "for the provider's default price"},
      {with("model", 4), "\"model\" must be a string or null"},
      {with("effective_from", "yesterday"),
       "\"effective_from\" must be an RFC 3339 time after 1970, such as 2026-01-01T00:00:00Z"},
      {with("currency", "usd"),
       "unknown member \"currency\"; expected one of: provider, unit, model, usd_per_million, "
       "effective_from"},
  };
  int before = config_changes_;
  for (const auto& [body, message] : cases) {
    CallResult result = postPrice(body);
    EXPECT_EQ(result.response.status, 400) << boost::json::serialize(body);
    EXPECT_EQ(result.errorCode(), "invalid_request") << boost::json::serialize(body);
    EXPECT_EQ(result.errorMessage(), message) << boost::json::serialize(body);
  }

  CallResult not_json = callAsOperator("POST", "/api/v1/prices", "{\"provider\":");
  EXPECT_EQ(not_json.response.status, 400);
  EXPECT_EQ(not_json.errorCode(), "invalid_json");

  EXPECT_EQ(config_changes_, before);
  EXPECT_TRUE(store_->listPrices()->empty());
}

TEST_F(PriceRoutesTest, NonOperatorForbidden) {
  std::string viewer = createAdminKey(org_a_, "viewer");
  std::string member = createAdminKey(org_a_, "member");
  std::string body = R"({"provider":"openai","unit":"input_tokens","usd_per_million":"0.15"})";
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "/api/v1/prices"},
      {"GET", "/api/v1/prices"},
      {"GET", "/api/v1/prices/current"},
  };
  for (const std::string& key : {key_a_, key_b_, member, viewer}) {
    for (const auto& [method, target] : routes) {
      CallResult result = callWithKey(key, method, target, method == "POST" ? body : "");
      EXPECT_EQ(result.response.status, 403) << method << " " << target;
      EXPECT_EQ(result.errorCode(), "forbidden") << method << " " << target;
    }
  }
  EXPECT_TRUE(store_->listPrices()->empty());
}

TEST_F(PriceRoutesTest, ListNewestEffectiveFirst) {
  int64_t old_price = addPrice({{"provider", "openai"},
                                {"unit", "input_tokens"},
                                {"usd_per_million", "0.10"},
                                {"effective_from", "2024-01-01T00:00:00Z"}});
  int64_t new_price = addPrice({{"provider", "openai"},
                                {"unit", "input_tokens"},
                                {"usd_per_million", "0.15"},
                                {"effective_from", "2025-01-01T00:00:00Z"}});
  int64_t anthropic = addPrice({{"provider", "anthropic"},
                                {"unit", "output_tokens"},
                                {"usd_per_million", "15"},
                                {"effective_from", "2024-06-01T00:00:00Z"}});

  CallResult all = callAsOperator("GET", "/api/v1/prices");
  ASSERT_EQ(all.response.status, 200) << all.response.body;
  EXPECT_EQ(ids(all), (std::vector<int64_t>{new_price, anthropic, old_price}));

  CallResult openai = callAsOperator("GET", "/api/v1/prices?provider=openai");
  ASSERT_EQ(openai.response.status, 200) << openai.response.body;
  EXPECT_EQ(ids(openai), (std::vector<int64_t>{new_price, old_price}));
  EXPECT_EQ(openai.json.at("data").as_array()[1].at("usd_per_million").as_string(), "0.1");

  CallResult unknown = callAsOperator("GET", "/api/v1/prices?provider=nope");
  EXPECT_EQ(unknown.response.status, 404);
  EXPECT_EQ(unknown.errorCode(), "unknown_provider");
}

TEST_F(PriceRoutesTest, CurrentPricesInEffectNow) {
  addPrice({{"provider", "openai"},
            {"unit", "input_tokens"},
            {"usd_per_million", "0.10"},
            {"effective_from", "2020-01-01T00:00:00Z"}});
  int64_t current = addPrice({{"provider", "openai"},
                              {"unit", "input_tokens"},
                              {"usd_per_million", "0.15"},
                              {"effective_from", "2021-01-01T00:00:00Z"}});
  addPrice({{"provider", "openai"},
            {"unit", "input_tokens"},
            {"usd_per_million", "0.20"},
            {"effective_from", "2999-01-01T00:00:00Z"}});
  int64_t model_price = addPrice({{"provider", "openai"},
                                  {"unit", "input_tokens"},
                                  {"model", "gpt-4o"},
                                  {"usd_per_million", "2.5"},
                                  {"effective_from", "2021-01-01T00:00:00Z"}});
  int64_t resend = addPrice({{"provider", "resend"},
                             {"unit", "emails"},
                             {"usd_per_million", "400"},
                             {"effective_from", "2021-01-01T00:00:00Z"}});

  CallResult result = callAsOperator("GET", "/api/v1/prices/current");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  // Ordered by provider, model (the default "" first) and unit.
  EXPECT_EQ(ids(result), (std::vector<int64_t>{current, model_price, resend}));
  EXPECT_EQ(result.json.at("data").as_array()[0].at("usd_per_million").as_string(), "0.15");

  CallResult resend_only = callAsOperator("GET", "/api/v1/prices/current?provider=resend");
  ASSERT_EQ(resend_only.response.status, 200) << resend_only.response.body;
  EXPECT_EQ(ids(resend_only), (std::vector<int64_t>{resend}));
}

}  // namespace
}  // namespace keystore::admin
