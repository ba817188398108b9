#include "proxy/header_rules.h"

#include <algorithm>
#include <array>
#include <boost/beast/core/string.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/static_resource.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <charconv>
#include <new>
#include <optional>
#include <vector>

#include "common/encoding.h"
#include "common/secure_zero.h"
#include "proxy/message_head.h"

namespace keystore::proxy {

namespace http = boost::beast::http;

namespace {

// Field names and list tokens are ASCII, so this needs no locale.
bool equalsNoCase(std::string_view a, std::string_view b) {
  return boost::beast::iequals(a, b);
}

// Beast maps every name in its field table to a field code when a field is inserted, whatever
// its case, so such a name is recognized by its code alone.
bool isHopByHop(const Fields::value_type& field) {
  switch (field.name()) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
      return true;
    default:
      return false;
  }
}

// Credential headers that Beast 1.81 has no code for. They are compared by name whatever the
// field's code, so a Beast that assigns them one still finds them.
bool isNamedCredentialHeader(std::string_view name) {
  static constexpr std::string_view kNames[] = {"x-api-key", "api-key", "x-goog-api-key"};
  for (auto known : kNames) {
    if (equalsNoCase(name, known)) {
      return true;
    }
  }
  return false;
}

bool isClientCredentialHeader(const Fields::value_type& field,
                              const catalog::ProviderSpec& provider) {
  switch (field.name()) {
    case http::field::authorization:
    case http::field::proxy_authorization:
    case http::field::cookie:
      return true;
    default:
      break;
  }
  std::string_view name = field.name_string();
  if (isNamedCredentialHeader(name)) {
    return true;
  }
  for (const auto& location : provider.token_locations) {
    if (location.kind == catalog::TokenLocation::Kind::kHeader &&
        equalsNoCase(name, location.name)) {
      return true;
    }
  }
  return equalsNoCase(name, provider.auth.header);
}

bool isResponseCredentialHeader(const Fields::value_type& field) {
  switch (field.name()) {
    case http::field::authorization:
    case http::field::proxy_authenticate:
    case http::field::set_cookie:
    case http::field::set_cookie2:
      return true;
    default:
      return isNamedCredentialHeader(field.name_string());
  }
}

// Returns whether `matches` is true for an item of the comma-separated lists in the `field`
// fields.
template <typename Matches>
bool anyListItem(const Fields& fields, http::field field, Matches matches) {
  // A scan of the list compares field codes, while Beast's tree lookup compares names.
  for (const auto& candidate : fields) {
    if (candidate.name() != field) {
      continue;
    }
    std::string_view value = candidate.value();
    while (true) {
      size_t comma = value.find(',');
      if (matches(trimOptionalWhitespace(value.substr(0, comma)))) {
        return true;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      value.remove_prefix(comma + 1);
    }
  }
  return false;
}

// The header names a message's Connection fields list. Those fields are hop-by-hop for this
// message only. The list is read once per message, because the check runs for every field.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const Fields& fields) {
    anyListItem(fields, http::field::connection, [this](std::string_view token) {
      if (!token.empty()) {
        names_.push_back(token);
      }
      return false;
    });
  }

  bool contains(std::string_view name) const {
    return std::any_of(names_.begin(), names_.end(),
                       [name](std::string_view listed) { return equalsNoCase(listed, name); });
  }

 private:
  boost::container::small_vector<std::string_view, 4> names_;
};

// A JSON-object credential parsed into a buffer of its own, which is zeroed when the document
// goes away. Boost.JSON copies every field value into the document's storage, and storage taken
// from the heap would go back to it with the secrets still in it.
//
// NOTE: Boost.JSON's parser keeps a temporary stack of its own, on the thread's stack for a
// small document and on the heap beyond that, which this does not zero.
class CredentialJson {
 public:
  explicit CredentialJson(const Secret& credential)
      : buffer_(credential.size() * kStoragePerTextByte + kStorageSlack),
        resource_(buffer_.data(), buffer_.size()),
        document_(boost::json::storage_ptr(&resource_)) {
    boost::system::error_code error;
    try {
      document_ =
          boost::json::parse(credential.reveal(), error, boost::json::storage_ptr(&resource_));
    } catch (const std::bad_alloc&) {
      // The buffer ran out: static_resource never falls back to the heap.
      document_ = nullptr;
    }
    if (error) {
      document_ = nullptr;
    }
  }
  ~CredentialJson() {
    document_ = nullptr;
    secureZero(buffer_.data(), buffer_.size());
  }
  CredentialJson(const CredentialJson&) = delete;
  CredentialJson& operator=(const CredentialJson&) = delete;

