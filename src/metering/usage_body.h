// BodyUsageExtractor: the shared part of the UsageExtractors that read the response body. It
// picks JSON or event-stream parsing from the Content-Type and hands each JSON document (the
// whole body, or the data of one event) to the subclass, which is a JsonVisitor.
//
// Also here: the facts an extractor reads from the request body, and request path helpers.
//
// Thread-safety: one extractor per request; not shared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "metering/usage.h"
#include "metering/usage_json.h"
#include "metering/usage_sse.h"

namespace keystore::metering {

class BodyUsageExtractor : public UsageExtractor,
                           protected JsonVisitor,
                           private SseParser::Handler {
 public:
  void onResponse(int status, std::string_view content_type) final;
  void onBody(std::string_view chunk) final;
  Usage finish() final;

 protected:
  BodyUsageExtractor();

  // A JSON document begins: the body, or the data of one event.
  virtual void onDocumentBegin() {}
  // Builds the result once the body has ended.
  virtual Usage makeUsage() = 0;

  int status() const { return status_; }
  bool is2xx() const { return status_ >= 200 && status_ < 300; }

 private:
  enum class Mode { kUndecided, kJson, kEventStream };

  void onDataLine(bool first) override;
  void onData(std::string_view bytes) override;
  void onEventEnd(std::string_view type) override;

  JsonScanner scanner_;
  SseParser event_parser_;
  Mode mode_ = Mode::kUndecided;
  int status_ = 0;
};

// Facts the extractors read from the request body: the top-level `model` string of an object
// body, and the element count of an array body. Both are absent when the body is not valid
// JSON of that shape.
struct RequestBodyFacts {
  std::string model;
  std::optional<int64_t> array_size;
};

RequestBodyFacts readRequestBody(std::string_view body);

// The path without its query string and without one trailing '/'.
std::string_view pathWithoutQuery(std::string_view path);

}  // namespace keystore::metering
