// SHA-256 and HMAC-SHA256 through OpenSSL's EVP interface. Thread-safe.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace keystore {

// The 32-byte digest.
std::string sha256(std::string_view data);
// The digest as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);
// sha256Hex in a fixed array, for callers on the request path that must not allocate.
std::array<char, 64> sha256HexDigits(std::string_view data);
// The 32-byte HMAC-SHA256 of `data` under `key`.
std::string hmacSha256(std::string_view key, std::string_view data);

}  // namespace keystore
