// Session and CSRF tokens of signed-in management API users.
//
// A session token is "kss_" + 64 lowercase hex digits (32 bytes from the CSPRNG); the store
// keeps only its SHA-256. A CSRF token is 64 hex digits bound to one session. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/secret.h"

namespace keystore::accounts {

inline constexpr std::string_view kSessionTokenPrefix = "kss_";
inline constexpr std::string_view kSessionCookieName = "ks_session";

Secret generateSessionToken();
// Whether `text` has the shape of a session token, before any lookup.
bool isSessionTokenShaped(std::string_view text);
// The SHA-256 of a session token as 64 lowercase hex digits, the form the store keeps.
std::string hashSessionToken(std::string_view token);

std::string generateCsrfToken();
// Compares a CSRF token from a request header with the session's in constant time.
bool csrfTokenMatches(std::string_view expected, std::string_view presented);

// The value of cookie `name` in a Cookie header ("a=1; ks_session=…"), or "" when absent.
std::string cookieValue(std::string_view cookie_header, std::string_view name);

}  // namespace keystore::accounts
