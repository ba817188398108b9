#include "common/secret.h"

#include <openssl/crypto.h>

#include "common/secure_zero.h"

namespace keystore {

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) {
  other.wipe();
}

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.wipe();
  }
  return *this;
}

bool Secret::equals(std::string_view other) const {
  return SecretView(value_).equals(other);
}

bool SecretView::equals(std::string_view other) const {
  if (other.size() != value_.size()) {
    return false;
  }
  return CRYPTO_memcmp(value_.data(), other.data(), value_.size()) == 0;
}

void Secret::wipe() {
  // Short strings live inside the object (small-string optimisation), so wiping the whole
  // capacity covers both the inline buffer and a heap allocation.
  if (value_.capacity() > 0) {
    secureZero(value_.data(), value_.capacity());
  }
  value_.clear();
}

}  // namespace keystore
