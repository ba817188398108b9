#include "common/error.h"

namespace keystore {

namespace {

struct CodeInfo {
  std::string_view name;
  int status;
};

CodeInfo codeInfo(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidRequest: return {"invalid_request", 400};
    case ErrorCode::kInvalidJson: return {"invalid_json", 400};
    case ErrorCode::kAmbiguousCredentials: return {"ambiguous_credentials", 400};
    case ErrorCode::kMissingToken: return {"missing_token", 401};
    case ErrorCode::kInvalidToken: return {"invalid_token", 401};
    case ErrorCode::kTokenExpired: return {"token_expired", 401};
    case ErrorCode::kTokenRevoked: return {"token_revoked", 401};
    case ErrorCode::kAgentPaused: return {"agent_paused", 403};
    case ErrorCode::kScopeDenied: return {"scope_denied", 403};
    case ErrorCode::kUnknownProvider: return {"unknown_provider", 404};
    case ErrorCode::kProviderNotConfigured: return {"provider_not_configured", 409};
    case ErrorCode::kByokKeyMissing: return {"byok_key_missing", 409};
    case ErrorCode::kByokKeyUnreadable: return {"byok_key_unreadable", 409};
    case ErrorCode::kBudgetExceeded: return {"budget_exceeded", 402};
    case ErrorCode::kRateLimited: return {"rate_limited", 429};
    case ErrorCode::kPayloadTooLarge: return {"payload_too_large", 413};
    case ErrorCode::kUpstreamUnreachable: return {"upstream_unreachable", 502};
    case ErrorCode::kUpstreamInvalidResponse: return {"upstream_invalid_response", 502};
    case ErrorCode::kNoCapacity: return {"no_capacity", 503};
    case ErrorCode::kUpstreamTimeout: return {"upstream_timeout", 504};
    case ErrorCode::kLimitsUnavailable: return {"limits_unavailable", 503};
    case ErrorCode::kUnauthenticated: return {"unauthenticated", 401};
    case ErrorCode::kForbidden: return {"forbidden", 403};
    case ErrorCode::kNotFound: return {"not_found", 404};
    case ErrorCode::kConflict: return {"conflict", 409};
    case ErrorCode::kMethodNotAllowed: return {"method_not_allowed", 405};
    case ErrorCode::kInternal: return {"internal_error", 500};
    case ErrorCode::kInvalidCredentials: return {"invalid_credentials", 401};
    case ErrorCode::kCsrfFailed: return {"csrf_failed", 403};
  }
  return {"internal_error", 500};
}

}  // namespace

std::string_view errorCodeName(ErrorCode code) { return codeInfo(code).name; }

int httpStatus(ErrorCode code) { return codeInfo(code).status; }

}  // namespace keystore
