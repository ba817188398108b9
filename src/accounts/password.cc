#include "accounts/password.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include "common/encoding.h"
#include "common/random.h"

namespace keystore::accounts {

namespace {

bool initializeSodium() {
  static const bool initialized = sodium_init() >= 0;
  return initialized;
}

bool equalIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

Result<void> validateNewPassword(std::string_view email, const Secret& password) {
  std::string_view text = password.reveal();
  if (text.size() < kMinPasswordLength) {
    return fail(
        ErrorCode::kInvalidRequest,
        "the password must be at least " + std::to_string(kMinPasswordLength) + " characters long");
  }
  if (text.size() > kMaxPasswordLength) {
    return fail(
        ErrorCode::kInvalidRequest,
        "the password must be at most " + std::to_string(kMaxPasswordLength) + " characters long");
  }
  if (equalIgnoringCase(text, email)) {
    return fail(ErrorCode::kInvalidRequest, "the password must not be the email address");
  }
  return {};
}

Result<std::string> hashPassword(const Secret& password) {
  if (!initializeSodium()) {
    return fail(ErrorCode::kInternal, "libsodium failed to initialize");
  }
  char hash[crypto_pwhash_STRBYTES];
  std::string_view text = password.reveal();
  if (crypto_pwhash_str_alg(hash, text.data(), text.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                            crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(ErrorCode::kInternal, "password hashing ran out of memory");
  }
  return std::string(hash);
}

bool verifyPassword(const std::string& hash, const Secret& password) {
  if (!initializeSodium() || hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) {
    return false;
  }
  std::string_view text = password.reveal();
  return crypto_pwhash_str_verify(hash.c_str(), text.data(), text.size()) == 0;
}

void verifyDummyPassword(const Secret& password) {
  static const std::string dummy_hash = [] {
    Result<std::string> hash = hashPassword(Secret(hexEncode(randomBytes(16))));
    return hash ? *hash : std::string();
  }();
  (void)verifyPassword(dummy_hash, password);
}

}  // namespace keystore::accounts
