#include "limits/cost_estimate.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <limits>

namespace keystore::limits {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kUnitsPerPrice = 1'000'000;

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return kInt64Max;
  }
  return sum;
}

int64_t saturatingMultiply(int64_t a, int64_t b) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    return kInt64Max;
  }
  return product;
}

// The top-level members of a JSON object body that OutputRequest needs. It follows the
// nesting depth so that members of nested objects (a message's "n", a tool's "max_tokens")
// are not mistaken for the request's own.
class OutputRequestHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  using error_code = boost::system::error_code;
  using string_view = boost::json::string_view;

  OutputRequest result;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    ++depth_;
    key_ = Key::kOther;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(error_code&) {
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_key_part(string_view part, std::size_t, error_code&) {
    if (depth_ == 1 && key_text_.size() + part.size() <= kLongestKey) {
      key_text_.append(part.data(), part.size());
    } else {
      key_too_long_ = true;
    }
    return true;
  }
  bool on_key(string_view part, std::size_t size, error_code& error) {
    on_key_part(part, size, error);
    key_ = Key::kOther;
    if (depth_ == 1 && !key_too_long_) {
      if (key_text_ == "max_tokens" || key_text_ == "max_completion_tokens" ||
          key_text_ == "max_output_tokens") {
        key_ = Key::kMaxTokens;
      } else if (key_text_ == "n") {
        key_ = Key::kChoices;
      }
    }
    key_text_.clear();
    key_too_long_ = false;
    return true;
  }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(int64_t value, string_view, error_code&) {
    onNumber(countFromJson(value));
    return true;
  }
  bool on_uint64(uint64_t value, string_view, error_code&) {
    onNumber(countFromJson(value));
    return true;
  }
  bool on_double(double value, string_view, error_code&) {
    onNumber(countFromJson(value));
    return true;
  }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  enum class Key { kOther, kMaxTokens, kChoices };
  static constexpr std::size_t kLongestKey = 32;

  // A number at the top level, after the key it belongs to; nullopt for a negative or
  // unusable one.
  void onNumber(std::optional<int64_t> value) {
    if (depth_ != 1 || !value) {
      return;
    }
    if (key_ == Key::kMaxTokens) {
      result.max_output_tokens = std::max(result.max_output_tokens.value_or(0), *value);
    } else if (key_ == Key::kChoices && *value >= 1) {
      result.choices = std::max(result.choices, *value);
    }
  }

  int depth_ = 0;
  Key key_ = Key::kOther;
  std::string key_text_;
  bool key_too_long_ = false;
};

}  // namespace

int64_t costCeilMicros(int64_t units, int64_t micros_per_million) {
  if (units <= 0 || micros_per_million <= 0) {
    return 0;
  }
  __int128 product = static_cast<__int128>(units) * micros_per_million;
  __int128 cost = (product + kUnitsPerPrice - 1) / kUnitsPerPrice;
  return cost > kInt64Max ? kInt64Max : static_cast<int64_t>(cost);
}

Result<void> PriceTable::set(std::string_view provider, std::string_view model,
                             std::string_view unit, int64_t micros_per_million) {
  if (std::find(kMeteredUnits.begin(), kMeteredUnits.end(), unit) == kMeteredUnits.end()) {
    return fail(ErrorCode::kInvalidRequest,
                "invalid metered unit '" + std::string(unit) +
                    "': expected one of input_tokens, cached_input_tokens, output_tokens, "
                    "requests, emails, messages, read_units, write_units");
  }
  if (micros_per_million < 0) {
    return fail(ErrorCode::kInvalidRequest, "invalid price for unit '" + std::string(unit) +
                                                "' of provider '" + std::string(provider) +
                                                "': a price must not be negative");
  }
  prices_[{std::string(provider), std::string(model), std::string(unit)}] = micros_per_million;
  return {};
}

std::optional<int64_t> PriceTable::price(std::string_view provider, std::string_view model,
                                         std::string_view unit) const {
  auto own = prices_.find(std::tuple{provider, model, unit});
  if (own != prices_.end()) {
    return own->second;
  }
  auto fallback = prices_.find(std::tuple{provider, std::string_view(), unit});
  if (fallback != prices_.end()) {
    return fallback->second;
  }
  return std::nullopt;
}

