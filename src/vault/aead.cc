#include "vault/aead.h"

#include <openssl/evp.h>

#include <climits>
#include <cstdint>
#include <memory>

#include "common/random.h"

namespace keystore::vault {

namespace {

struct CipherContextFree {
  void operator()(EVP_CIPHER_CTX* context) const { EVP_CIPHER_CTX_free(context); }
};
using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, CipherContextFree>;

// Fetched once: EVP_aes_256_gcm() makes OpenSSL 3 look the algorithm up in its provider tables
// on every initialisation, and the proxy decrypts a credential on every request. The object
// lives for the process.
const EVP_CIPHER* aes256Gcm() {
  static const EVP_CIPHER* const cipher = [] {
    const EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    return fetched != nullptr ? fetched : EVP_aes_256_gcm();
  }();
  return cipher;
}

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

unsigned char* bytes(std::string& text) {
  return reinterpret_cast<unsigned char*>(text.data());
}

// Feeds authenticated data into a context already initialised with key and nonce.
bool addAssociatedData(EVP_CIPHER_CTX* context, bool encrypting, std::string_view data) {
  if (data.empty()) {
    return true;
  }
  int size = 0;
  int length = static_cast<int>(data.size());
  if (encrypting) {
    return EVP_EncryptUpdate(context, nullptr, &size, bytes(data), length) == 1;
  }
  return EVP_DecryptUpdate(context, nullptr, &size, bytes(data), length) == 1;
}

std::string makeHeader(std::string_view key_id) {
  std::string header;
  header.reserve(2 + key_id.size());
  header.push_back(static_cast<char>(kVersionV1));
  header.push_back(static_cast<char>(key_id.size()));
  header.append(key_id);
  return header;
}

// EVP takes int lengths; anything near INT_MAX is far beyond any credential anyway.
bool fitsInt(size_t size) {
  return size < static_cast<size_t>(INT_MAX) / 2;
}

}  // namespace

std::optional<SealedParts> parseSealed(std::string_view sealed) {
  if (sealed.size() < 2 || static_cast<unsigned char>(sealed[0]) != kVersionV1) {
    return std::nullopt;
  }
  size_t key_id_size = static_cast<unsigned char>(sealed[1]);
  size_t header_size = 2 + key_id_size;
  if (key_id_size == 0 || sealed.size() < header_size + kNonceSize + kTagSize) {
    return std::nullopt;
  }

  SealedParts parts;
  parts.header = sealed.substr(0, header_size);
  parts.key_id = sealed.substr(2, key_id_size);
  parts.nonce = sealed.substr(header_size, kNonceSize);
  size_t body_size = sealed.size() - header_size - kNonceSize - kTagSize;
  parts.body = sealed.substr(header_size + kNonceSize, body_size);
  parts.tag = sealed.substr(sealed.size() - kTagSize);
  return parts;
}

std::string encodeFields(std::initializer_list<std::string_view> fields) {
  std::string out;
  for (std::string_view field : fields) {
    auto size = static_cast<uint32_t>(field.size());
    out.push_back(static_cast<char>((size >> 24) & 0xff));
    out.push_back(static_cast<char>((size >> 16) & 0xff));
    out.push_back(static_cast<char>((size >> 8) & 0xff));
    out.push_back(static_cast<char>(size & 0xff));
    out.append(field);
  }
  return out;
}

Result<std::string> seal(std::string_view key, std::string_view key_id, std::string_view context,
                         std::string_view plaintext) {
  if (key.size() != kKeySize) {
    return fail(ErrorCode::kInternal, "AES-256-GCM needs a 32-byte key");
  }
  if (key_id.empty() || key_id.size() > kMaxKeyIdSize) {
    return fail(ErrorCode::kInternal, "a key id must be 1 to 255 bytes long");
  }
  if (!fitsInt(plaintext.size()) || !fitsInt(context.size())) {
    return fail(ErrorCode::kInternal, "the plaintext or associated data is too large to seal");
  }

  std::string header = makeHeader(key_id);
  std::string nonce = randomBytes(kNonceSize);
  std::string out;
  out.reserve(header.size() + kNonceSize + plaintext.size() + kTagSize);
  out.append(header);
  out.append(nonce);
  size_t body_offset = out.size();
  out.resize(body_offset + plaintext.size() + kTagSize);

  CipherContext context_owner(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* cipher = context_owner.get();
  int size = 0;
  bool ok = cipher != nullptr &&
            EVP_EncryptInit_ex(cipher, aes256Gcm(), nullptr, bytes(key), bytes(nonce)) == 1 &&
            addAssociatedData(cipher, true, header) && addAssociatedData(cipher, true, context);
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(cipher, bytes(out) + body_offset, &size, bytes(plaintext),
                           static_cast<int>(plaintext.size())) == 1;
  }
  ok = ok && EVP_EncryptFinal_ex(cipher, bytes(out) + body_offset + plaintext.size(), &size) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                                 bytes(out) + body_offset + plaintext.size()) == 1;
  if (!ok) {
    return fail(ErrorCode::kInternal, "AES-256-GCM encryption failed in OpenSSL");
  }
  return out;
}

Result<Secret> open(std::string_view key, std::string_view context, std::string_view sealed) {
  if (key.size() != kKeySize) {
    return fail(ErrorCode::kByokKeyUnreadable, "the decryption key is not 32 bytes long");
  }
  std::optional<SealedParts> parts = parseSealed(sealed);
  if (!parts) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "the stored bytes are not a v1 ciphertext (wrong version byte or truncated)");
  }
  if (!fitsInt(sealed.size()) || !fitsInt(context.size())) {
    return fail(ErrorCode::kByokKeyUnreadable, "the ciphertext is too large to open");
  }

  // EVP_CTRL_GCM_SET_TAG takes a non-const pointer, so the tag is copied out of the view.
  std::string tag(parts->tag);
  Secret plaintext;
  plaintext.revealMutable().resize(parts->body.size());

  CipherContext context_owner(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* cipher = context_owner.get();
  int size = 0;
  bool ok =
      cipher != nullptr &&
      EVP_DecryptInit_ex(cipher, aes256Gcm(), nullptr, bytes(key), bytes(parts->nonce)) == 1 &&
      addAssociatedData(cipher, false, parts->header) && addAssociatedData(cipher, false, context);
  if (ok && !parts->body.empty()) {
    ok = EVP_DecryptUpdate(cipher, bytes(plaintext.revealMutable()), &size, bytes(parts->body),
                           static_cast<int>(parts->body.size())) == 1;
  }
  ok = ok && EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize),
                                 tag.data()) == 1;
  // The final call verifies the tag; on failure the partial plaintext is wiped with `plaintext`.
  ok = ok && EVP_DecryptFinal_ex(cipher, bytes(plaintext.revealMutable()) + parts->body.size(),
                                 &size) == 1;
  if (!ok) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "authentication failed (wrong key, wrong associated data or altered bytes)");
  }
  return plaintext;
}

}  // namespace keystore::vault
