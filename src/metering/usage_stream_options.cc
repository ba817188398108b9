#include "metering/usage_stream_options.h"

#include <algorithm>

namespace keystore::metering {
namespace {

constexpr std::string_view kIncludeUsageMember = R"("include_usage":true)";
constexpr std::string_view kStreamOptionsObject = R"({"include_usage":true})";

// Streaming and usage settings found in the request body.
class StreamOptionsReader final : public JsonVisitor {
 public:
  using Options = StreamOptionsFacts::Options;

  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    if (path.is({"stream"})) {
      facts.stream = value.type == JsonScalar::Type::kBool && value.boolean;
    } else if (path.is({"stream_options"})) {
      ++facts.options_count;
      facts.options = value.type == JsonScalar::Type::kNull ? Options::kNull : Options::kOther;
    } else if (path.is({"stream_options", "include_usage"})) {
      facts.countIncludeUsage(value.type == JsonScalar::Type::kBool && !value.boolean);
    }
  }

  void onContainerBegin(const JsonPath& path, bool is_array) override {
    if (path.empty()) {
      facts.root_is_object = !is_array;
    } else if (path.is({"stream_options"})) {
      ++facts.options_count;
      facts.options = is_array ? Options::kOther : Options::kObject;
    } else if (path.is({"stream_options", "include_usage"})) {
      facts.countIncludeUsage(false);
    }
  }

  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t size) override {
    if (!is_array && path.is({"stream_options"})) {
      facts.options_members = size;
    }
  }

  StreamOptionsFacts facts;
};

// The values whose position addStreamUsageOption needs.
enum class Target { kStreamOptions, kIncludeUsage };

// Signals the parse event that completes the target value: the '{' or the last byte of `null`
// of `stream_options`, or the last byte of the scalar `stream_options.include_usage`.
class StreamOptionsLocator final : public JsonVisitor {
 public:
  explicit StreamOptionsLocator(Target target) : target_(target) {}

  void onScalar(const JsonPath& path, const JsonScalar& /*value*/) override {
    found_ = found_ ||
             (target_ == Target::kStreamOptions ? path.is({"stream_options"})
                                                : path.is({"stream_options", "include_usage"}));
  }
  void onContainerBegin(const JsonPath& path, bool /*is_array*/) override {
    found_ = found_ || (target_ == Target::kStreamOptions && path.is({"stream_options"}));
  }
  bool stopRequested() const override { return found_; }

  bool found() const { return found_; }

 private:
  Target target_;
  bool found_ = false;
};

