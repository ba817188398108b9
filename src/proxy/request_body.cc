#include "proxy/request_body.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cstring>

#include "metering/usage_json.h"

namespace keystore::proxy {
namespace {

using boost::json::string_view;
using Options = metering::StreamOptionsFacts::Options;
using error_code = boost::system::error_code;

// Longer keys match no member the summary reads.
constexpr std::size_t kMaxKeyBytes = 32;

// The top-level members the summary reads.
enum class Member { kOther, kModel, kMaxTokens, kChoices, kStream, kStreamOptions };

Member memberOf(std::string_view key) {
  if (key == "model") {
    return Member::kModel;
  }
  if (key == "max_tokens" || key == "max_completion_tokens" || key == "max_output_tokens") {
    return Member::kMaxTokens;
  }
  if (key == "n") {
    return Member::kChoices;
  }
  if (key == "stream") {
    return Member::kStream;
  }
  if (key == "stream_options") {
    return Member::kStreamOptions;
  }
  return Member::kOther;
}

// The SAX handler of the one pass. It tracks only the nesting depth, the current top-level
// member and, inside a top-level `stream_options` object, whether the current member is
// `include_usage`. So it copies only keys at those two levels (32 bytes at most each) and the
// first `model` string.
class SummaryHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  RequestBodySummary summary;
  std::size_t deepest = 0;  // the maximum number of containers open at once

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code&) {
    beginContainer(false);
    return true;
  }
  bool on_object_end(std::size_t size, error_code&) {
    endContainer(false, size);
    return true;
  }
  bool on_array_begin(error_code&) {
    beginContainer(true);
    return true;
  }
  bool on_array_end(std::size_t size, error_code&) {
    endContainer(true, size);
    return true;
  }

  bool on_key_part(string_view part, std::size_t, error_code&) {
    appendKey(part);
    return true;
  }
  bool on_key(string_view part, std::size_t, error_code&) {
    appendKey(part);
    std::string_view key = key_too_long_ ? std::string_view() : std::string_view(key_, key_size_);
    if (depth_ == 1) {
      member_ = memberOf(key);
    } else if (in_options_object_ && depth_ == 2) {
      include_usage_member_ = key == "include_usage";
    }
    key_size_ = 0;
    key_too_long_ = false;
    return true;
  }

  bool on_string_part(string_view part, std::size_t, error_code&) {
    if (readsModel()) {
      appendModel(part);
    }
    return true;
  }
  bool on_string(string_view part, std::size_t, error_code&) {
    if (readsModel()) {
      appendModel(part);
      // Like readRequestBody, which stops at the first non-empty complete `model` string.
      if (!model_truncated_) {
        summary.facts.model.assign(model_.data(), model_size_);
        model_found_ = !summary.facts.model.empty();
      }
      model_size_ = 0;
      model_truncated_ = false;
    }
    onScalar(Options::kOther, false);
    return true;
  }

  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(int64_t value, string_view, error_code&) {
    onNumber(limits::countFromJson(value));
    onScalar(Options::kOther, false);
    return true;
  }
  bool on_uint64(uint64_t value, string_view, error_code&) {
    onNumber(limits::countFromJson(value));
    onScalar(Options::kOther, false);
    return true;
  }
  bool on_double(double value, string_view, error_code&) {
    onNumber(limits::countFromJson(value));
    onScalar(Options::kOther, false);
    return true;
  }
  bool on_bool(bool value, error_code&) {
    onScalar(Options::kOther, value, !value);
    return true;
  }
  bool on_null(error_code&) {
    onScalar(Options::kNull, false);
    return true;
  }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  bool readsModel() const { return depth_ == 1 && member_ == Member::kModel && !model_found_; }

  // True when the value that begins now is the member `stream_options.include_usage`.
  bool atIncludeUsage() const { return in_options_object_ && depth_ == 2 && include_usage_member_; }

  void beginContainer(bool is_array) {
    metering::StreamOptionsFacts& options = *summary.stream_options;
    if (depth_ == 0) {
      options.root_is_object = !is_array;
    } else if (depth_ == 1 && member_ == Member::kStreamOptions) {
      ++options.options_count;
      options.options = is_array ? Options::kOther : Options::kObject;
      in_options_object_ = !is_array;
      include_usage_member_ = false;
    } else if (atIncludeUsage()) {
      options.countIncludeUsage(false);
    }
    ++depth_;
    deepest = std::max(deepest, depth_);
  }

