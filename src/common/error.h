// Error values shared by every layer: a stable machine-readable code plus a human message.
//
// The request path never throws; it returns Result<T>, and the code alone decides the HTTP
// status and the `code` string of the error body. Messages are written for people and must
// never contain a secret: name tokens by id and credentials by fingerprint.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace keystore {

enum class ErrorCode {
  // Codes that reach proxy clients, as fixed by the product contract.
  kInvalidRequest,
  kInvalidJson,
  kAmbiguousCredentials,
  kMissingToken,
  kInvalidToken,
  kTokenExpired,
  kTokenRevoked,
  kAgentPaused,
  kScopeDenied,
  kUnknownProvider,
  kProviderNotConfigured,
  kByokKeyMissing,
  kByokKeyUnreadable,
  kBudgetExceeded,
  kRateLimited,
  kPayloadTooLarge,
  kUpstreamUnreachable,
  kUpstreamInvalidResponse,
  kNoCapacity,
  kUpstreamTimeout,
  // The shared store of rate-limit and budget counters (Redis) cannot be reached, so the
  // request is refused rather than admitted unchecked.
  kLimitsUnavailable,
  // Codes used by the management API and internal layers.
  kUnauthenticated,
  kForbidden,
  kNotFound,
  kConflict,
  kMethodNotAllowed,
  kInternal,
  // Codes of the management API's sign-in: a wrong email or password, and a cookie-signed-in
  // change without the matching X-CSRF-Token header.
  kInvalidCredentials,
  kCsrfFailed,
};

// The `code` string of the error body, e.g. "scope_denied".
std::string_view errorCodeName(ErrorCode code);

// The HTTP status that goes with the code, e.g. 403 for kScopeDenied.
int httpStatus(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

// Builds the error side of a Result: `return fail(ErrorCode::kNotFound, "project not found");`
inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace keystore
