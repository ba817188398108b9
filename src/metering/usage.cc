#include "metering/usage.h"

#include <optional>

#include "metering/usage_body.h"
#include "metering/usage_llm.h"

namespace keystore::metering {
namespace {

bool is2xxStatus(int status) {
  return status >= 200 && status < 300;
}

// Counts Resend emails. A batch counts the ids the response lists in `data`, because Resend's
// permissive batch validation sends only the valid items; without that list it counts the
// request body's array items.
class EmailsExtractor final : public BodyUsageExtractor {
 public:
  enum class Endpoint { kOther, kSend, kBatch };

  EmailsExtractor(Endpoint endpoint, std::optional<int64_t> request_count)
      : endpoint_(endpoint), request_count_(request_count) {}

 private:
  void onScalar(const JsonPath& /*path*/, const JsonScalar& /*value*/) override {}

  void onContainerEnd(const JsonPath& path, bool is_array, std::size_t size) override {
    if (endpoint_ == Endpoint::kBatch && is_array && path.is({"data"})) {
      response_count_ = static_cast<int64_t>(size);
    }
  }

  Usage makeUsage() override {
    Usage usage;
    if (!is2xx()) {
      return usage;
    }
    switch (endpoint_) {
      case Endpoint::kOther:
        usage.reported = true;
        break;
      case Endpoint::kSend:
        usage.emails = 1;
        usage.reported = true;
        break;
      case Endpoint::kBatch: {
        std::optional<int64_t> count = response_count_ ? response_count_ : request_count_;
        usage.emails = count.value_or(0);
        usage.reported = count.has_value();
        break;
      }
    }
    return usage;
  }

  Endpoint endpoint_;
  std::optional<int64_t> request_count_;
  std::optional<int64_t> response_count_;
};

// Reads Pinecone read and write units. Query and fetch responses carry `usage.readUnits`
// (`read_units` in snake-case clients); an upsert response carries `upsertedCount`, which counts
// as write units unless the response also reports `usage.writeUnits`.
class PineconeExtractor final : public BodyUsageExtractor {
 private:
  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    if (!value.isNonNegativeInteger()) {
      return;
    }
    if (path.is({"usage", "readUnits"}) || path.is({"usage", "read_units"})) {
      read_units_ = value.integer;
    } else if (path.is({"usage", "writeUnits"}) || path.is({"usage", "write_units"})) {
      write_units_ = value.integer;
    } else if (path.is({"upsertedCount"}) || path.is({"upserted_count"})) {
      upserted_count_ = value.integer;
    }
  }

  Usage makeUsage() override {
    Usage usage;
    usage.read_units = read_units_.value_or(0);
    usage.write_units = write_units_ ? *write_units_ : upserted_count_.value_or(0);
    usage.reported = read_units_ || write_units_ || upserted_count_;
    return usage;
  }

  std::optional<int64_t> read_units_;
  std::optional<int64_t> write_units_;
  std::optional<int64_t> upserted_count_;
};

// Counts from the request line and status alone: one Twilio message per 2xx POST to
// `.../Messages.json` when `counts_message` is set, and no unit but the request otherwise.
class StatusOnlyExtractor final : public UsageExtractor {
 public:
  explicit StatusOnlyExtractor(bool counts_message) : counts_message_(counts_message) {}

  void onResponse(int status, std::string_view /*content_type*/) override { status_ = status; }
  void onBody(std::string_view /*chunk*/) override {}

  Usage finish() override {
    Usage usage;
    usage.requests = 1;
    if (!is2xxStatus(status_)) {
      return usage;
    }
    usage.messages = counts_message_ ? 1 : 0;
    usage.reported = true;
    return usage;
  }

 private:
  bool counts_message_;
  int status_ = 0;
};

EmailsExtractor::Endpoint emailsEndpoint(const UsageRequest& request) {
  if (request.method != "POST") {
    return EmailsExtractor::Endpoint::kOther;
  }
  std::string_view path = pathWithoutQuery(request.path);
  if (path.ends_with("/emails/batch")) {
    return EmailsExtractor::Endpoint::kBatch;
  }
  if (path.ends_with("/emails")) {
    return EmailsExtractor::Endpoint::kSend;
  }
  return EmailsExtractor::Endpoint::kOther;
}

bool sendsTwilioMessage(const UsageRequest& request) {
  return request.method == "POST" && pathWithoutQuery(request.path).ends_with("/Messages.json");
}

}  // namespace

bool isMeteringKind(std::string_view kind) {
  return kind == "openai" || kind == "anthropic" || kind == "emails" || kind == "messages" ||
         kind == "pinecone" || kind == "requests";
}

Result<std::unique_ptr<UsageExtractor>> makeUsageExtractor(std::string_view kind,
                                                           const UsageRequest& request) {
  bool reads_body =
      kind == "openai" || kind == "anthropic" ||
      (kind == "emails" && emailsEndpoint(request) == EmailsExtractor::Endpoint::kBatch);
  RequestBodyFacts facts;
  if (reads_body) {
    facts = readRequestBody(request.body);
  }
  return makeUsageExtractor(kind, request, facts);
}

Result<std::unique_ptr<UsageExtractor>> makeUsageExtractor(std::string_view kind,
                                                           const UsageRequest& request,
                                                           const RequestBodyFacts& facts) {
  if (kind == "openai") {
    return makeOpenAiExtractor(facts.model);
  }
  if (kind == "anthropic") {
    return makeAnthropicExtractor(facts.model);
  }
  if (kind == "emails") {
    EmailsExtractor::Endpoint endpoint = emailsEndpoint(request);
    std::optional<int64_t> request_count;
    if (endpoint == EmailsExtractor::Endpoint::kBatch) {
      request_count = facts.array_size;
    }
    return std::make_unique<EmailsExtractor>(endpoint, request_count);
  }
  if (kind == "messages") {
    return std::make_unique<StatusOnlyExtractor>(sendsTwilioMessage(request));
  }
  if (kind == "pinecone") {
    return std::make_unique<PineconeExtractor>();
  }
  if (kind == "requests") {
    return std::make_unique<StatusOnlyExtractor>(false);
  }
  return fail(ErrorCode::kInternal,
              "unknown metering kind \"" + std::string(kind) +
                  "\"; expected openai, anthropic, emails, messages, pinecone or requests");
}

}  // namespace keystore::metering