  void endContainer(bool is_array, std::size_t size) {
    --depth_;
    if (depth_ == 0 && is_array) {
      summary.facts.array_size = static_cast<int64_t>(size);
    } else if (depth_ == 1 && in_options_object_) {
      summary.stream_options->options_members = size;
      in_options_object_ = false;
    }
  }

  // A scalar value: `kind` is kNull for null and kOther otherwise, `value` is true only for the
  // literal true, and `is_false` only for the literal false.
  void onScalar(Options kind, bool value, bool is_false = false) {
    metering::StreamOptionsFacts& options = *summary.stream_options;
    if (depth_ == 1 && member_ == Member::kStream) {
      options.stream = value;
    } else if (depth_ == 1 && member_ == Member::kStreamOptions) {
      ++options.options_count;
      options.options = kind;
    } else if (atIncludeUsage()) {
      options.countIncludeUsage(is_false);
    }
  }

  // A number at the top level; nullopt for a negative or unusable one.
  void onNumber(std::optional<int64_t> value) {
    if (depth_ != 1 || !value) {
      return;
    }
    limits::OutputRequest& output = summary.output;
    if (member_ == Member::kMaxTokens) {
      output.max_output_tokens = std::max(output.max_output_tokens.value_or(0), *value);
    } else if (member_ == Member::kChoices && *value >= 1) {
      output.choices = std::max(output.choices, *value);
    }
  }

  // Copies the keys that may name a member the summary reads, and no others.
  void appendKey(string_view part) {
    bool read = depth_ == 1 || (in_options_object_ && depth_ == 2);
    if (!read || key_too_long_ || key_size_ + part.size() > kMaxKeyBytes) {
      key_too_long_ = true;
      return;
    }
    std::memcpy(key_ + key_size_, part.data(), part.size());
    key_size_ += part.size();
  }

  void appendModel(string_view part) {
    if (model_truncated_ || model_size_ + part.size() > model_.size()) {
      model_truncated_ = true;
      return;
    }
    std::memcpy(model_.data() + model_size_, part.data(), part.size());
    model_size_ += part.size();
  }

  std::size_t depth_ = 0;
  Member member_ = Member::kOther;
  bool in_options_object_ = false;  // inside the top-level `stream_options` object
  bool include_usage_member_ = false;
  char key_[kMaxKeyBytes] = {};
  std::size_t key_size_ = 0;
  bool key_too_long_ = false;
  // A `model` longer than this is cut, and readRequestBody ignores cut strings.
  std::array<char, metering::kMaxJsonStringBytes> model_ = {};
  std::size_t model_size_ = 0;
  bool model_truncated_ = false;
  bool model_found_ = false;
};

RequestBodySummary readSeparately(std::string_view body) {
  RequestBodySummary summary;
  summary.facts = metering::readRequestBody(body);
  summary.output = limits::readOutputRequest(body);
  return summary;
}

}  // namespace

RequestBodySummary summarizeRequestBody(std::string_view body) {
  if (body.empty()) {
    // No reader finds anything in an empty body, and none rewrites it.
    RequestBodySummary summary;
    summary.stream_options.emplace();
    return summary;
  }

  boost::json::parse_options options;
  options.max_depth = metering::kMaxJsonDepth;
  boost::json::basic_parser<SummaryHandler> parser(options);
  parser.handler().summary.stream_options.emplace();
  error_code error;
  std::size_t consumed = parser.write_some(false, body.data(), body.size(), error);
  // write_some stops after the document and the whitespace that follows it. The readers
  // disagree on what comes after that (readOutputRequest ignores it, the others reject it), so
  // such a body falls back too.
  if (error || consumed != body.size()) {
    return readSeparately(body);
  }

  RequestBodySummary summary = std::move(parser.handler().summary);
  // readOutputRequest parses with Boost.JSON's default depth limit and gives the defaults for
  // a body nested deeper.
  if (parser.handler().deepest > boost::json::parse_options{}.max_depth) {
    summary.output = limits::OutputRequest{};
  }
  return summary;
}

std::optional<std::string> addStreamUsageOption(std::string_view body,
                                                const RequestBodySummary& summary) {
  if (summary.stream_options) {
    return metering::addStreamUsageOption(body, *summary.stream_options);
  }
  return metering::addStreamUsageOption(body);
}

}  // namespace keystore::proxy
