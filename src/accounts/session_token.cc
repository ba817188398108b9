#include "accounts/session_token.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/random.h"

namespace keystore::accounts {

namespace {

constexpr size_t kTokenBytes = 32;

bool isLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view trimSpaces(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    return {};
  }
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

Secret generateSessionToken() {
  return Secret(std::string(kSessionTokenPrefix) + hexEncode(randomBytes(kTokenBytes)));
}

bool isSessionTokenShaped(std::string_view text) {
  if (!text.starts_with(kSessionTokenPrefix)) {
    return false;
  }
  std::string_view digits = text.substr(kSessionTokenPrefix.size());
  return digits.size() == kTokenBytes * 2 && isLowerHex(digits);
}

std::string hashSessionToken(std::string_view token) {
  return sha256Hex(token);
}

std::string generateCsrfToken() {
  return hexEncode(randomBytes(kTokenBytes));
}

bool csrfTokenMatches(std::string_view expected, std::string_view presented) {
  if (expected.empty() || expected.size() != presented.size()) {
    return false;
  }
  return CRYPTO_memcmp(expected.data(), presented.data(), expected.size()) == 0;
}

std::string cookieValue(std::string_view cookie_header, std::string_view name) {
  while (!cookie_header.empty()) {
    size_t separator = cookie_header.find(';');
    std::string_view pair = trimSpaces(cookie_header.substr(0, separator));
    size_t equals = pair.find('=');
    if (equals != std::string_view::npos && trimSpaces(pair.substr(0, equals)) == name) {
      return std::string(trimSpaces(pair.substr(equals + 1)));
    }
    if (separator == std::string_view::npos) {
      break;
    }
    cookie_header.remove_prefix(separator + 1);
  }
  return "";
}

}  // namespace keystore::accounts
