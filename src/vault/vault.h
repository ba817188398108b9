// Vault: envelope encryption of credentials with AES-256-GCM.
//
// The master key wraps one data key per project; each credential is encrypted under its
// project's data key with associated data that binds it to (project id, provider, credential
// id), so a ciphertext copied to another row fails to decrypt. Master-key rotation re-wraps
// data keys only.
//
// Ciphertext layout (all versions start with the version byte):
//   v1: 0x01 | key-id length (1 byte) | key id | nonce (12) | ciphertext | tag (16)
// The key id names the key that sealed it: the master key's id for a wrapped data key, the
// data key's id for a credential. The nonce is 96 random bits drawn for every encryption. The
// authenticated data is the header (version byte, key-id length, key id) followed by
// length-prefixed fields: "keystore:data-key:v1", project id and data key id for a wrapped
// data key; "keystore:credential:v1", project id, provider and credential id for a credential.
// Wrapped data keys and credential ciphertexts are binary; store them as BLOB or bytea.
//
// Every decryption failure returns ErrorCode::kByokKeyUnreadable with a message that names
// ids only, never key material.
//
// Keyring: besides the current master key, which wraps every new data key, the Vault holds
// the keys a rotation replaced and picks the unwrapping key by the id in the wrapped bytes.
// When it meets an id it does not know and it was given a reloader, it reloads its keys once
// and tries again, so an instance started before a rotation picks up the new key file. A
// reload never forgets a key the Vault already held.
//
// Thread-safety: all const methods may be called concurrently; the keyring is swapped under
// a mutex and read through shared pointers, so a reload never disturbs a running unwrap.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/secret.h"
#include "vault/master_key.h"

namespace keystore::vault {

// The owner of a credential, encoded into its associated data. A shared marketplace pool
// credential belongs to no project and binds an empty project_id; the length-prefixed
// encoding keeps that distinct from every project.
struct CredentialBinding {
  std::string_view project_id;
  std::string_view provider;
  std::string_view credential_id;
};

// Loads the current master key followed by the previous ones (loadMasterKeyring).
using KeyringLoader = std::function<Result<std::vector<MasterKey>>()>;

class Vault {
 public:
  // Throws std::invalid_argument when a key is not 32 bytes or `keys` is empty; loadMasterKey
  // never returns such a key, so this only fires on a programming error at start-up.
  explicit Vault(MasterKey master_key);
  // keys[0] is the current master key, the rest open data keys wrapped before a rotation.
  // `reload`, when set, is called when an unknown master key id is met.
  Vault(std::vector<MasterKey> keys, KeyringLoader reload);

  // The id of the current master key ("mk_" + 16 hex digits of its SHA-256).
  std::string masterKeyId() const;
  // Every key id the keyring holds, the current one first.
  std::vector<std::string> knownKeyIds() const;

  // A value stored at first start: a known constant sealed under the master key, in the v1
  // layout, as base64 text so it fits a text setting. The master key id sits in clear in its
  // header. Throws std::runtime_error only if OpenSSL fails; call it at start-up.
  std::string makeCheckValue() const;
  // kByokKeyUnreadable when the check value was made under a master key outside the keyring
  // or was altered. On a key mismatch the message names both key ids.
  Result<void> verifyCheckValue(std::string_view check_value) const;
  // The master key id named in a check value, or an empty string when it is not readable.
  static std::string checkValueKeyId(std::string_view check_value);

  // A fresh random 256-bit data key.
  static Secret newDataKey();
  // Seals a data key under the master key, bound to the project and data key id. kInternal
  // when the data key is not 32 bytes.
  Result<std::string> wrapDataKey(std::string_view project_id, std::string_view data_key_id,
                                  const Secret& data_key) const;
  // Opens with the keyring key named in the wrapped bytes. kByokKeyUnreadable (the message
  // names the master key id) when no key in the keyring has that id, even after a reload, or
  // the wrapped bytes were altered.
  Result<Secret> unwrapDataKey(std::string_view project_id, std::string_view data_key_id,
                               std::string_view wrapped) const;

  // Seals a credential's plaintext (a key, or a JSON object of fields) under a data key.
  // kInternal when the data key is not 32 bytes, the data key id is empty or longer than 255
  // bytes, or the binding's provider or credential id is empty.
  static Result<std::string> encryptCredential(const Secret& data_key, std::string_view data_key_id,
                                               const CredentialBinding& binding,
                                               const Secret& plaintext);
  // kByokKeyUnreadable when the key, binding or bytes do not match. The data key to pass is
  // the one named by ciphertextKeyId(ciphertext).
  static Result<Secret> decryptCredential(const Secret& data_key, const CredentialBinding& binding,
                                          std::string_view ciphertext);

 private:
  struct Keyring {
    std::vector<MasterKey> keys;  // the current key first

    const MasterKey* find(std::string_view id) const;
  };

  std::shared_ptr<const Keyring> keyring() const;
  // The keyring after one reload when `id` is unknown to it; the same one otherwise, or when
  // there is no reloader or the reload fails.
  std::shared_ptr<const Keyring> keyringWith(std::string_view id) const;

  mutable std::mutex mutex_;
  mutable std::shared_ptr<const Keyring> keyring_;
  KeyringLoader reload_;
};

// The key id stored in a v1 ciphertext, or an empty view when the bytes are not v1.
std::string_view ciphertextKeyId(std::string_view ciphertext);

}  // namespace keystore::vault
