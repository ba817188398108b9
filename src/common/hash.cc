#include "common/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/encoding.h"

namespace keystore {
namespace {

// OpenSSL 3 looks an algorithm up in its provider tables on every use of EVP_sha256(). The
// proxy hashes a token on every request, so the lookup is done once, for the whole process.
const EVP_MD* sha256Digest() {
  static const EVP_MD* const digest = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return digest;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::string digest(32, '\0');
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()), &size,
             sha256Digest(), nullptr);
  return digest;
}

std::string sha256Hex(std::string_view data) {
  return hexEncode(sha256(data));
}

std::array<char, 64> sha256HexDigits(std::string_view data) {
  constexpr char kHexDigits[] = "0123456789abcdef";
  unsigned char digest[32];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, sha256Digest(), nullptr);
  std::array<char, 64> hex;
  for (std::size_t i = 0; i < sizeof(digest); ++i) {
    hex[2 * i] = kHexDigits[digest[i] >> 4];
    hex[2 * i + 1] = kHexDigits[digest[i] & 0x0f];
  }
  return hex;
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  std::string mac(32, '\0');
  unsigned int size = 0;
  HMAC(sha256Digest(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(mac.data()), &size);
  return mac;
}

}  // namespace keystore