  // Returns the credential's fields, or null when it is not a JSON object (or did not fit).
  const boost::json::object* object() const { return document_.if_object(); }

 private:
  // Storage reserved per byte of the credential's text, plus a fixed part. The densest text,
  // members as short as "a":"b", needs less: a unit test parses 500 of them.
  static constexpr size_t kStoragePerTextByte = 8;
  static constexpr size_t kStorageSlack = 1024;

  std::vector<unsigned char> buffer_;
  boost::json::static_resource resource_;
  boost::json::value document_;
};

// Reads one field of a parsed JSON-object credential.
Result<Secret> credentialField(const CredentialJson& document, std::string_view field) {
  if (document.object() == nullptr) {
    return fail(ErrorCode::kProviderNotConfigured,
                "the stored credential is not a JSON object with the fields this provider needs");
  }
  const auto* value = document.object()->if_contains(field);
  if (value == nullptr || !value->is_string()) {
    return fail(ErrorCode::kProviderNotConfigured,
                "the stored credential lacks the field '" + std::string(field) + "'");
  }
  Secret result(std::string(value->get_string()));
  return result;
}

Result<Secret> credentialField(const Secret& credential, std::string_view field) {
  return credentialField(CredentialJson(credential), field);
}

// Returns base64("user:password") from the credential's Basic auth fields, parsed once. The
// caller zeroes the result after use.
Result<std::string> encodedBasicPair(const CredentialJson& document,
                                     const catalog::AuthSpec& auth) {
  auto user = credentialField(document, auth.username_field);
  if (!user) {
    return std::unexpected(user.error());
  }
  auto password = credentialField(document, auth.password_field);
  if (!password) {
    return std::unexpected(password.error());
  }
  std::string pair(user->reveal());
  pair.push_back(':');
  pair.append(password->reveal());
  std::string encoded = base64Encode(pair);
  secureZero(pair.data(), pair.size());
  return encoded;
}

// Percent-encodes everything outside RFC 3986's unreserved set, so a key containing '&', '#'
// or '%' stays one query value.
void appendQueryEncoded(std::string& out, std::string_view value) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[byte >> 4]);
      out.push_back(kDigits[byte & 0x0f]);
    }
  }
}

// The header that carries the injected credential, or empty for query authentication.
std::string_view credentialHeaderName(const catalog::ProviderSpec& provider) {
  using Scheme = catalog::AuthSpec::Scheme;
  switch (provider.auth.scheme) {
    case Scheme::kBearer:
    case Scheme::kBasic:
      return "Authorization";
    case Scheme::kHeader:
      return provider.auth.header;
    case Scheme::kQuery:
      break;
  }
  return {};
}

// Puts `prefix` followed by `secret` in field `name` of `sink`. The value is assembled on the
// stack when it fits, so the credential is not copied to a heap block, and is zeroed once the
// sink has copied it.
template <typename Sink>
void addCredential(Sink& sink, std::string_view name, std::string_view prefix,
                   std::string_view secret) {
  std::array<char, 512> on_stack;
  std::string on_heap;
  const size_t size = prefix.size() + secret.size();
  char* value = on_stack.data();
  if (size > on_stack.size()) {
    on_heap.resize(size);
    value = on_heap.data();
  }
  std::copy(prefix.begin(), prefix.end(), value);
  std::copy(secret.begin(), secret.end(), value + prefix.size());
  sink.add(http::field::unknown, name, std::string_view(value, size));
  secureZero(value, size);
}

