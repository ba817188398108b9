#include "proxy/model_scope.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/url/pct_string_view.hpp>
#include <cstddef>
#include <limits>
#include <unordered_set>

namespace keystore::proxy {

namespace {

using boost::json::error_code;
using boost::json::string_view;

// Tool schemas in request bodies nest several levels deep, so the limit is above Boost.JSON's
// default of 32. Each open object costs one key set.
constexpr size_t kMaxJsonDepth = 64;

// Maximum length of client-supplied text that a message quotes back.
constexpr size_t kMaxQuotedLength = 128;

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsNoCase(std::string_view left, std::string_view right) {
  return left.size() == right.size() &&
         std::equal(left.begin(), left.end(), right.begin(),
                    [](char a, char b) { return lowerAscii(a) == lowerAscii(b); });
}

std::string_view trimSpaces(std::string_view text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

// Whether `text` may be quoted in a message: short, and only characters that cannot forge log
// lines or break the quotes.
bool isQuotable(std::string_view text, bool allow_spaces) {
  if (text.empty() || text.size() > kMaxQuotedLength) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [allow_spaces](char c) {
    bool word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == ':' || c == '/' || c == '-' || c == '+';
    return word || (allow_spaces && c == ' ');
  });
}

bool isBodylessMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

// Whether a percent-decoded query key is "model" in any letter case, or a bracketed form such
// as "model[]" that some frameworks read as the same parameter.
bool isModelKey(const boost::urls::pct_string_view& key) {
  constexpr std::string_view kModel = "model";
  auto decoded = key.decode();
  auto it = decoded.begin();
  for (char expected : kModel) {
    if (it == decoded.end() || lowerAscii(*it) != expected) {
      return false;
    }
    ++it;
  }
  return it == decoded.end() || *it == '[';
}

// Rejects a "model" query parameter, because an upstream that reads it would use a model the
// body check never saw. Fields are split at '&' and also at ';', which Python's
// urllib.parse treated as a separator before 3.9.2.
Result<void> rejectModelInQuery(std::string_view query) {
  while (!query.empty()) {
    size_t end = query.find_first_of("&;");
    std::string_view field = query.substr(0, end);
    std::string_view key = field.substr(0, field.find('='));

    auto encoded = boost::urls::make_pct_string_view(key);
    if (!encoded) {
      return fail(ErrorCode::kInvalidRequest,
                  "the query string has invalid percent-encoding (write a literal '%' as %25)");
    }
    if (isModelKey(*encoded)) {
      return fail(ErrorCode::kInvalidRequest,
                  "the model must be given in the request body, not the query string");
    }

    if (end == std::string_view::npos) {
      break;
    }
    query.remove_prefix(end + 1);
  }
  return {};
}

// A body without Content-Type passes here and must then parse as strict JSON.
bool isJsonMediaType(std::string_view content_type) {
  std::string_view media_type = trimSpaces(content_type.substr(0, content_type.find(';')));
  if (media_type.empty()) {
    return content_type.empty();
  }
  constexpr std::string_view kApplication = "application/";
  constexpr std::string_view kJsonSuffix = "+json";
  if (equalsNoCase(media_type, "application/json")) {
    return true;
  }
  return media_type.size() > kApplication.size() + kJsonSuffix.size() &&
         equalsNoCase(media_type.substr(0, kApplication.size()), kApplication) &&
         equalsNoCase(media_type.substr(media_type.size() - kJsonSuffix.size()), kJsonSuffix);
}

// Receives Boost.JSON's parse events for one request body. It keeps one set of keys per open
// object so that a repeated key fails the parse, and records the top-level "model" member.
class BodyScanner {
 public:
  static constexpr size_t max_array_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_object_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_string_size = std::numeric_limits<size_t>::max();
  static constexpr size_t max_key_size = std::numeric_limits<size_t>::max();

  enum class ModelState { kAbsent, kPending, kString, kNotString };

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code&) {
    noteNonStringValue();
    if (containers_.empty()) {
      top_level_is_object_ = true;
    }
    containers_.push_back(true);
    // The sets are reused across objects of the same depth to save allocations.
    if (open_objects_ == key_sets_.size()) {
      key_sets_.emplace_back();
    } else {
      key_sets_[open_objects_].clear();
    }
    ++open_objects_;
    return true;
  }

  bool on_object_end(size_t, error_code&) {
    containers_.pop_back();
    --open_objects_;
    return true;
  }

  bool on_array_begin(error_code&) {
    noteNonStringValue();
    containers_.push_back(false);
    return true;
  }

  bool on_array_end(size_t, error_code&) {
    containers_.pop_back();
    return true;
  }

  bool on_key_part(string_view part, size_t, error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }

  bool on_key(string_view part, size_t, error_code& ec) {
    key_.append(part.data(), part.size());
    if (containers_.size() == 1 && key_ == "model") {
      model_state_ = ModelState::kPending;
    }
    auto [position, inserted] = key_sets_[open_objects_ - 1].insert(std::move(key_));
    key_.clear();
    if (!inserted) {
      duplicate_key_ = *position;
      has_duplicate_key_ = true;
      ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
      return false;
    }
    return true;
  }

