// AES-256-GCM sealing in the vault's v1 ciphertext layout, through OpenSSL's EVP interface.
//
// Layout: 0x01 | key-id length (1 byte) | key id | nonce (12) | ciphertext | tag (16).
// The authenticated data is the header (version byte, key-id length and key id) followed by
// the caller's context, so neither the version nor the key id can be swapped without the tag
// check failing. Every seal draws a fresh 96-bit nonce from the CSPRNG.
//
// Stateless free functions; thread-safe.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::vault {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kMaxKeyIdSize = 255;
inline constexpr unsigned char kVersionV1 = 0x01;

// The parts of a v1 ciphertext, as views into the bytes it was parsed from.
struct SealedParts {
  std::string_view header;  // version byte, key-id length and key id
  std::string_view key_id;
  std::string_view nonce;
  std::string_view body;  // the encrypted bytes, as long as the plaintext
  std::string_view tag;
};

// Splits v1 bytes into their parts. Returns nullopt when the version byte is not 0x01, when
// the key id is empty, or when the bytes are too short for the header, nonce and tag.
std::optional<SealedParts> parseSealed(std::string_view sealed);

// Encodes each field as a 4-byte big-endian length followed by its bytes, so two different
// field lists never encode to the same string.
std::string encodeFields(std::initializer_list<std::string_view> fields);

// Encrypts `plaintext` under `key`, naming `key_id` in the header and authenticating `context`.
// kInternal when the key is not 32 bytes, the key id is empty or longer than 255 bytes, or
// OpenSSL fails.
Result<std::string> seal(std::string_view key, std::string_view key_id, std::string_view context,
                         std::string_view plaintext);

// Decrypts bytes made by seal() with the same key and context. kByokKeyUnreadable when the
// bytes are not v1 or the tag check fails. The message names the cause and no key material.
Result<Secret> open(std::string_view key, std::string_view context, std::string_view sealed);

}  // namespace keystore::vault