// The header rules, written to either sink below. The fields the proxy adds come after the
// client's, in a fixed order, and the credential comes last. A catalog may name a header that
// the proxy also adds, such as Host, as the credential header. The proxy's own value is then
// left out, so the field appears once.
template <typename Sink>
Result<void> writeUpstreamHeaders(const Fields& client, Sink& sink,
                                  const catalog::ProviderSpec& provider, const Secret& credential,
                                  std::string_view request_id, std::string_view agent_token) {
  const ConnectionOptions connection_options(client);
  for (const auto& field : client) {
    if (!agent_token.empty() && field.value().find(agent_token) != std::string_view::npos) {
      continue;
    }
    switch (field.name()) {
      case http::field::host:
      case http::field::expect:
      case http::field::accept_encoding:
      case http::field::content_length:
        continue;
      default:
        break;
    }
    std::string_view name = field.name_string();
    // By name, because Beast 1.81 has no code for x-request-id.
    if (equalsNoCase(name, "x-request-id") || isHopByHop(field) ||
        isClientCredentialHeader(field, provider) || connection_options.contains(name)) {
      continue;
    }
    sink.add(field.name(), name, field.value());
  }
  // Every field added here was skipped above, so adding cannot duplicate one.
  const std::string_view credential_header = credentialHeaderName(provider);
  auto addOwn = [&](http::field code, std::string_view name, std::string_view value) {
    if (!equalsNoCase(name, credential_header)) {
      sink.add(code, name, value);
    }
  };
  addOwn(http::field::host, "Host", provider.base.host_header);
  addOwn(http::field::accept_encoding, "Accept-Encoding", "identity");
  addOwn(http::field::unknown, "x-request-id", request_id);

  using Scheme = catalog::AuthSpec::Scheme;
  switch (provider.auth.scheme) {
    case Scheme::kBearer:
      addCredential(sink, credential_header, "Bearer ", credential.reveal());
      break;
    case Scheme::kHeader:
      addCredential(sink, credential_header, provider.auth.prefix, credential.reveal());
      break;
    case Scheme::kBasic: {
      auto encoded = encodedBasicPair(CredentialJson(credential), provider.auth);
      if (!encoded) {
        return std::unexpected(encoded.error());
      }
      addCredential(sink, credential_header, "Basic ", *encoded);
      secureZero(encoded->data(), encoded->size());
      break;
    }
    case Scheme::kQuery:
      break;  // added to the target by buildUpstreamTarget
  }
  return {};
}

// Adds to a Beast field container.
class FieldsSink {
 public:
  explicit FieldsSink(Fields& fields) : fields_(fields) {}
  void add(http::field code, std::string_view name, std::string_view value) {
    if (code == http::field::unknown) {
      fields_.insert(name, value);
    } else {
      fields_.insert(code, name, value);
    }
  }

 private:
  Fields& fields_;
};

// Appends `name: value` lines to the wire text of a head.
class TextSink {
 public:
  explicit TextSink(std::string& out) : out_(out) {}
  void add(http::field, std::string_view name, std::string_view value) {
    appendField(out_, name, value);
  }

 private:
  std::string& out_;
};

}  // namespace

Result<void> buildUpstreamHeaders(const Fields& client, Fields& upstream,
                                  const catalog::ProviderSpec& provider, const Secret& credential,
                                  std::string_view request_id, std::string_view agent_token) {
  FieldsSink sink(upstream);
  return writeUpstreamHeaders(client, sink, provider, credential, request_id, agent_token);
}

Result<void> appendUpstreamRequestHead(std::string& out, const UpstreamRequestLine& line,
                                       const Fields& client, const catalog::ProviderSpec& provider,
                                       const Secret& credential, std::string_view request_id,
                                       std::string_view agent_token) {
  if (line.method == http::verb::trace && line.body_size > 0) {
    return fail(ErrorCode::kInvalidRequest, "a TRACE request must not carry a body");
  }
  // The framing that Beast's prepare_payload gives a request with a body of known size.
  const bool sends_length = line.body_size > 0 || line.method == http::verb::post ||
                            line.method == http::verb::put || line.method == http::verb::options;
  const size_t start = out.size();
  out.append(line.method_text);
  out.push_back(' ');
  out.append(line.target);
  out.append(" HTTP/1.1\r\n");
  TextSink sink(out);
  auto written = writeUpstreamHeaders(client, sink, provider, credential, request_id, agent_token);
  if (!written) {
    // The partial head may already contain the credential.
    secureZero(out.data() + start, out.size() - start);
    out.resize(start);
    return written;
  }
  if (sends_length) {
    char digits[24];
    auto [end, error] = std::to_chars(digits, digits + sizeof(digits), line.body_size);
    (void)error;  // 24 characters hold any 64-bit value
    appendField(out, "Content-Length", std::string_view(digits, static_cast<size_t>(end - digits)));
  }
  endHead(out);
  return {};
}