// Finds the offset of the byte whose parsing completes the target value. The parser fires
// that event on the same byte however the input is split, so the body is first scanned in
// slices to find the slice, then rescanned up to it and stepped one byte at a time inside it.
// That keeps the cost linear in the body size.
std::optional<std::size_t> locateValue(std::string_view body, Target target) {
  constexpr std::size_t kSliceBytes = 64;

  std::size_t slice_start = 0;
  {
    StreamOptionsLocator locator(target);
    JsonScanner scanner(locator);
    for (; slice_start < body.size(); slice_start += kSliceBytes) {
      scanner.write(body.substr(slice_start, kSliceBytes));
      if (locator.found()) {
        break;
      }
    }
    if (!locator.found()) {
      return std::nullopt;
    }
  }

  StreamOptionsLocator locator(target);
  JsonScanner scanner(locator);
  scanner.write(body.substr(0, slice_start));
  std::size_t slice_end = std::min(body.size(), slice_start + kSliceBytes);
  for (std::size_t i = slice_start; i < slice_end; ++i) {
    scanner.write(body.substr(i, 1));
    if (locator.found()) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> addStreamUsageOption(std::string_view body) {
  StreamOptionsReader reader;
  JsonScanner scanner(reader);
  scanner.write(body);
  if (scanner.finish() != JsonScanner::State::kComplete) {
    return std::nullopt;
  }
  return addStreamUsageOption(body, reader.facts);
}

std::optional<std::string> addStreamUsageOption(std::string_view body,
                                                const StreamOptionsFacts& facts) {
  using Options = StreamOptionsFacts::Options;
  if (!facts.root_is_object || !facts.stream || facts.options_count > 1 ||
      facts.options == Options::kOther) {
    return std::nullopt;
  }

  std::string rewritten;
  if (facts.include_usage_count > 0) {
    // A client that turned usage off would leave the row an estimate, and marketplace mode
    // bills it. So a single `false` becomes `true`, and the caller filters the usage chunk out
    // of the client's stream, as it does for an added member. Anything else (`true`, a
    // duplicate member, another type) is left for the upstream to judge.
    if (facts.include_usage_count != 1 || !facts.include_usage_false) {
      return std::nullopt;
    }
    std::optional<std::size_t> at = locateValue(body, Target::kIncludeUsage);
    if (!at) {
      return std::nullopt;
    }
    // `false` is five bytes ending at *at.
    rewritten.reserve(body.size());
    rewritten.append(body.substr(0, *at - 4));
    rewritten.append("true");
    rewritten.append(body.substr(*at + 1));
    return rewritten;
  }

  rewritten.reserve(body.size() + 48);

  if (facts.options == Options::kAbsent) {
    // The body is one complete object, so its last non-whitespace byte is the closing '}',
    // and `stream` makes the object non-empty.
    std::size_t close = body.find_last_not_of(" \t\r\n");
    rewritten.append(body.substr(0, close));
    rewritten.append(R"(,"stream_options":)");
    rewritten.append(kStreamOptionsObject);
    rewritten.append(body.substr(close));
    return rewritten;
  }

  std::optional<std::size_t> at = locateValue(body, Target::kStreamOptions);
  if (!at) {
    return std::nullopt;
  }
  if (facts.options == Options::kNull) {
    // `null` is four bytes ending at *at.
    std::size_t start = *at - 3;
    rewritten.append(body.substr(0, start));
    rewritten.append(kStreamOptionsObject);
    rewritten.append(body.substr(*at + 1));
    return rewritten;
  }

  // *at is the '{' of the client's stream_options object.
  rewritten.append(body.substr(0, *at + 1));
  rewritten.append(kIncludeUsageMember);
  if (facts.options_members > 0) {
    rewritten.push_back(',');
  }
  rewritten.append(body.substr(*at + 1));
  return rewritten;
}

UsageChunkFilter::UsageChunkFilter() : event_parser_(*this), scanner_(*this) {}

void UsageChunkFilter::write(std::string_view upstream, std::string& client) {
  while (!upstream.empty()) {
    if (at_event_boundary_ && event_parser_.lineFeedPending() && upstream.front() == '\n') {
      // The LF of the CR LF that ended the previous event goes wherever that event went.
      if (!last_event_removed_) {
        client.push_back('\n');
      }
      event_parser_.parseEvent(upstream.substr(0, 1));
      upstream.remove_prefix(1);
      at_event_boundary_ = false;
      continue;
    }
    at_event_boundary_ = false;

    event_ended_ = false;
    std::size_t consumed = event_parser_.parseEvent(upstream);
    std::string_view part = upstream.substr(0, consumed);
    upstream.remove_prefix(consumed);

    if (ruled_out_) {
      releaseHeld(client);
      client.append(part);
    } else {
      held_.append(part);
      if (held_.size() > kMaxHeldBytes) {
        ruled_out_ = true;
        releaseHeld(client);
      }
    }

    if (event_ended_) {
      last_event_removed_ = !ruled_out_ && isUsageChunk();
      if (last_event_removed_) {
        held_.clear();
      } else {
        releaseHeld(client);
      }
      startEvent();
      at_event_boundary_ = true;
    }
  }
}

void UsageChunkFilter::finish(std::string& client) {
  // The stream ended inside an event; judge it like a finished one.
  if (!ruled_out_ && isUsageChunk()) {
    held_.clear();
  }
  releaseHeld(client);
  startEvent();
}

void UsageChunkFilter::onDataLine(bool first) {
  if (first) {
    has_data_ = true;
  } else {
    feedScanner("\n");
  }
}

void UsageChunkFilter::onData(std::string_view bytes) {
  feedScanner(bytes);
}

void UsageChunkFilter::onEventEnd(std::string_view /*type*/) {
  event_ended_ = true;
}

void UsageChunkFilter::onScalar(const JsonPath& path, const JsonScalar& /*value*/) {
  // A scalar document, a `choices` or `usage` that is not a container (such as
  // `"usage":null`), or any element inside `choices` means this is not the usage chunk.
  if (path.empty() || path.is({"choices"}) || path.is({"usage"}) ||
      path.startsWith({"choices", "[]"})) {
    ruled_out_ = true;
  }
}

void UsageChunkFilter::onContainerBegin(const JsonPath& path, bool is_array) {
  if (path.empty()) {
    root_is_object_ = !is_array;
    ruled_out_ = ruled_out_ || is_array;
  } else if (path.is({"choices"})) {
    choices_is_array_ = is_array;
    ruled_out_ = ruled_out_ || !is_array;
  } else if (path.is({"usage"})) {
    usage_is_object_ = !is_array;
    ruled_out_ = ruled_out_ || is_array;
  } else if (path.startsWith({"choices", "[]"})) {
    ruled_out_ = true;
  }
}

void UsageChunkFilter::feedScanner(std::string_view bytes) {
  if (ruled_out_) {
    return;
  }
  scanner_.write(bytes);
  if (scanner_.state() == JsonScanner::State::kFailed) {
    ruled_out_ = true;
  }
}

bool UsageChunkFilter::isUsageChunk() {
  return has_data_ && scanner_.finish() == JsonScanner::State::kComplete && !ruled_out_ &&
         root_is_object_ && choices_is_array_ && usage_is_object_;
}

void UsageChunkFilter::startEvent() {
  scanner_.reset();
  has_data_ = false;
  ruled_out_ = false;
  root_is_object_ = false;
  choices_is_array_ = false;
  usage_is_object_ = false;
}

void UsageChunkFilter::releaseHeld(std::string& client) {
  client.append(held_);
  held_.clear();
}

}  // namespace keystore::metering