  bool on_string_part(string_view part, size_t, error_code&) {
    if (model_state_ == ModelState::kPending) {
      model_.append(part.data(), part.size());
    }
    return true;
  }

  bool on_string(string_view part, size_t, error_code&) {
    if (model_state_ == ModelState::kPending) {
      model_.append(part.data(), part.size());
      model_state_ = ModelState::kString;
    }
    return true;
  }

  bool on_number_part(string_view, error_code&) { return noteNonStringValue(); }
  bool on_int64(int64_t, string_view, error_code&) { return noteNonStringValue(); }
  bool on_uint64(uint64_t, string_view, error_code&) { return noteNonStringValue(); }
  bool on_double(double, string_view, error_code&) { return noteNonStringValue(); }
  bool on_bool(bool, error_code&) { return noteNonStringValue(); }
  bool on_null(error_code&) { return noteNonStringValue(); }
  // Comments are disabled in the parse options, so these are never called.
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

  bool topLevelIsObject() const { return top_level_is_object_; }
  bool hasDuplicateKey() const { return has_duplicate_key_; }
  const std::string& duplicateKey() const { return duplicate_key_; }
  ModelState modelState() const { return model_state_; }
  const std::string& model() const { return model_; }

 private:
  // The value after a top-level "model" key arrives as the very next event.
  bool noteNonStringValue() {
    if (model_state_ == ModelState::kPending) {
      model_state_ = ModelState::kNotString;
    }
    return true;
  }

  std::vector<bool> containers_;  // open containers, innermost last; true for an object
  std::vector<std::unordered_set<std::string>> key_sets_;  // index: object nesting level
  size_t open_objects_ = 0;
  std::string key_;  // the key being assembled from its parts
  bool top_level_is_object_ = false;
  bool has_duplicate_key_ = false;
  std::string duplicate_key_;
  ModelState model_state_ = ModelState::kAbsent;
  std::string model_;
};

Result<void> checkBodyModel(const std::vector<std::string>& allowed_models, std::string_view body) {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::json::basic_parser<BodyScanner> parser(options);
  error_code error;
  size_t consumed = parser.write_some(false, body.data(), body.size(), error);

  const BodyScanner& scanner = parser.handler();
  if (scanner.hasDuplicateKey() && isQuotable(scanner.duplicateKey(), true)) {
    return fail(ErrorCode::kInvalidJson,
                "the request body has duplicate key '" + scanner.duplicateKey() + "'");
  }
  if (scanner.hasDuplicateKey()) {
    return fail(ErrorCode::kInvalidJson, "the request body has a duplicate key");
  }
  if (error == boost::json::error::too_deep) {
    return fail(ErrorCode::kInvalidJson,
                "the request body nests JSON deeper than " + std::to_string(kMaxJsonDepth) +
                    " levels, the most that a token limited to certain models accepts");
  }
  // write_some stops after the first complete value, so unread bytes are trailing data.
  if (error || consumed != body.size()) {
    return fail(ErrorCode::kInvalidJson, "the request body is not valid JSON");
  }
  if (!scanner.topLevelIsObject()) {
    return fail(ErrorCode::kInvalidRequest, "the request body must be a JSON object");
  }

  switch (scanner.modelState()) {
    case BodyScanner::ModelState::kAbsent:
    case BodyScanner::ModelState::kPending:
      return fail(ErrorCode::kScopeDenied,
                  "this token is limited to certain models and the request names none");
    case BodyScanner::ModelState::kNotString:
      return fail(ErrorCode::kScopeDenied,
                  "this token is limited to certain models and the request's \"model\" is not "
                  "a string");
    case BodyScanner::ModelState::kString:
      break;
  }
  const std::string& model = scanner.model();
  if (std::find(allowed_models.begin(), allowed_models.end(), model) != allowed_models.end()) {
    return {};
  }
  if (isQuotable(model, false)) {
    return fail(ErrorCode::kScopeDenied, "agent token may not use model '" + model + "'");
  }
  return fail(ErrorCode::kScopeDenied, "agent token may not use the requested model");
}

}  // namespace

Result<void> checkModelRestriction(const std::vector<std::string>& allowed_models,
                                   std::string_view method, std::string_view content_type,
                                   std::string_view query, std::string_view body) {
  if (allowed_models.empty()) {
    return {};
  }

  if (auto query_checked = rejectModelInQuery(query); !query_checked) {
    return query_checked;
  }

  if (body.empty() && isBodylessMethod(method)) {
    return {};
  }
  if (body.empty()) {
    return fail(ErrorCode::kScopeDenied,
                "this token is limited to certain models and the request names none");
  }

  if (!isJsonMediaType(content_type)) {
    std::string_view media_type = trimSpaces(content_type.substr(0, content_type.find(';')));
    std::string quoted_type =
        isQuotable(media_type, false) ? " '" + std::string(media_type) + "'" : "";
    return fail(ErrorCode::kInvalidRequest,
                "this token is limited to certain models, which are read from a JSON body, so "
                "the Content-Type" +
                    quoted_type + " is not accepted. Send the body as application/json");
  }
  return checkBodyModel(allowed_models, body);
}

}  // namespace keystore::proxy