Result<std::string> buildUpstreamTarget(const catalog::ProviderSpec& provider, const Route& route,
                                        const Secret& credential, std::string_view agent_token) {
  std::string target = provider.base.base_path;
  if (provider.path_rewrites.empty()) {
    target += route.path;
  } else {
    auto rewritten = rewritePath(provider, route.path, credential);
    if (!rewritten) {
      return std::unexpected(rewritten.error());
    }
    target += *rewritten;
  }

  std::vector<std::string_view> dropped_params;
  for (const auto& location : provider.token_locations) {
    if (location.kind == catalog::TokenLocation::Kind::kQuery) {
      dropped_params.push_back(location.name);
    }
  }
  if (provider.auth.scheme == catalog::AuthSpec::Scheme::kQuery) {
    dropped_params.push_back(provider.auth.query_param);
  }

  std::string query;
  std::string_view rest = route.query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    std::string_view name = pair.substr(0, pair.find('='));
    bool carries_token = !agent_token.empty() && pair.find(agent_token) != std::string_view::npos;
    if (std::find(dropped_params.begin(), dropped_params.end(), name) == dropped_params.end() &&
        !pair.empty() && !carries_token) {
      if (!query.empty()) {
        query.push_back('&');
      }
      query.append(pair);
    }
    if (amp == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(amp + 1);
  }
  if (provider.auth.scheme == catalog::AuthSpec::Scheme::kQuery) {
    if (!query.empty()) {
      query.push_back('&');
    }
    query.append(provider.auth.query_param);
    query.push_back('=');
    appendQueryEncoded(query, credential.reveal());
  }
  if (!query.empty()) {
    target.push_back('?');
    target.append(query);
  }
  return target;
}

