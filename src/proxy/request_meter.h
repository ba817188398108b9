// RequestMeter: the metering of one proxied request, between the relay and the ledger.
//
// It reads the upstream response as it passes (status, Content-Type, every body byte) and
// hands the usage extractor of the provider's metering kind each chunk, so usage is read
// without buffering the stream. For a streamed OpenAI-style chat completion whose client did
// not ask for usage, it rewrites the request to ask for it and filters the extra usage chunk
// out of what the client receives. At the end it prices the usage with the operator's prices
// and fills the metering fields of the ledger row.
//
// Thread-safety: one request, one coroutine; not shared.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "catalog/catalog.h"
#include "limits/cost_estimate.h"
#include "metering/usage.h"
#include "metering/usage_stream_options.h"
#include "store/records.h"

namespace keystore::proxy {

class RequestMeter {
 public:
  // `path` is the upstream path without the query; `body` is the request body, which may be
  // rewritten in place to ask for streamed usage.
  RequestMeter(const catalog::ProviderSpec& provider, std::string_view method,
               std::string_view path, std::string& body);

  // The worst case the request can cost at `prices`, for the budget reservation.
  int64_t worstCaseMicros(const limits::PriceTable& prices, std::string_view body) const;
  // The model the request body names, empty when none.
  const std::string& requestModel() const { return request_model_; }

  // Whether the request was rewritten to ask for streamed usage, so the client's stream may
  // come out shorter than the upstream's (the response is then re-framed as chunked).
  bool filtersClientStream() const { return filter_.has_value(); }

  void onResponse(int status, std::string_view content_type);
  // Feeds upstream body bytes. Returns the bytes for the client: `bytes` itself, or, while
  // the injected usage chunk is being filtered out, a view into an internal buffer that stays
  // valid until the next call.
  std::string_view onUpstreamBytes(std::string_view bytes);
  // Bytes the filter still held when the upstream body ended; send them last.
  std::string_view finishClientStream();

  // Fills row.model, units, usage_reported, prices, cost_micros and billable, and turns an
  // "ok" outcome into "usage_missing" when a token-metered response carried no usage: the
  // units are then estimated from the bytes sent and relayed (4 bytes a token), never zero.
  void fillRow(store::LedgerRow& row, const limits::PriceTable& prices, bool billable);
  // The tokens the request used, for the tokens-per-minute limit, after fillRow.
  int64_t tokensUsed() const { return tokens_used_; }

 private:
  bool tokenKind() const;
  // Removes the `"usage":null` member that asking for usage adds to every other chunk, so
  // the client's events read as they would have without the request's rewrite. The literal
  // can only be a member name there: inside a JSON string its quotes would be escaped.
  std::string_view stripNullUsage(std::string_view bytes, bool last);

  const catalog::ProviderSpec& provider_;
  std::string method_;
  std::string path_;
  std::string request_model_;
  int64_t request_bytes_ = 0;
  int64_t item_count_ = 1;
  limits::OutputRequest output_request_;
  std::unique_ptr<metering::UsageExtractor> extractor_;
  std::optional<metering::UsageChunkFilter> filter_;
  bool filtering_ = false;  // the response is an event stream and the filter applies
  std::string filtered_;
  std::string stripped_;
  std::string tail_;             // finishClientStream's result, apart from the buffers above
  bool usage_expected_ = false;  // a token-metered call whose response reports usage
  std::string held_;             // a tail that may begin a "usage":null member split across reads
  std::string joined_;           // held_ followed by the next bytes
  int upstream_status_ = 0;
  int64_t relayed_bytes_ = 0;
  int64_t tokens_used_ = 0;
};

}  // namespace keystore::proxy
