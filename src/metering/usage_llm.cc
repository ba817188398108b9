#include "metering/usage_llm.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

#include "metering/usage_body.h"

namespace keystore::metering {
namespace {

// Adds two non-negative counts, stopping at INT64_MAX instead of overflowing.
int64_t saturatingAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

// Reads OpenAI-shaped usage. A usage object is taken when it closes, and it replaces any
// earlier one instead of adding to it, because a stream reports totals. Groq may even report
// the same totals twice: `x_groq.usage` on the last content chunk, `usage` on the usage chunk.
class OpenAiExtractor final : public BodyUsageExtractor {
 public:
  explicit OpenAiExtractor(std::string request_model) : request_model_(std::move(request_model)) {}

 private:
  // Where a usage object sits: `usage` at the root (chat completions, embeddings, Responses
  // JSON), `response.usage` (Responses stream events) or `x_groq.usage` (Groq streams).
  enum Source { kRoot, kResponse, kGroq, kSourceCount, kNone = kSourceCount };

  struct Tokens {
    std::optional<int64_t> prompt;
    std::optional<int64_t> completion;
    std::optional<int64_t> cached;

    bool any() const { return prompt || completion || cached; }
  };

  static Source usageObjectAt(const JsonPath& path) {
    // Every container of a response passes here, and almost none is a usage object, so the
    // depth and the root key rule most of them out before the paths are compared.
    if (path.empty() || path.size() > 2) {
      return kNone;
    }
    std::string_view root = path.frames().front().key;
    if (root != "usage" && root != "response" && root != "x_groq") {
      return kNone;
    }
    if (path.is({"usage"})) {
      return kRoot;
    }
    if (path.is({"response", "usage"})) {
      return kResponse;
    }
    if (path.is({"x_groq", "usage"})) {
      return kGroq;
    }
    return kNone;
  }

  // The usage object a value lies in, and the length of that object's path.
  static Source usageObjectAbove(const JsonPath& path, std::size_t& depth) {
    if (path.startsWith({"usage"})) {
      depth = 1;
      return kRoot;
    }
    if (path.startsWith({"response", "usage"})) {
      depth = 2;
      return kResponse;
    }
    if (path.startsWith({"x_groq", "usage"})) {
      depth = 2;
      return kGroq;
    }
    return kNone;
  }

  void onDocumentBegin() override { primary_taken_in_document_ = false; }

  // Every value read below lies under one of these root members.
  bool wantsRootMember(std::string_view key) override {
    return key == "model" || key == "usage" || key == "response" || key == "x_groq";
  }

  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    // Only strings (the model) and integers (token counts) are read.
    if (!value.isString() && value.type != JsonScalar::Type::kInteger) {
      return;
    }
    if ((path.is({"model"}) || path.is({"response", "model"})) && value.isFullString() &&
        !value.text.empty()) {
      model_ = std::string(value.text);
      return;
    }

    std::size_t depth = 0;
    Source source = usageObjectAbove(path, depth);
    if (source == kNone || !value.isNonNegativeInteger()) {
      return;
    }
    JsonPath field = path.suffix(depth);
    Tokens& tokens = open_[source];
    if (field.is({"prompt_tokens"}) || field.is({"input_tokens"})) {
      tokens.prompt = value.integer;
    } else if (field.is({"completion_tokens"}) || field.is({"output_tokens"})) {
      tokens.completion = value.integer;
    } else if (field.is({"prompt_tokens_details", "cached_tokens"}) ||
               field.is({"input_tokens_details", "cached_tokens"})) {
      tokens.cached = value.integer;
    }
  }

  void onContainerBegin(const JsonPath& path, bool /*is_array*/) override {
    Source source = usageObjectAt(path);
    if (source != kNone) {
      open_[source] = Tokens();
    }
  }

  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t /*size*/) override {
    Source source = usageObjectAt(path);
    if (source == kNone || is_array || !open_[source].any()) {
      return;
    }
    // Within one document, `usage` wins over `x_groq.usage` whichever comes first.
    if (source == kGroq && primary_taken_in_document_) {
      return;
    }
    if (source != kGroq) {
      primary_taken_in_document_ = true;
    }
    taken_ = open_[source];
  }

