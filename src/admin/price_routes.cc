// Routes for the operator's price table: append a price, list every price, and list the
// prices in effect now. Prices are read from decimal strings, never from JSON numbers, so no
// floating-point value ever reaches an amount of money.
#include <algorithm>
#include <boost/json/array.hpp>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/clock.h"
#include "metering/money.h"

namespace keystore::admin {

namespace {

// Model names are matched verbatim against what requests name, so this only keeps out text
// that cannot be a model name.
constexpr size_t kMaxModelLength = 200;

Result<std::string> readUnit(const boost::json::object& body) {
  Result<std::string> unit = readRequiredString(body, "unit");
  if (!unit) {
    return unit;
  }
  if (std::find(store::kUsageUnits.begin(), store::kUsageUnits.end(), *unit) ==
      store::kUsageUnits.end()) {
    std::string expected;
    for (std::string_view name : store::kUsageUnits) {
      expected += expected.empty() ? "" : ", ";
      expected += name;
    }
    return fail(ErrorCode::kInvalidRequest, "\"unit\" must be one of: " + expected);
  }
  return unit;
}

// The model a price applies to; "" (absent or null) is the provider's default.
Result<std::string> readModel(const boost::json::object& body) {
  Result<OptionalField<std::string>> model = readString(body, "model", true);
  if (!model) {
    return std::unexpected(model.error());
  }
  if (!model->value) {
    return std::string();
  }
  const std::string& name = *model->value;
  bool printable = std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
  });
  if (name.empty() || name.size() > kMaxModelLength || !printable) {
    return fail(ErrorCode::kInvalidRequest,
                "\"model\" must be 1 to 200 characters without spaces or control characters, or "
                "null for the provider's default price");
  }
  return name;
}

// The price in micro-dollars per million units, parsed exactly from a decimal string.
Result<int64_t> readUsdPerMillion(const boost::json::object& body) {
  const boost::json::value* value = body.if_contains("usd_per_million");
  if (value == nullptr || value->is_null()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"usd_per_million\" is required: the price in dollars per million units as a "
                "decimal string such as \"0.15\"");
  }
  if (!value->is_string()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"usd_per_million\" must be a decimal string such as \"0.15\", not a JSON "
                "number, so that the price is read exactly");
  }
  Result<int64_t> micros = metering::parseDollarAmount(value->as_string());
  if (!micros) {
    return fail(ErrorCode::kInvalidRequest, "\"usd_per_million\": " + micros.error().message);
  }
  return micros;
}

// When the price takes effect: RFC 3339 text or a date; absent or null is `now`.
Result<int64_t> readEffectiveFrom(const boost::json::object& body, int64_t now) {
  Result<OptionalField<std::string>> text = readString(body, "effective_from", true);
  if (!text) {
    return std::unexpected(text.error());
  }
  if (!text->value) {
    return now;
  }
  std::optional<int64_t> time = parseRfc3339(*text->value);
  if (!time || *time <= 0) {
    return fail(ErrorCode::kInvalidRequest,
                "\"effective_from\" must be an RFC 3339 time after 1970, such as "
                "2026-01-01T00:00:00Z");
  }
  return *time;
}

ApiResponse priceList(const std::vector<store::Price>& prices, const std::string& provider) {
  boost::json::array items;
  for (const store::Price& price : prices) {
    if (provider.empty() || price.provider == provider) {
      items.push_back(renderPrice(price));
    }
  }
  return listResponse(std::move(items));
}

}  // namespace

Result<std::string> AdminApi::readProviderFilter(const RequestContext& context) const {
  std::string provider = context.queryValue("provider").value_or("");
  if (!provider.empty() && findProvider(provider) == nullptr) {
    return fail(ErrorCode::kUnknownProvider,
                "unknown provider " + provider + "; GET /api/v1/catalog lists the providers");
  }
  return provider;
}

Result<ApiResponse> AdminApi::createPrice(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  auto known = rejectUnknownMembers(
      *body, {"provider", "unit", "model", "usd_per_million", "effective_from"});
  if (!known) {
    return std::unexpected(known.error());
  }

  Result<std::string> provider = readRequiredString(*body, "provider");
  if (!provider) {
    return std::unexpected(provider.error());
  }
  if (findProvider(*provider) == nullptr) {
    // The name comes from the body, so at most 64 bytes of it are shown.
    return fail(ErrorCode::kInvalidRequest, "\"provider\" names unknown provider " +
                                                provider->substr(0, 64) +
                                                "; GET /api/v1/catalog lists the providers");
  }
  Result<std::string> unit = readUnit(*body);
  if (!unit) {
    return std::unexpected(unit.error());
  }
  Result<std::string> model = readModel(*body);
  if (!model) {
    return std::unexpected(model.error());
  }
  Result<int64_t> micros = readUsdPerMillion(*body);
  if (!micros) {
    return std::unexpected(micros.error());
  }
  Result<int64_t> effective_from = readEffectiveFrom(*body, context.now);
  if (!effective_from) {
    return std::unexpected(effective_from.error());
  }

  store::Price price;
  price.provider = *provider;
  price.model = *model;
  price.unit = *unit;
  price.micros_per_million = *micros;
  price.effective_from = *effective_from;
  price.created_at = context.now;
  Result<store::Price> stored = store_.putPrice(price);
  if (!stored) {
    return std::unexpected(stored.error());
  }
  // The proxy prices requests from its snapshot, which contains the price table.
  notifyConfigChange();
  return jsonResponse(201, renderPrice(*stored));
}

Result<ApiResponse> AdminApi::listPrices(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<std::string> provider = readProviderFilter(context);
  if (!provider) {
    return std::unexpected(provider.error());
  }
  Result<std::vector<store::Price>> prices = store_.listPrices();
  if (!prices) {
    return std::unexpected(prices.error());
  }
  return priceList(*prices, *provider);
}

Result<ApiResponse> AdminApi::listCurrentPrices(const RequestContext& context) {
  if (auto allowed = requireOperator(context); !allowed) {
    return std::unexpected(allowed.error());
  }
  Result<std::string> provider = readProviderFilter(context);
  if (!provider) {
    return std::unexpected(provider.error());
  }
  Result<std::vector<store::Price>> prices = store_.pricesAt(context.now);
  if (!prices) {
    return std::unexpected(prices.error());
  }
  return priceList(*prices, *provider);
}

}  // namespace keystore::admin
