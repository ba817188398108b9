#include "common/mask.h"

#include "common/hash.h"

namespace keystore {

std::string maskCredential(std::string_view plaintext) {
  if (plaintext.size() < 12) {
    return "…" + std::string(plaintext.substr(plaintext.size() - std::min<size_t>(2, plaintext.size())));
  }
  size_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    if (plaintext[i] == '-' || plaintext[i] == '_') {
      prefix = i + 1;
    }
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