Result<std::string> rewritePath(const catalog::ProviderSpec& provider, std::string_view path,
                                const Secret& credential) {
  std::string out;
  out.reserve(path.size() + 32);
  std::string_view previous;
  std::string_view rest = path;
  // Segments are walked one by one; the path always starts with '/'.
  while (!rest.empty()) {
    rest.remove_prefix(1);
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    const catalog::PathRewrite* rewrite = nullptr;
    for (const auto& candidate : provider.path_rewrites) {
      if (previous == candidate.after) {
        rewrite = &candidate;
      }
    }
    out.push_back('/');
    if (rewrite != nullptr && !segment.empty()) {
      auto value = credentialField(credential, rewrite->field);
      if (!value) {
        return std::unexpected(value.error());
      }
      appendQueryEncoded(out, value->reveal());
    } else {
      out.append(segment);
    }
    previous = segment;
    if (slash == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(slash);
  }
  return out;
}

std::vector<std::string> credentialNeedles(const catalog::ProviderSpec& provider,
                                           const Secret& credential) {
  // Only multi-field credentials are JSON objects. A plain key is never parsed.
  std::optional<CredentialJson> document;
  if (credential.reveal().starts_with('{')) {
    document.emplace(credential);
  }
  // NOTE: only these exact forms are found. An echo in another encoding (the key alone in
  // base64, percent-encoded, JSON-escaped, case-changed or cut to a part) passes, because each
  // further form would be one more scan of every response on the hot path.
  std::vector<std::string> needles;
  if (document && document->object() != nullptr) {
    for (const auto& field : *document->object()) {
      if (field.value().is_string() && field.value().get_string().size() >= 8) {
        needles.emplace_back(field.value().get_string());
      }
    }
  } else if (credential.size() >= 8) {
    needles.emplace_back(credential.reveal());
  }
  if (provider.auth.scheme == catalog::AuthSpec::Scheme::kBasic && !needles.empty()) {
    if (!document) {
      document.emplace(credential);
    }
    if (auto encoded = encodedBasicPair(*document, provider.auth)) {
      needles.push_back(std::move(*encoded));
    }
  }
  return needles;
}

void cleanResponseHeaders(Fields& response, const std::vector<std::string>& needles) {
  // Fields are erased after the scan, because a field named in Connection is found only
  // while Connection is still there. Erasing one field leaves iterators to others valid.
  const ConnectionOptions connection_options(response);
  boost::container::small_vector<Fields::const_iterator, 8> to_erase;
  for (auto field = response.begin(); field != response.end(); ++field) {
    if (isHopByHop(*field) || isResponseCredentialHeader(*field) ||
        connection_options.contains(field->name_string())) {
      to_erase.push_back(field);
      continue;
    }
    // An upstream that echoes the credential may put it in a field's name as well as its
    // value, so both are searched.
    for (const auto& needle : needles) {
      if (field->value().find(needle) != std::string_view::npos ||
          field->name_string().find(needle) != std::string_view::npos) {
        to_erase.push_back(field);
        break;
      }
    }
  }
  for (auto field : to_erase) {
    response.erase(field);
  }
}

std::string_view trimOptionalWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

bool hasTransferCodingOtherThanChunked(const Fields& fields) {
  return anyListItem(fields, http::field::transfer_encoding, [](std::string_view coding) {
    coding = trimOptionalWhitespace(coding.substr(0, coding.find(';')));
    return !coding.empty() && !equalsNoCase(coding, "chunked");
  });
}

StreamRedactor::StreamRedactor(std::span<const std::string> needles) : needles_(needles) {
  active_ = std::any_of(needles_.begin(), needles_.end(),
                        [](const std::string& needle) { return !needle.empty(); });
}

bool StreamRedactor::mayHoldSecret(std::string_view chunk) const {
  for (const auto& needle : needles_) {
    // An empty needle matches everywhere and would stall the search.
    if (needle.empty()) {
      continue;
    }
    if (chunk.find(needle) != std::string_view::npos) {
      return true;
    }
    // A tail that begins the needle starts with the needle's first byte, so only the
    // positions of that byte in the last needle.size() - 1 bytes are compared.
    size_t max_len = std::min(needle.size() - 1, chunk.size());
    std::string_view tail = chunk.substr(chunk.size() - max_len);
    for (size_t at = tail.find(needle.front()); at != std::string_view::npos;
         at = tail.find(needle.front(), at + 1)) {
      if (std::string_view(needle).starts_with(tail.substr(at))) {
        return true;
      }
    }
  }
  return false;
}

std::string_view StreamRedactor::feed(std::string_view chunk) {
  // Fast path: nothing held back, no needle in the chunk and no needle prefix at its end, so
  // the chunk goes out as it is, without a copy.
  if (pending_.empty() && !mayHoldSecret(chunk)) {
    return chunk;
  }
  ready_.assign(pending_);
  ready_.append(chunk);
  pending_.clear();
  for (const auto& needle : needles_) {
    if (needle.empty()) {
      continue;
    }
    for (size_t at = ready_.find(needle); at != std::string::npos;
         at = ready_.find(needle, at + needle.size())) {
      std::fill_n(ready_.begin() + static_cast<std::ptrdiff_t>(at), needle.size(), '*');
    }
  }
  // Hold back the longest tail that is a proper prefix of some needle.
  size_t hold = 0;
  for (const auto& needle : needles_) {
    if (needle.empty()) {
      continue;
    }
    size_t max_len = std::min(needle.size() - 1, ready_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(ready_).substr(ready_.size() - len) ==
          std::string_view(needle).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  pending_.assign(ready_, ready_.size() - hold, hold);
  ready_.resize(ready_.size() - hold);
  return ready_;
}

std::string_view StreamRedactor::finish() {
  ready_.swap(pending_);
  pending_.clear();
  return ready_;
}

}  // namespace keystore::proxy
