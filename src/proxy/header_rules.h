// Header rules of the proxy: what crosses from client to upstream and back.
//
// Upstream requests lose every client credential header (Authorization, x-api-key, api-key,
// Proxy-Authorization, Cookie and the provider's own token headers), every hop-by-hop header
// (RFC 9110 section 7.6.1 plus any named in Connection), Host, Expect and Accept-Encoding.
// They gain Host set to the upstream, the credential exactly once in the provider's scheme,
// `Accept-Encoding: identity` (so key material echoed in the response stays detectable) and
// x-request-id. Responses lose hop-by-hop and credential-bearing headers, and any header
// value that quotes the injected credential.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/error.h"
#include "common/secret.h"
#include "proxy/header_arena.h"
#include "proxy/route.h"

namespace keystore::proxy {

// Copies the client's end-to-end headers into `upstream`, which must be empty, and injects the
// credential. The proxy sends the same fields through appendUpstreamRequestHead, and this form
// exists for code that inspects them as fields, such as the header-rule tests.
// kProviderNotConfigured when a multi-field credential lacks a field the scheme needs.
// A client header that carries the agent token anywhere else is dropped too, so the token never
// leaves the proxy.
Result<void> buildUpstreamHeaders(const Fields& client, Fields& upstream,
                                  const catalog::ProviderSpec& provider, const Secret& credential,
                                  std::string_view request_id, std::string_view agent_token);

// The method and target of an upstream request line, and the size of the body that follows.
struct UpstreamRequestLine {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  std::string_view method_text;  // the method as sent, also for methods Beast has no code for
  std::string_view target;
  size_t body_size = 0;
};

// Appends the wire text of the upstream request head to `out`: the HTTP/1.1 request line, the
// fields that buildUpstreamHeaders gives, in the same order, then Content-Length as Beast's
// prepare_payload frames a body of that size, and the blank line. The relay sends this text
// without building a second field container. On failure `out` is as it was.
// kInvalidRequest for a TRACE request with a body, which HTTP does not allow.
Result<void> appendUpstreamRequestHead(std::string& out, const UpstreamRequestLine& line,
                                       const Fields& client, const catalog::ProviderSpec& provider,
                                       const Secret& credential, std::string_view request_id,
                                       std::string_view agent_token);

// The upstream request target: the provider's base path, the routed path and the query,
// with any query-string token location and any pair carrying the agent token removed and, for
// query-auth providers, the percent-encoded key added.
// Path rewrites fill in a credential field (kProviderNotConfigured when it is missing).
Result<std::string> buildUpstreamTarget(const catalog::ProviderSpec& provider, const Route& route,
                                        const Secret& credential, std::string_view agent_token);

// Applies the provider's path rewrites to an encoded path: each segment that follows a
// segment equal to a rewrite's `after` becomes the percent-encoded credential field.
Result<std::string> rewritePath(const catalog::ProviderSpec& provider, std::string_view path,
                                const Secret& credential);

// Removes hop-by-hop and credential-bearing response headers and any header whose name or
// value contains one of `needles` (see credentialNeedles).
void cleanResponseHeaders(Fields& response, const std::vector<std::string>& needles);

// Returns `text` without the spaces and tabs around it (optional whitespace in RFC 9110 terms).
std::string_view trimOptionalWhitespace(std::string_view text);

// Returns whether a Transfer-Encoding field names a coding other than chunked (gzip, for
// example). The proxy decodes only chunked and removes Transfer-Encoding as hop-by-hop, so a
// message in another coding would arrive still coded with no field naming the coding.
bool hasTransferCodingOtherThanChunked(const Fields& fields);

// The secret strings inside a credential: the key itself, or each field of a JSON object
// credential (and, for Basic auth, the base64 form the upstream may echo).
std::vector<std::string> credentialNeedles(const catalog::ProviderSpec& provider,
                                           const Secret& credential);

// Redacts occurrences of secret strings in a streamed body without buffering it: each chunk
// is scanned in place and occurrences are overwritten with '*' of the same length, so
// Content-Length stays valid. Only the longest suffix of a chunk that could begin a secret
// is held back until the next chunk (in practice nothing, because SSE events end in "\n\n").
//
// The redactor reads the needles where they are: their owner keeps them alive, and wipes them,
// for as long as the redactor is in use. Empty needles are skipped.
class StreamRedactor {
 public:
  explicit StreamRedactor(std::span<const std::string> needles);

  // Appends `chunk` to the pending bytes, redacts, and returns the bytes safe to send now.
  std::string_view feed(std::string_view chunk);
  // Returns whatever is still held back, at the end of the body.
  std::string_view finish();

  bool active() const { return active_; }

 private:
  // Whether the chunk contains a needle or ends with the start of one.
  bool mayHoldSecret(std::string_view chunk) const;

  std::span<const std::string> needles_;
  bool active_ = false;
  std::string pending_;
  std::string ready_;
};

}  // namespace keystore::proxy
