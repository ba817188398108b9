#include "webhooks/signature.h"

#include <openssl/crypto.h>

#include <charconv>
#include <string>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/random.h"
#include "common/secure_zero.h"

namespace keystore::webhooks {

namespace {

std::string signedDigestHex(const Secret& secret, int64_t unix_seconds, std::string_view body) {
  std::string message = std::to_string(unix_seconds);
  message.push_back('.');
  message.append(body);
  return hexEncode(hmacSha256(secret.reveal(), message));
}

}  // namespace

Secret generateSigningSecret() {
  std::string bytes = randomBytes(32);
  Secret secret(std::string(kSecretPrefix) + hexEncode(bytes));
  secureZero(bytes.data(), bytes.size());
  return secret;
}

std::string signatureHeader(const Secret& secret, int64_t unix_seconds, std::string_view body) {
  return "t=" + std::to_string(unix_seconds) + ",v1=" + signedDigestHex(secret, unix_seconds, body);
}

bool verifySignatureHeader(const Secret& secret, std::string_view header, std::string_view body,
                           int64_t now_seconds, int64_t tolerance_seconds) {
  std::string_view timestamp_text;
  std::string_view digest;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view part = header.substr(0, comma);
    if (part.starts_with("t=")) {
      timestamp_text = part.substr(2);
    } else if (part.starts_with("v1=")) {
      digest = part.substr(3);
    }
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
  }

  int64_t timestamp = 0;
  auto parsed = std::from_chars(timestamp_text.data(),
                                timestamp_text.data() + timestamp_text.size(), timestamp);
  if (timestamp_text.empty() || parsed.ec != std::errc() ||
      parsed.ptr != timestamp_text.data() + timestamp_text.size()) {
    return false;
  }
  int64_t age = now_seconds - timestamp;
  if (age > tolerance_seconds || age < -tolerance_seconds) {
    return false;
  }
  std::string expected = signedDigestHex(secret, timestamp, body);
  return digest.size() == expected.size() &&
         CRYPTO_memcmp(digest.data(), expected.data(), expected.size()) == 0;
}

}  // namespace keystore::webhooks