UnitPrices PriceTable::pricesFor(std::string_view provider, std::string_view model) const {
  // The prices of one provider and model are adjacent in the map, so two range scans replace
  // a lookup per unit: the model's own prices first, then the provider's defaults for the rest.
  UnitPrices prices;
  auto fill = [&](std::string_view priced_model) {
    for (auto it = prices_.lower_bound(std::tuple{provider, priced_model, std::string_view()});
         it != prices_.end() && std::get<0>(it->first) == provider &&
         std::get<1>(it->first) == priced_model;
         ++it) {
      auto unit = std::find(kMeteredUnits.begin(), kMeteredUnits.end(), std::get<2>(it->first));
      auto index = static_cast<std::size_t>(unit - kMeteredUnits.begin());
      if (unit != kMeteredUnits.end() && !prices[index]) {
        prices[index] = it->second;
      }
    }
  };
  fill(model);
  if (!model.empty()) {
    fill(std::string_view());
  }
  return prices;
}

void formatPricesJson(const UnitPrices& prices, std::string& out) {
  out.clear();
  for (size_t i = 0; i < kMeteredUnits.size(); ++i) {
    if (!prices[i]) {
      continue;
    }
    out += out.empty() ? "{\"" : ",\"";
    out += kMeteredUnits[i];
    out += "\":";
    char digits[24];
    auto [end, error] = std::to_chars(std::begin(digits), std::end(digits), *prices[i]);
    (void)error;  // 24 characters fit any int64_t
    out.append(digits, end);
  }
  if (!out.empty()) {
    out += '}';
  }
}

std::string formatPricesJson(const UnitPrices& prices) {
  std::string text;
  formatPricesJson(prices, text);
  return text;
}

std::optional<int64_t> countFromJson(int64_t value) {
  return value < 0 ? std::nullopt : std::optional<int64_t>(value);
}

std::optional<int64_t> countFromJson(uint64_t value) {
  return value > static_cast<uint64_t>(kInt64Max) ? kInt64Max : static_cast<int64_t>(value);
}

std::optional<int64_t> countFromJson(double value) {
  if (!std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  // Doubles from 9.2e18 up reach or pass INT64_MAX (about 9.22e18) once rounded up.
  if (value >= 9.2e18) {
    return kInt64Max;
  }
  return static_cast<int64_t>(std::ceil(value));
}

OutputRequest readOutputRequest(std::string_view body) {
  boost::json::basic_parser<OutputRequestHandler> parser(boost::json::parse_options{});
  boost::system::error_code error;
  parser.write_some(false, body.data(), body.size(), error);
  if (error) {
    return OutputRequest{};
  }
  return parser.handler().result;
}

CostEstimate estimateWorstCase(const PriceTable& prices, const CostEstimateInput& input) {
  const UnitPrices unit_prices = prices.pricesFor(input.provider, input.model);
  auto unitPrice = [&](std::string_view unit) {
    auto found = std::find(kMeteredUnits.begin(), kMeteredUnits.end(), unit);
    return unit_prices[static_cast<std::size_t>(found - kMeteredUnits.begin())].value_or(0);
  };

  CostEstimate estimate;
  estimate.micros = costCeilMicros(1, unitPrice("requests"));

  if (input.metering_kind == "openai" || input.metering_kind == "anthropic") {
    const int64_t bytes = std::max<int64_t>(input.body_bytes, 0);
    estimate.input_tokens = bytes / kBytesPerInputToken + (bytes % kBytesPerInputToken != 0);
    estimate.output_tokens =
        saturatingMultiply(input.output.max_output_tokens.value_or(kDefaultMaxOutputTokens),
                           std::max<int64_t>(input.output.choices, 1));
    // Which input tokens the provider serves from its cache is unknown beforehand.
    const int64_t input_price =
        std::max(unitPrice("input_tokens"), unitPrice("cached_input_tokens"));
    estimate.micros =
        saturatingAdd(estimate.micros, costCeilMicros(estimate.input_tokens, input_price));
    estimate.micros = saturatingAdd(
        estimate.micros, costCeilMicros(estimate.output_tokens, unitPrice("output_tokens")));
  } else if (input.metering_kind == "emails") {
    estimate.micros =
        saturatingAdd(estimate.micros,
                      costCeilMicros(std::max<int64_t>(input.item_count, 1), unitPrice("emails")));
  } else if (input.metering_kind == "messages") {
    estimate.micros = saturatingAdd(estimate.micros, costCeilMicros(1, unitPrice("messages")));
  }
  return estimate;
}

}  // namespace keystore::limits
