#include "metering/usage_json.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <cstring>
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

// Appends `part` to the `size` bytes in `buffer` of `capacity` bytes, keeping what fits.
void appendCapped(char* buffer, std::size_t& size, std::size_t capacity, std::string_view part,
                  bool& cut) {
  std::size_t room = capacity - size;
  if (part.size() > room) {
    cut = true;
  }
  std::size_t copied = std::min(room, part.size());
  if (copied > 0) {
    std::memcpy(buffer + size, part.data(), copied);
    size += copied;
  }
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

  explicit PathHandler(JsonVisitor& visitor) : visitor_(&visitor) {
    frames_.reserve(kJsonInlineDepth);
  }

  // Points a reused handler at the visitor of a new scan.
  void rebind(JsonVisitor& visitor) { visitor_ = &visitor; }

  void reset() {
    depth_ = 0;
    skipping_ = false;
    skipped_open_ = 0;
    key_size_ = 0;
    key_too_long_ = false;
    string_size_ = 0;
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
    if (skipping_) {
      return true;
    }
    appendCapped(keySlot(depth_ - 1), key_size_, kMaxJsonKeyBytes,
                 std::string_view(s.data(), s.size()), key_too_long_);
    return true;
  }

  bool on_key(string_view s, std::size_t, error_code&) {
    if (skipping_) {
      return true;
    }
    char* slot = keySlot(depth_ - 1);
    appendCapped(slot, key_size_, kMaxJsonKeyBytes, std::string_view(s.data(), s.size()),
                 key_too_long_);
    JsonPathFrame& frame = frames_[depth_ - 1];
    frame.key = std::string_view(slot, key_size_);
    frame.key_too_long = key_too_long_;
    key_size_ = 0;
    key_too_long_ = false;
    if (depth_ == 1 && !frame.key_too_long && !visitor_->wantsRootMember(frame.key)) {
      skipping_ = true;
      skipped_open_ = 0;
    }
    return true;
  }

  bool on_string_part(string_view s, std::size_t, error_code&) {
    if (skipping_) {
      return true;
    }
    appendCapped(string_.data(), string_size_, string_.size(), std::string_view(s.data(), s.size()),
                 string_truncated_);
    return true;
  }

  bool on_string(string_view s, std::size_t, error_code& ec) {
    if (skipping_) {
      return skipScalar();
    }
    JsonScalar value;
    value.type = JsonScalar::Type::kString;
    if (string_size_ == 0 && !string_truncated_) {
      // The whole string arrived in this piece, which stays valid during the callback, so it
      // is reported in place, cut as a copy would be.
      value.text = std::string_view(s.data(), std::min(s.size(), string_.size()));
      value.truncated = s.size() > string_.size();
    } else {
      appendCapped(string_.data(), string_size_, string_.size(),
                   std::string_view(s.data(), s.size()), string_truncated_);
      value.text = std::string_view(string_.data(), string_size_);
      value.truncated = string_truncated_;
    }
    bool ok = scalar(value, ec);
    string_size_ = 0;
    string_truncated_ = false;
    return ok;
  }

  bool on_number_part(string_view, error_code&) { return true; }

  bool on_int64(int64_t i, string_view, error_code& ec) {
    if (skipping_) {
      return skipScalar();
    }
    JsonScalar value;
    value.type = JsonScalar::Type::kInteger;
    value.integer = i;
    return scalar(value, ec);
  }

  bool on_uint64(uint64_t u, string_view, error_code& ec) {
    if (skipping_) {
      return skipScalar();
    }
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
    if (skipping_) {
      return skipScalar();
    }
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
    if (skipping_) {
      return skipScalar();
    }
    JsonScalar value;
    value.type = JsonScalar::Type::kBool;
    value.boolean = b;
    return scalar(value, ec);
  }

  bool on_null(error_code& ec) {
    if (skipping_) {
      return skipScalar();
    }
    JsonScalar value;
    value.type = JsonScalar::Type::kNull;
    return scalar(value, ec);
  }

  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  // Key buffers for the levels below kJsonInlineDepth, allocated together when first needed.
  using KeyChunk = std::array<std::array<char, kMaxJsonKeyBytes>, kJsonInlineDepth>;

  JsonPath path() const { return JsonPath(std::span(frames_.data(), depth_)); }

  // The key buffer of nesting level `level`. Its address never changes, so the frames' key
  // views stay valid while deeper levels allocate.
  char* keySlot(std::size_t level) {
    if (level < kJsonInlineDepth) {
      return inline_keys_[level].data();
    }
    std::size_t chunk = (level - kJsonInlineDepth) / kJsonInlineDepth;
    while (extra_keys_.size() <= chunk) {
      extra_keys_.push_back(std::make_unique<KeyChunk>());
    }
    return (*extra_keys_[chunk])[(level - kJsonInlineDepth) % kJsonInlineDepth].data();
  }

  bool beginContainer(bool is_array, error_code& ec) {
    if (skipping_) {
      ++skipped_open_;
      return true;
    }
    visitor_->onContainerBegin(path(), is_array);
    // Frames above the current depth are kept for reuse, so a level allocates only once.
    if (depth_ == frames_.size()) {
      frames_.emplace_back();
    }
    JsonPathFrame& frame = frames_[depth_];
    frame = JsonPathFrame{};
    frame.is_array = is_array;
    ++depth_;
    return checkStop(ec);
  }

  bool endContainer(std::size_t size, error_code& ec) {
    if (skipping_) {
      // The skipped member's value ends with its outermost container.
      skipping_ = --skipped_open_ > 0;
      return true;
    }
    bool is_array = frames_[depth_ - 1].is_array;
    --depth_;
    visitor_->onContainerEnd(path(), is_array, size);
    advance();
    return checkStop(ec);
  }

  bool scalar(const JsonScalar& value, error_code& ec) {
    visitor_->onScalar(path(), value);
    advance();
    return checkStop(ec);
  }

  // A scalar inside a skipped member. One that is not inside a container is the member's whole
  // value, and ends the skip.
  bool skipScalar() {
    string_size_ = 0;
    string_truncated_ = false;
    skipping_ = skipped_open_ > 0;
    return true;
  }

  // Moves an enclosing array on to its next element once a value is complete.
  void advance() {
    if (depth_ > 0 && frames_[depth_ - 1].is_array) {
      ++frames_[depth_ - 1].index;
    }
  }

  bool checkStop(error_code& ec) {
    if (!visitor_->stopRequested()) {
      return true;
    }
    stopped_ = true;
    ec = boost::json::error::exception;
    return false;
  }

  JsonVisitor* visitor_;
  std::vector<JsonPathFrame> frames_;  // frames_[0, depth_) are the open containers
  std::size_t depth_ = 0;
  std::array<std::array<char, kMaxJsonKeyBytes>, kJsonInlineDepth> inline_keys_;
  std::vector<std::unique_ptr<KeyChunk>> extra_keys_;
  std::size_t key_size_ = 0;
  bool key_too_long_ = false;
  std::array<char, kMaxJsonStringBytes> string_;
  std::size_t string_size_ = 0;
  bool string_truncated_ = false;
  bool stopped_ = false;
  // Inside the value of a root member the visitor declined, and how many containers of it are
  // open.
  bool skipping_ = false;
  std::size_t skipped_open_ = 0;
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

std::vector<std::unique_ptr<JsonScanner::Parser>>* JsonScanner::idleParsers() {
  // The flag is trivially destructible, so it stays readable after the pool is destroyed at
  // thread exit, and a scanner destroyed later frees its parser instead of touching the pool.
  thread_local bool pool_destroyed = false;
  struct Pool {
    std::vector<std::unique_ptr<Parser>> parsers;
    ~Pool() { pool_destroyed = true; }
  };
  if (pool_destroyed) {
    return nullptr;
  }
  thread_local Pool pool;
  if (pool.parsers.capacity() == 0) {
    pool.parsers.reserve(kIdleParsersPerThread);
  }
  return &pool.parsers;
}

JsonScanner::JsonScanner(JsonVisitor& visitor) {
  auto* idle = idleParsers();
  if (idle == nullptr || idle->empty()) {
    parser_ = std::make_unique<Parser>(visitor);
    return;
  }
  parser_ = std::move(idle->back());
  idle->pop_back();
  parser_->parser_.handler().rebind(visitor);
}

JsonScanner::~JsonScanner() {
  auto* idle = parser_ ? idleParsers() : nullptr;
  if (idle != nullptr && idle->size() < kIdleParsersPerThread) {
    parser_->parser_.reset();
    parser_->parser_.handler().reset();
    idle->push_back(std::move(parser_));
  }
}

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
