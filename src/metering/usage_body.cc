#include "metering/usage_body.h"

#include <algorithm>
#include <cctype>

namespace keystore::metering {
namespace {

bool isEventStream(std::string_view content_type) {
  std::string_view media_type = content_type.substr(0, content_type.find(';'));
  while (!media_type.empty() && (media_type.back() == ' ' || media_type.back() == '\t')) {
    media_type.remove_suffix(1);
  }
  while (!media_type.empty() && (media_type.front() == ' ' || media_type.front() == '\t')) {
    media_type.remove_prefix(1);
  }
  constexpr std::string_view kEventStream = "text/event-stream";
  return std::ranges::equal(media_type, kEventStream, [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

class RequestBodyReader final : public JsonVisitor {
 public:
  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    if (path.is({"model"}) && value.isFullString()) {
      facts.model = std::string(value.text);
    }
  }

  void onContainerBegin(const JsonPath& path, bool is_array) override {
    if (path.empty()) {
      root_is_object_ = !is_array;
    }
  }

  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t size) override {
    if (path.empty() && is_array) {
      facts.array_size = static_cast<int64_t>(size);
    }
  }

  // An object body needs no parsing past its `model`, which keeps large prompts cheap.
  bool stopRequested() const override { return root_is_object_ && !facts.model.empty(); }

  RequestBodyFacts facts;

 private:
  bool root_is_object_ = false;
};

}  // namespace

BodyUsageExtractor::BodyUsageExtractor() : scanner_(*this), event_parser_(*this) {}

void BodyUsageExtractor::onResponse(int status, std::string_view content_type) {
  status_ = status;
  if (content_type.empty()) {
    mode_ = Mode::kUndecided;
  } else if (isEventStream(content_type)) {
    mode_ = Mode::kEventStream;
  } else {
    mode_ = Mode::kJson;
    onDocumentBegin();
  }
}

void BodyUsageExtractor::onBody(std::string_view chunk) {
  if (mode_ == Mode::kUndecided) {
    std::size_t first = chunk.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
      return;
    }
    chunk.remove_prefix(first);
    if (chunk.front() == '{' || chunk.front() == '[') {
      mode_ = Mode::kJson;
      onDocumentBegin();
    } else {
      mode_ = Mode::kEventStream;
    }
  }

  if (mode_ == Mode::kJson) {
    scanner_.write(chunk);
  } else {
    event_parser_.parse(chunk);
  }
}

Usage BodyUsageExtractor::finish() {
  // A JSON body, or the data of an event the stream cut short, ends here. Usage objects are
  // taken as soon as they close, so an unfinished document loses nothing already read.
  if (mode_ == Mode::kJson || event_parser_.inEvent()) {
    scanner_.finish();
  }
  Usage usage = makeUsage();
  usage.requests = 1;
  return usage;
}

void BodyUsageExtractor::onDataLine(bool first) {
  if (first) {
    scanner_.reset();
    onDocumentBegin();
  } else {
    scanner_.write("\n");
  }
}

void BodyUsageExtractor::onData(std::string_view bytes) {
  scanner_.write(bytes);
}

void BodyUsageExtractor::onEventEnd(std::string_view /*type*/) {
  scanner_.finish();
  scanner_.reset();
}

RequestBodyFacts readRequestBody(std::string_view body) {
  RequestBodyReader reader;
  JsonScanner scanner(reader);
  scanner.write(body);
  JsonScanner::State state = scanner.finish();
  if (state != JsonScanner::State::kComplete) {
    reader.facts.array_size.reset();
  }
  return reader.facts;
}

std::string_view pathWithoutQuery(std::string_view path) {
  // A plain loop: find_first_of searches the set once per character of the path.
  size_t end = 0;
  while (end < path.size() && path[end] != '?' && path[end] != '#') {
    ++end;
  }
  path = path.substr(0, end);
  if (path.size() > 1 && path.back() == '/') {
    path.remove_suffix(1);
  }
  return path;
}

}  // namespace keystore::metering
