#include "metering/usage_json.h"

#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <limits>
#include <vector>

namespace keystore::metering {
namespace {

using boost::json::error_code;
using boost::json::string_view;

bool segmentMatches(const JsonPathFrame& frame, std::string_view segment) {
  if (segment == "[]") {
    return frame.is_array;
  }
  return !frame.is_array && !frame.key_too_long && frame.key == segment;
}

void appendCapped(std::string& target, std::string_view part, std::size_t cap, bool& cut) {
  std::size_t room = cap > target.size() ? cap - target.size() : 0;
  if (part.size() > room) {
    cut = true;
  }
  target.append(part.substr(0, room));
}

bool isJsonWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The SAX handler behind basic_parser: keeps the path of open containers and forwards each
// value to the visitor.
class PathHandler {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  explicit PathHandler(JsonVisitor& visitor) : visitor_(visitor) {}

  void reset() {
    frames_.clear();
    key_.clear();
    key_too_long_ = false;
    string_.clear();
    string_truncated_ = false;
    stopped_ = false;
  }

  bool stopped() const { return stopped_; }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code& ec) { return beginContainer(false, ec); }
  bool on_object_end(std::size_t n, error_code& ec) { return endContainer(n, ec); }
  bool on_array_begin(error_code& ec) { return beginContainer(true, ec); }
  bool on_array_end(std::size_t n, error_code& ec) { return endContainer(n, ec); }

  bool on_key_part(string_view s, std::size_t, error_code&) {
    appendCapped(key_, std::string_view(s.data(), s.size()), kMaxJsonKeyBytes, key_too_long_);
    return true;
  }

  bool on_key(string_view s, std::size_t, error_code&) {
    appendCapped(key_, std::string_view(s.data(), s.size()), kMaxJsonKeyBytes, key_too_long_);
    JsonPathFrame& frame = frames_.back();
    frame.key.swap(key_);
    frame.key_too_long = key_too_long_;
    key_.clear();
    key_too_long_ = false;
    return true;
  }

  bool on_string_part(string_view s, std::size_t, error_code&) {
    appendCapped(string_, std::string_view(s.data(), s.size()), kMaxJsonStringBytes,
                 string_truncated_);
    return true;
  }

  bool on_string(string_view s, std::size_t, error_code& ec) {
    appendCapped(string_, std::string_view(s.data(), s.size()), kMaxJsonStringBytes,
                 string_truncated_);
    JsonScalar value;
    value.type = JsonScalar::Type::kString;
    value.text = string_;
    value.truncated = string_truncated_;
    bool ok = scalar(value, ec);
    string_.clear();
    string_truncated_ = false;
    return ok;
  }

  bool on_number_part(string_view, error_code&) { return true; }

  bool on_int64(int64_t i, string_view, error_code& ec) {
    JsonScalar value;
    value.type = JsonScalar::Type::kInteger;
    value.integer = i;
    return scalar(value, ec);
  }

  bool on_uint64(uint64_t u, string_view, error_code& ec) {
    JsonScalar value;
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      value.type = JsonScalar::Type::kInteger;
      value.integer = static_cast<int64_t>(u);
    } else {
      value.type = JsonScalar::Type::kNumber;
    }
    return scalar(value, ec);
  }

  bool on_double(double d, string_view, error_code& ec) {
    // 2^63 is exactly representable; anything below it converts to int64 without overflow.
    constexpr double kInt64Bound = 9223372036854775808.0;
    JsonScalar value;
    value.type = JsonScalar::Type::kNumber;
    if (std::isfinite(d) && std::trunc(d) == d && d >= -kInt64Bound && d < kInt64Bound) {
      value.type = JsonScalar::Type::kInteger;
      value.integer = static_cast<int64_t>(d);
    }
    return scalar(value, ec);
  }

  bool on_bool(bool b, error_code& ec) {
    JsonScalar value;
    value.type = JsonScalar::Type::kBool;
    value.boolean = b;
    return scalar(value, ec);
  }

  bool on_null(error_code& ec) {
    JsonScalar value;
    value.type = JsonScalar::Type::kNull;
    return scalar(value, ec);
  }

  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  JsonPath path() const { return JsonPath(frames_); }

