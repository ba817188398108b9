// Worst-case cost estimates: what a request may cost at most, reserved against budgets before
// it is forwarded, and PriceTable, the price lookup the estimate (and metering) uses.
//
// Prices are integer micro-dollars per million units and costs integer micro-dollars, as in
// the rest of Keystore. Every conversion rounds up, so rounding never makes an estimate low.
//
// Thread-safety: PriceTable is filled once and then only read; concurrent const calls are safe.
// The free functions keep no state.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "common/error.h"

namespace keystore::limits {

// Output tokens assumed when a token-metered request sets no maximum.
// NOTE: an estimate, not a bound. Without a maximum a model may write up to its own output
// limit, which for many models is above 4096, so such a request can cost more than its
// reservation.
inline constexpr int64_t kDefaultMaxOutputTokens = 4096;
// Request body bytes per estimated input token. Tokenizers average about 4 bytes of English
// text per token, and the body's JSON syntax adds bytes that are not tokens, so this usually
// overestimates. NOTE: text in scripts that take 2-3 UTF-8 bytes per token (CJK) is
// underestimated.
inline constexpr int64_t kBytesPerInputToken = 4;

// The metered unit names, fixed by the product contract, in the order the ledger stores them.
inline constexpr std::array<std::string_view, 8> kMeteredUnits = {
    "input_tokens", "cached_input_tokens", "output_tokens", "requests", "emails",
    "messages",     "read_units",          "write_units",
};

// A price per unit, indexed like kMeteredUnits; nullopt = the unit has no price (free).
using UnitPrices = std::array<std::optional<int64_t>, 8>;

// The operator's prices in effect, looked up by provider, model and unit.
class PriceTable {
 public:
  // Sets the price of `unit` for `model` of `provider`; an empty model sets the provider's
  // default for that unit. kInvalidRequest for a unit outside the metered unit names or a
  // negative price.
  Result<void> set(std::string_view provider, std::string_view model, std::string_view unit,
                   int64_t micros_per_million);

  // The model's own price for the unit, else the provider's default, else nullopt (the unit
  // is free).
  std::optional<int64_t> price(std::string_view provider, std::string_view model,
                               std::string_view unit) const;

  // price() of every unit, for pricing a finished request and for its ledger row.
  UnitPrices pricesFor(std::string_view provider, std::string_view model) const;

  bool empty() const { return prices_.empty(); }

 private:
  std::map<std::tuple<std::string, std::string, std::string>, int64_t, std::less<>> prices_;
};

// The facts of a request body that bound its output. max_output_tokens is the maximum of the
// top-level "max_tokens", "max_completion_tokens" and "max_output_tokens" members that are
// non-negative numbers, with a fraction rounded up. choices is "n", the number of completions
// requested (default 1).
struct OutputRequest {
  std::optional<int64_t> max_output_tokens;
  int64_t choices = 1;
};

// Reads OutputRequest from a JSON object body with a streaming parser, so memory stays small
// whatever the body size. A body that is not a JSON object, or members of the wrong type, give
// the defaults, which is the safe side because the default output estimate applies.
OutputRequest readOutputRequest(std::string_view body);

// Reads a JSON number from a request body as a count such as max_tokens: null for a negative
// or non-finite value, INT64_MAX for one beyond int64_t, and a fraction rounded up.
std::optional<int64_t> countFromJson(int64_t value);
std::optional<int64_t> countFromJson(uint64_t value);
std::optional<int64_t> countFromJson(double value);

struct CostEstimateInput {
  std::string_view provider;
  std::string_view model;  // the request body's "model"; empty when none
  // The provider's metering kind. "openai" and "anthropic" are metered in tokens, and
  // "emails", "messages", "pinecone" and "requests" per request.
  std::string_view metering_kind;
  int64_t body_bytes = 0;
  OutputRequest output;
  int64_t item_count = 1;  // emails in a batch send (the body array's size); at least 1
};

struct CostEstimate {
  int64_t micros = 0;
  int64_t input_tokens = 0;   // estimated, for token kinds
  int64_t output_tokens = 0;  // maximum, for token kinds
};

// The most the request can cost at `prices`, rounded up:
// - openai, anthropic: one request, plus ceil(body_bytes / 4) input tokens at the higher of the
//   input and cached-input prices, plus max_output_tokens (or kDefaultMaxOutputTokens) times
//   choices output tokens;
// - emails: one request plus item_count emails; messages: one request plus one message;
// - pinecone, requests and any other kind: one request. NOTE: Pinecone read and write units
//   are not estimated, so their cost is not reserved.
// Saturates at INT64_MAX.
CostEstimate estimateWorstCase(const PriceTable& prices, const CostEstimateInput& input);

// The ledger's text for the prices applied to a request: a compact JSON object of the priced
// units in kMeteredUnits order, e.g. {"input_tokens":150000,"output_tokens":600000}, or ""
// when no unit has a price.
std::string formatPricesJson(const UnitPrices& prices);
// Writes the same text into `out`, replacing its contents, so its capacity is reused.
void formatPricesJson(const UnitPrices& prices, std::string& out);

// units at `micros_per_million`, rounded up; saturates at INT64_MAX.
int64_t costCeilMicros(int64_t units, int64_t micros_per_million);

}  // namespace keystore::limits