  Usage makeUsage() override {
    Usage usage;
    usage.model = model_.empty() ? request_model_ : model_;
    if (!taken_) {
      return usage;
    }
    int64_t prompt = taken_->prompt.value_or(0);
    // A cached count above the prompt count is bogus; clamping keeps input_tokens >= 0.
    int64_t cached = std::min(taken_->cached.value_or(0), prompt);
    usage.input_tokens = prompt - cached;
    usage.cached_input_tokens = cached;
    usage.output_tokens = taken_->completion.value_or(0);
    usage.reported = true;
    return usage;
  }

  std::string request_model_;
  std::string model_;
  std::array<Tokens, kSourceCount> open_;
  std::optional<Tokens> taken_;
  bool primary_taken_in_document_ = false;
};

// Reads Anthropic Messages usage. Streamed counts are cumulative (`message_start` carries
// `message.usage`, each `message_delta` carries `usage` with the totals so far), so each field
// keeps its maximum over all usage objects and is never summed.
class AnthropicExtractor final : public BodyUsageExtractor {
 public:
  explicit AnthropicExtractor(std::string request_model)
      : request_model_(std::move(request_model)) {}

 private:
  enum Field { kInput, kOutput, kCacheRead, kCacheCreation, kFieldCount };
  using Counts = std::array<std::optional<int64_t>, kFieldCount>;

  static bool isUsageObject(const JsonPath& path) {
    return path.is({"usage"}) || path.is({"message", "usage"});
  }

  static std::optional<Field> fieldOf(std::string_view name) {
    if (name == "input_tokens") {
      return kInput;
    }
    if (name == "output_tokens") {
      return kOutput;
    }
    if (name == "cache_read_input_tokens") {
      return kCacheRead;
    }
    if (name == "cache_creation_input_tokens") {
      return kCacheCreation;
    }
    return std::nullopt;
  }

  // Every value read below lies under one of these root members.
  bool wantsRootMember(std::string_view key) override {
    return key == "model" || key == "usage" || key == "message";
  }

  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    if ((path.is({"model"}) || path.is({"message", "model"})) && value.isFullString() &&
        !value.text.empty()) {
      model_ = std::string(value.text);
      return;
    }
    if (!value.isNonNegativeInteger()) {
      return;
    }
    bool in_usage = (path.size() == 2 && path.startsWith({"usage"})) ||
                    (path.size() == 3 && path.startsWith({"message", "usage"}));
    if (!in_usage) {
      return;
    }
    if (std::optional<Field> field = fieldOf(path.lastKey())) {
      open_[*field] = value.integer;
    }
  }

  void onContainerBegin(const JsonPath& path, bool /*is_array*/) override {
    if (isUsageObject(path)) {
      open_ = Counts();
    }
  }

  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t /*size*/) override {
    if (is_array || !isUsageObject(path)) {
      return;
    }
    for (std::size_t i = 0; i < open_.size(); ++i) {
      if (open_[i]) {
        totals_[i] = std::max(totals_[i].value_or(0), *open_[i]);
        reported_ = true;
      }
    }
  }

  Usage makeUsage() override {
    Usage usage;
    usage.model = model_.empty() ? request_model_ : model_;
    usage.reported = reported_;
    usage.input_tokens =
        saturatingAdd(totals_[kInput].value_or(0), totals_[kCacheCreation].value_or(0));
    usage.cached_input_tokens = totals_[kCacheRead].value_or(0);
    usage.output_tokens = totals_[kOutput].value_or(0);
    return usage;
  }

  std::string request_model_;
  std::string model_;
  Counts open_;
  Counts totals_;
  bool reported_ = false;
};

}  // namespace

std::unique_ptr<UsageExtractor> makeOpenAiExtractor(std::string request_model) {
  return std::make_unique<OpenAiExtractor>(std::move(request_model));
}

std::unique_ptr<UsageExtractor> makeAnthropicExtractor(std::string request_model) {
  return std::make_unique<AnthropicExtractor>(std::move(request_model));
}

}  // namespace keystore::metering
