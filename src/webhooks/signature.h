// Webhook signing secrets and the Keystore-Signature header.
//
// A secret is "whsec_" followed by 64 lowercase hex digits (32 random bytes). Each request
// carries `Keystore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, where the HMAC key is
// the whole secret string as UTF-8 and the message is "<t>.<body>" over the exact body bytes.
//
// A receiver verifies a request by:
//   1. splitting the header at ',' into t=… and v1=… (ignoring unknown parts),
//   2. computing HMAC-SHA256(secret, t + "." + raw body) and comparing it with v1 in constant
//      time (crypto.timingSafeEqual in Node, hmac.compare_digest in Python),
//   3. rejecting the request when t is more than 300 seconds away from its own clock, so a
//      captured request cannot be replayed later, and
//   4. treating the body's "id" (the event id) as an idempotency key, because a retried
//      delivery carries the same event again.
//
// Free functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/secret.h"

namespace keystore::webhooks {

inline constexpr std::string_view kSecretPrefix = "whsec_";
// Receivers should reject signatures older than this, in seconds.
inline constexpr int64_t kSignatureToleranceSeconds = 300;

// A new random signing secret.
Secret generateSigningSecret();

// The Keystore-Signature header value for `body` sent at `unix_seconds`.
std::string signatureHeader(const Secret& secret, int64_t unix_seconds, std::string_view body);

// Checks a Keystore-Signature header the way a receiver should, for tests and tooling: the
// v1 digest must match and t must lie within `tolerance_seconds` of `now_seconds`.
bool verifySignatureHeader(const Secret& secret, std::string_view header, std::string_view body,
                           int64_t now_seconds, int64_t tolerance_seconds);

}  // namespace keystore::webhooks
