#include "proxy/request_meter.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "metering/usage_body.h"
#include "proxy/request_body.h"

namespace keystore::proxy {

namespace {

// The endpoints whose responses report token usage. Other calls of a token-metered provider
// (model lists, files, deletions) are counted as plain requests, never estimated as tokens.
bool expectsUsage(std::string_view path) {
  path = metering::pathWithoutQuery(path);
  for (std::string_view suffix :
       {"/chat/completions", "/completions", "/responses", "/embeddings", "/messages"}) {
    if (path.ends_with(suffix)) {
      return true;
    }
  }
  return false;
}
constexpr int64_t kBytesPerToken = 4;
constexpr __int128 kMillion = 1'000'000;
// The member the upstream adds to each chunk once usage is requested, compact and spaced.
constexpr std::string_view kNullUsage[] = {R"(,"usage":null)", R"(, "usage": null)"};

int64_t ceilDiv(int64_t value, int64_t divisor) {
  return (value + divisor - 1) / divisor;
}

}  // namespace

RequestMeter::RequestMeter(const catalog::ProviderSpec& provider, std::string_view method,
                           std::string_view path, std::string& body)
    : provider_(provider),
      method_(method),
      path_(path),
      request_bytes_(static_cast<int64_t>(body.size())) {
  // One SAX pass over the body, whose memory stays bounded whatever the body size, gives what
  // the estimate, the usage rewrite and the extractor need. Bodies of other metering kinds and
  // paths are not parsed.
  bool estimate_reads_body = tokenKind() || path_.ends_with("/emails/batch");
  bool extractor_reads_body =
      tokenKind() || (provider_.metering == "emails" && method_ == "POST" &&
                      metering::pathWithoutQuery(path_).ends_with("/emails/batch"));
  std::optional<RequestBodySummary> summary;
  if (estimate_reads_body || extractor_reads_body) {
    summary = summarizeRequestBody(body);
  }
  if (estimate_reads_body) {
    request_model_ = summary->facts.model;
    if (summary->facts.array_size) {
      item_count_ = std::max<int64_t>(1, *summary->facts.array_size);
    }
    if (tokenKind()) {
      output_request_ = summary->output;
    }
  }
  usage_expected_ = tokenKind() && method_ == "POST" && expectsUsage(path_);
  // A streamed chat completion reports usage only when asked. Asking changes what the upstream
  // sends, so the extra chunk is filtered out of the client's stream below.
  if (provider_.metering == "openai" && method_ == "POST" && path_.ends_with("/chat/completions")) {
    if (auto rewritten = addStreamUsageOption(body, *summary)) {
      body = std::move(*rewritten);
      filter_.emplace();
    }
  }
  metering::UsageRequest request{method_, path_, std::string_view(body)};
  // The rewrite leaves the model and an array body's size as they were, so the summary of the
  // original body still holds.
  auto extractor = summary
                       ? metering::makeUsageExtractor(provider_.metering, request, summary->facts)
                       : metering::makeUsageExtractor(provider_.metering, request);
  if (extractor) {
    extractor_ = std::move(*extractor);
  } else {
    spdlog::error("no usage extractor for provider {}: {}", provider_.id,
                  extractor.error().message);
  }
}

bool RequestMeter::tokenKind() const {
  return provider_.metering == "openai" || provider_.metering == "anthropic";
}

int64_t RequestMeter::worstCaseMicros(const limits::PriceTable& prices,
                                      std::string_view body) const {
  limits::CostEstimateInput input;
  input.provider = provider_.id;
  input.model = request_model_;
  // A call that reports no tokens costs at most one request.
  input.metering_kind = usage_expected_ || !tokenKind() ? std::string_view(provider_.metering)
                                                        : std::string_view("requests");
  input.body_bytes = static_cast<int64_t>(body.size());
  input.output = output_request_;
  input.item_count = item_count_;
  return limits::estimateWorstCase(prices, input).micros;
}

void RequestMeter::onResponse(int status, std::string_view content_type) {
  upstream_status_ = status;
  filtering_ = filter_.has_value() && content_type.starts_with("text/event-stream");
  if (extractor_) {
    extractor_->onResponse(status, content_type);
  }
}

std::string_view RequestMeter::onUpstreamBytes(std::string_view bytes) {
  if (extractor_) {
    extractor_->onBody(bytes);
  }
  if (!filtering_) {
    relayed_bytes_ += static_cast<int64_t>(bytes.size());
    return bytes;
  }
  filtered_.clear();
  filter_->write(bytes, filtered_);
  std::string_view out = stripNullUsage(filtered_, false);
  relayed_bytes_ += static_cast<int64_t>(out.size());
  return out;
}

std::string_view RequestMeter::finishClientStream() {
  // The bytes returned by the last onUpstreamBytes() may still be unsent, so the tail is built
  // in buffers of its own.
  tail_.clear();
  if (!filtering_) {
    return tail_;
  }
  filter_->finish(tail_);
  std::string tail_input = std::move(tail_);
  tail_ = std::string(stripNullUsage(tail_input, true));
  stripped_.clear();
  relayed_bytes_ += static_cast<int64_t>(tail_.size());
  return tail_;
}

std::string_view RequestMeter::stripNullUsage(std::string_view bytes, bool last) {
  // Only a held tail needs joining to the new bytes, in a buffer reused across calls.
  std::string_view rest = bytes;
  if (!held_.empty()) {
    joined_.assign(held_);
    joined_.append(bytes);
    held_.clear();
    rest = joined_;
  }
  stripped_.clear();
  // Every pattern starts with ',', so whole spans up to the next comma are copied at once.
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    stripped_.append(rest.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma);
    auto matched =
        std::find_if(std::begin(kNullUsage), std::end(kNullUsage),
                     [rest](std::string_view pattern) { return rest.starts_with(pattern); });
    if (matched != std::end(kNullUsage)) {
      rest.remove_prefix(matched->size());
      continue;
    }
    // A tail that may still become a pattern waits for the next bytes.
    bool partial =
        std::any_of(std::begin(kNullUsage), std::end(kNullUsage), [rest](std::string_view pattern) {
          return rest.size() < pattern.size() && pattern.starts_with(rest);
        });
    if (partial && !last) {
      held_.assign(rest);
      break;
    }
    stripped_.push_back(',');
    rest.remove_prefix(1);
  }
  return stripped_;
}

