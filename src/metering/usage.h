// Usage extraction: reads a provider's response as it streams past the proxy and returns the
// metered units of that one request.
//
// A UsageExtractor is made per request from the provider's metering kind and the request's
// method, path and body. The proxy feeds it the response status and Content-Type, then every
// body chunk exactly as it arrives (any chunk boundary is fine), then asks for the Usage. The
// extractor keeps no copy of the body: JSON is parsed incrementally with Boost.JSON's SAX
// parser, a server-sent event stream is parsed one line at a time, and the per-request state
// is a few counters and key prefixes, so memory is bounded whatever the body size.
//
// Units per metering kind:
//   openai     OpenAI-shaped token usage: chat completions (JSON and streamed, where usage
//              comes in a final chunk whose `choices` is empty), the Responses API (JSON and
//              the streamed `response.completed` event), embeddings, and Groq's `x_groq.usage`.
//              input_tokens = prompt tokens - cached tokens, so a cached token is billed once,
//              at the cached price.
//   anthropic  Anthropic Messages usage, JSON and streamed (`message_start`, `message_delta`).
//              input_tokens = input_tokens + cache_creation_input_tokens;
//              cached_input_tokens = cache_read_input_tokens.
//   emails     Resend: one email per 2xx `POST .../emails`; `POST .../emails/batch` counts the
//              emails sent.
//   messages   Twilio: one message per 2xx POST to a path ending in `/Messages.json`.
//   pinecone   Pinecone read and write units from the response's `usage`, or `upsertedCount`.
//   requests   No other unit.
// Every kind sets requests = 1.
//
// Thread-safety: an extractor serves one request and is not shared; distinct extractors are
// independent.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace keystore::metering {

// The metered units of one request. Unit names are the contract's fixed names, shared by the
// ledger, the price table, reports and metrics.
struct Usage {
  // Input tokens billed at the full input price (cached tokens are not included).
  int64_t input_tokens = 0;
  // Input tokens served from the provider's prompt cache.
  int64_t cached_input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t requests = 0;
  int64_t emails = 0;
  int64_t messages = 0;
  int64_t read_units = 0;
  int64_t write_units = 0;
  // The model the response names, else the request body's `model`; empty for non-LLM kinds.
  std::string model;
  // False when the units could not be read from the response: for openai, anthropic and
  // pinecone, the response carried no usage figure; for emails, messages and requests, the
  // response was not 2xx (or the batch size is unknown). The other units are then zero except
  // requests; whether such a request is billed is the caller's decision.
  bool reported = false;

  bool operator==(const Usage&) const = default;
};

// The request as sent upstream. Views are read during makeUsageExtractor() only.
struct UsageRequest {
  std::string_view method;  // "POST"
  std::string_view path;    // upstream path; a query string is ignored
  std::string_view body;
};

// Collects the usage of one response. Call onResponse() once, onBody() for each body chunk in
// order, then finish() once.
class UsageExtractor {
 public:
  virtual ~UsageExtractor() = default;

  // The response status and Content-Type header (empty when absent). `text/event-stream`
  // selects event-stream parsing, any other type JSON; with no Content-Type, the first body
  // byte decides ('{' or '[' means JSON).
  virtual void onResponse(int status, std::string_view content_type) = 0;
  // The next body bytes, exactly as received.
  virtual void onBody(std::string_view chunk) = 0;
  // The usage of the whole response, including a body cut short.
  virtual Usage finish() = 0;
};

// True for the kind names listed above.
bool isMeteringKind(std::string_view kind);

// Makes the extractor for metering kind `kind`. Fails with kInternal for an unknown kind,
// since kinds come from the provider catalog and are checked when it loads.
Result<std::unique_ptr<UsageExtractor>> makeUsageExtractor(std::string_view kind,
                                                           const UsageRequest& request);

struct RequestBodyFacts;  // usage_body.h

// makeUsageExtractor for a caller that already read `facts` from request.body with
// readRequestBody (or an equivalent parse), so the body is not scanned again.
Result<std::unique_ptr<UsageExtractor>> makeUsageExtractor(std::string_view kind,
                                                           const UsageRequest& request,
                                                           const RequestBodyFacts& facts);

}  // namespace keystore::metering
