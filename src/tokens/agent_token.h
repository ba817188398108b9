// Agent tokens and admin API keys: generation, shape checks and the hash that is stored.
//
// An agent token is "ks_" + 64 lowercase hex digits (32 bytes from the CSPRNG); an admin API
// key is "ksa_" + 64 lowercase hex digits. Only SHA-256 hex digests are stored; the plaintext
// is shown once at creation. Thread-safe.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "common/secret.h"

namespace keystore::tokens {

inline constexpr std::string_view kAgentTokenPrefix = "ks_";
inline constexpr std::string_view kAdminKeyPrefix = "ksa_";

Secret generateAgentToken();
Secret generateAdminKey();

// True for "ks_" followed by exactly 64 lowercase hex digits.
bool isAgentTokenShaped(std::string_view text);
// True for "ksa_" followed by exactly 64 lowercase hex digits.
bool isAdminKeyShaped(std::string_view text);

// The stored form: 64 lowercase hex digits of SHA-256(token).
std::string hashToken(std::string_view token);
// hashToken's 64 hex digits in a fixed array, so a lookup on the request path need not allocate.
std::array<char, 64> hashTokenDigits(std::string_view token);

// The last 4 hex digits of the stored hash: a name for the token that is safe to show.
std::string tokenHint(std::string_view token_hash);

}  // namespace keystore::tokens
