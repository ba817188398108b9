#include "common/mask.h"

#include <algorithm>

#include "common/hash.h"

namespace keystore {

std::string maskCredential(std::string_view plaintext) {
  // At most a quarter of the key is ever shown: the last 4 characters only for keys of 16 or
  // more, and the recognisable prefix only for keys of 24 or more.
  if (plaintext.size() < 16) {
    return "…";
  }
  size_t prefix = 0;
  if (plaintext.size() >= 24) {
    for (size_t i = 0; i < 8; ++i) {
      if (plaintext[i] == '-' || plaintext[i] == '_') {
        prefix = i + 1;
      }
    }
    prefix = std::min(prefix, plaintext.size() / 4 - 4);
  }
  return std::string(plaintext.substr(0, prefix)) + "…" +
         std::string(plaintext.substr(plaintext.size() - 4));
}

bool looksLikeMask(std::string_view text) {
  return text.find("…") != std::string_view::npos || text.find("***") != std::string_view::npos ||
         text.find("...") != std::string_view::npos;
}

std::string credentialFingerprint(std::string_view plaintext) {
  return "sha256:" + sha256Hex(plaintext).substr(0, 16);
}

}  // namespace keystore