  bool beginContainer(bool is_array, error_code& ec) {
    visitor_.onContainerBegin(path(), is_array);
    JsonPathFrame& frame = frames_.emplace_back();
    frame.is_array = is_array;
    return checkStop(ec);
  }

  bool endContainer(std::size_t size, error_code& ec) {
    bool is_array = frames_.back().is_array;
    frames_.pop_back();
    visitor_.onContainerEnd(path(), is_array, size);
    advance();
    return checkStop(ec);
  }

  bool scalar(const JsonScalar& value, error_code& ec) {
    visitor_.onScalar(path(), value);
    advance();
    return checkStop(ec);
  }

  // Moves an enclosing array on to its next element once a value is complete.
  void advance() {
    if (!frames_.empty() && frames_.back().is_array) {
      ++frames_.back().index;
    }
  }

  bool checkStop(error_code& ec) {
    if (!visitor_.stopRequested()) {
      return true;
    }
    stopped_ = true;
    ec = boost::json::error::exception;
    return false;
  }

  JsonVisitor& visitor_;
  std::vector<JsonPathFrame> frames_;
  std::string key_;
  bool key_too_long_ = false;
  std::string string_;
  bool string_truncated_ = false;
  bool stopped_ = false;
};

boost::json::parse_options parseOptions() {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  // Generated text can carry a stray invalid byte; that must not cost the usage figure.
  options.allow_invalid_utf8 = true;
  return options;
}

}  // namespace

bool JsonPath::matchesPrefix(std::initializer_list<std::string_view> segments) const {
  std::size_t i = 0;
  for (std::string_view segment : segments) {
    if (!segmentMatches(frames_[i], segment)) {
      return false;
    }
    ++i;
  }
  return true;
}

bool JsonPath::is(std::initializer_list<std::string_view> segments) const {
  return segments.size() == frames_.size() && matchesPrefix(segments);
}

bool JsonPath::startsWith(std::initializer_list<std::string_view> segments) const {
  return segments.size() <= frames_.size() && matchesPrefix(segments);
}

JsonPath JsonPath::suffix(std::size_t count) const {
  return JsonPath(count >= frames_.size() ? std::span<const JsonPathFrame>()
                                          : frames_.subspan(count));
}

std::string_view JsonPath::lastKey() const {
  if (frames_.empty() || frames_.back().is_array || frames_.back().key_too_long) {
    return {};
  }
  return frames_.back().key;
}

class JsonScanner::Parser {
 public:
  explicit Parser(JsonVisitor& visitor) : parser_(parseOptions(), visitor) {}

  boost::json::basic_parser<PathHandler> parser_;
};

JsonScanner::JsonScanner(JsonVisitor& visitor) : parser_(std::make_unique<Parser>(visitor)) {}

JsonScanner::~JsonScanner() = default;

void JsonScanner::write(std::string_view bytes) {
  if (state_ == State::kComplete) {
    for (char c : bytes) {
      if (!isJsonWhitespace(c)) {
        state_ = State::kFailed;
        return;
      }
    }
    return;
  }
  if (state_ != State::kParsing || bytes.empty()) {
    return;
  }

  auto& parser = parser_->parser_;
  error_code ec;
  std::size_t consumed = parser.write_some(true, bytes.data(), bytes.size(), ec);
  if (ec) {
    state_ = parser.handler().stopped() ? State::kStopped : State::kFailed;
    return;
  }
  if (parser.done()) {
    state_ = State::kComplete;
    // basic_parser stops at the end of the document, after any whitespace that follows it.
    write(bytes.substr(consumed));
  }
}

JsonScanner::State JsonScanner::finish() {
  if (state_ != State::kParsing) {
    return state_;
  }

  auto& parser = parser_->parser_;
  static constexpr char kNothing = 0;
  error_code ec;
  parser.write_some(false, &kNothing, 0, ec);
  if (ec) {
    state_ = parser.handler().stopped() ? State::kStopped : State::kFailed;
  } else {
    state_ = parser.done() ? State::kComplete : State::kFailed;
  }
  return state_;
}

void JsonScanner::reset() {
  parser_->parser_.reset();
  parser_->parser_.handler().reset();
  state_ = State::kParsing;
}

}  // namespace keystore::metering