void RequestMeter::fillRow(store::LedgerRow& row, const limits::PriceTable& prices, bool billable) {
  metering::Usage usage;
  if (extractor_) {
    usage = extractor_->finish();
  }
  // The model the upstream received is the one billed: the request's, exactly as forwarded.
  // The response often names a dated version ("gpt-4o-mini-2024-07-18") that the price table
  // does not list, so it is used only when the request named none.
  row.model = request_model_.empty() ? usage.model : request_model_;
  row.billable = billable;
  row.usage_reported = usage.reported;
  // Providers do not bill requests they refused or failed, and neither does Keystore: a row
  // without an upstream response, or with an error status, carries no units and no price.
  if (row.upstream_status < 200 || row.upstream_status >= 400) {
    row.units = store::UnitCounts{};
    row.prices.clear();
    row.cost_micros = 0;
    return;
  }
  store::UnitCounts units;
  units.input_tokens = usage.input_tokens;
  units.cached_input_tokens = usage.cached_input_tokens;
  units.output_tokens = usage.output_tokens;
  units.requests = std::max<int64_t>(usage.requests, 1);
  units.emails = usage.emails;
  units.messages = usage.messages;
  units.read_units = usage.read_units;
  units.write_units = usage.write_units;
  if (usage_expected_ && !usage.reported) {
    // The provider will bill this request, so an unknown count must not read as zero: the
    // bytes sent and relayed give an estimate, and the outcome marks it as one.
    units.input_tokens = ceilDiv(request_bytes_, kBytesPerToken);
    units.output_tokens = ceilDiv(relayed_bytes_, kBytesPerToken);
    if (row.outcome == "ok" || row.outcome == "client_aborted") {
      row.outcome = "usage_missing";
    }
  }
  row.units = units;
  tokens_used_ = units.input_tokens + units.cached_input_tokens + units.output_tokens;

  // One rounding per row: the exact sum of units times prices, then half up to whole
  // micro-dollars.
  limits::UnitPrices unit_prices = prices.pricesFor(provider_.id, row.model);
  __int128 total = 0;
  for (size_t i = 0; i < unit_prices.size(); ++i) {
    if (unit_prices[i]) {
      total += static_cast<__int128>(units.*store::kUnitCountFields[i]) * *unit_prices[i];
    }
  }
  __int128 cost = (total + kMillion / 2) / kMillion;
  row.cost_micros = cost > INT64_MAX ? INT64_MAX : static_cast<int64_t>(cost);
  limits::formatPricesJson(unit_prices, row.prices);
}

}  // namespace keystore::proxy
