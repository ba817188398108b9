#include "vault/vault.h"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <utility>

#include "common/encoding.h"
#include "common/random.h"
#include "vault/aead.h"

namespace keystore::vault {

namespace {

// Labels that open each kind of associated data, so a ciphertext of one kind can never be
// opened as another even when the remaining fields happen to be equal.
constexpr std::string_view kDataKeyLabel = "keystore:data-key:v1";
constexpr std::string_view kCredentialLabel = "keystore:credential:v1";
constexpr std::string_view kCheckValueLabel = "keystore:check-value:v1";

// The plaintext sealed in the check value; only its equality matters.
constexpr std::string_view kCheckPlaintext = "keystore master key check";

std::string credentialContext(const CredentialBinding& binding) {
  return encodeFields(
      {kCredentialLabel, binding.project_id, binding.provider, binding.credential_id});
}

// A key id read from stored bytes, fit for a message: altered bytes may hold anything.
std::string printableKeyId(std::string_view key_id) {
  for (char c : key_id) {
    if (c < 0x21 || c > 0x7e) {
      return "(unprintable key id)";
    }
  }
  return std::string(key_id);
}

std::string describeCredential(const CredentialBinding& binding) {
  return "credential " + std::string(binding.credential_id) + " (project " +
         std::string(binding.project_id) + ", provider " + std::string(binding.provider) + ")";
}

// Comma-separated ids, for messages that list the keyring.
std::string joinIds(const std::vector<std::string>& ids) {
  std::string joined;
  for (const std::string& id : ids) {
    joined += (joined.empty() ? "" : ", ") + id;
  }
  return joined;
}

}  // namespace

const MasterKey* Vault::Keyring::find(std::string_view id) const {
  for (const MasterKey& key : keys) {
    if (key.id == id) {
      return &key;
    }
  }
  return nullptr;
}

Vault::Vault(MasterKey master_key) : Vault(std::vector<MasterKey>{master_key}, {}) {}

Vault::Vault(std::vector<MasterKey> keys, KeyringLoader reload) : reload_(std::move(reload)) {
  if (keys.empty()) {
    throw std::invalid_argument("a keyring needs a current master key");
  }
  for (const MasterKey& key : keys) {
    if (key.key.size() != kKeySize) {
      throw std::invalid_argument("the master key must be 32 bytes long");
    }
  }
  keyring_ = std::make_shared<const Keyring>(Keyring{std::move(keys)});
}

std::shared_ptr<const Vault::Keyring> Vault::keyring() const {
  std::lock_guard lock(mutex_);
  return keyring_;
}

std::shared_ptr<const Vault::Keyring> Vault::keyringWith(std::string_view id) const {
  std::lock_guard lock(mutex_);
  if (!reload_ || keyring_->find(id) != nullptr) {
    return keyring_;
  }

  Result<std::vector<MasterKey>> loaded = reload_();
  if (!loaded || loaded->empty()) {
    spdlog::error("reloading the master keys for {} failed: {}", printableKeyId(id),
                  loaded ? std::string("no key loaded") : loaded.error().message);
    return keyring_;
  }
  auto reloaded = std::make_shared<Keyring>();
  reloaded->keys = std::move(*loaded);
  for (const MasterKey& known : keyring_->keys) {
    if (reloaded->find(known.id) == nullptr) {
      reloaded->keys.push_back(known);
    }
  }
  spdlog::info("reloaded the master keys; current {}, {} in the keyring", reloaded->keys.front().id,
               reloaded->keys.size());
  keyring_ = std::move(reloaded);
  return keyring_;
}

std::string Vault::masterKeyId() const {
  return keyring()->keys.front().id;
}

std::vector<std::string> Vault::knownKeyIds() const {
  std::vector<std::string> ids;
  for (const MasterKey& key : keyring()->keys) {
    ids.push_back(key.id);
  }
  return ids;
}

std::string Vault::makeCheckValue() const {
  std::shared_ptr<const Keyring> keys = keyring();
  const MasterKey& current = keys->keys.front();
  Result<std::string> sealed =
      seal(current.key.reveal(), current.id, encodeFields({kCheckValueLabel}), kCheckPlaintext);
  if (!sealed) {
    throw std::runtime_error("cannot create the master-key check value: " + sealed.error().message);
  }
  return base64Encode(*sealed);
}

std::string Vault::checkValueKeyId(std::string_view check_value) {
  std::optional<std::string> sealed = base64Decode(check_value);
  return sealed ? printableKeyId(ciphertextKeyId(*sealed)) : std::string();
}

Result<void> Vault::verifyCheckValue(std::string_view check_value) const {
  std::optional<std::string> sealed = base64Decode(check_value);
  std::string_view stored_key_id = sealed ? ciphertextKeyId(*sealed) : std::string_view();
  if (stored_key_id.empty()) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "the stored master-key check value is not in a known format; the database "
                "setting was altered or written by another program");
  }
  std::shared_ptr<const Keyring> keys = keyringWith(stored_key_id);
  const MasterKey* key = keys->find(stored_key_id);
  if (key == nullptr) {
    return fail(ErrorCode::kByokKeyUnreadable, "the master key " + joinIds(knownKeyIds()) +
                                                   " does not match the one this database uses (" +
                                                   printableKeyId(stored_key_id) +
                                                   "); start with that key");
  }

  Result<Secret> opened = open(key->key.reveal(), encodeFields({kCheckValueLabel}), *sealed);
  if (!opened || !opened->equals(kCheckPlaintext)) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "the stored master-key check value names master key " + key->id +
                    " but does not decrypt under it; the database setting was altered");
  }
  return {};
}

Secret Vault::newDataKey() {
  return Secret(randomBytes(kKeySize));
}

Result<std::string> Vault::wrapDataKey(std::string_view project_id, std::string_view data_key_id,
                                       const Secret& data_key) const {
  if (data_key.size() != kKeySize) {
    return fail(ErrorCode::kInternal, "a data key must be 32 bytes long");
  }
  std::shared_ptr<const Keyring> keys = keyring();
  const MasterKey& current = keys->keys.front();
  return seal(current.key.reveal(), current.id,
              encodeFields({kDataKeyLabel, project_id, data_key_id}), data_key.reveal());
}

Result<Secret> Vault::unwrapDataKey(std::string_view project_id, std::string_view data_key_id,
                                    std::string_view wrapped) const {
  std::string subject =
      "data key " + std::string(data_key_id) + " of project " + std::string(project_id);
  std::string_view wrapping_key_id = ciphertextKeyId(wrapped);
  if (wrapping_key_id.empty()) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "cannot unwrap " + subject + ": the stored bytes are not in a known format");
  }
  std::shared_ptr<const Keyring> keys = keyringWith(wrapping_key_id);
  const MasterKey* key = keys->find(wrapping_key_id);
  if (key == nullptr) {
    std::vector<std::string> known;
    for (const MasterKey& held : keys->keys) {
      known.push_back(held.id);
    }
    return fail(ErrorCode::kByokKeyUnreadable,
                "cannot unwrap " + subject + ": it was wrapped by master key " +
                    printableKeyId(wrapping_key_id) + ", which is not among the loaded keys (" +
                    joinIds(known) + "); add it as the previous master key");
  }

  Result<Secret> data_key =
      open(key->key.reveal(), encodeFields({kDataKeyLabel, project_id, data_key_id}), wrapped);
  if (!data_key) {
    return fail(ErrorCode::kByokKeyUnreadable, "cannot unwrap " + subject + " with master key " +
                                                   key->id + ": " + data_key.error().message);
  }
  if (data_key->size() != kKeySize) {
    return fail(ErrorCode::kByokKeyUnreadable,
                "cannot unwrap " + subject + ": the unwrapped key is not 32 bytes long");
  }
  return data_key;
}

Result<std::string> Vault::encryptCredential(const Secret& data_key, std::string_view data_key_id,
                                             const CredentialBinding& binding,
                                             const Secret& plaintext) {
  if (data_key.size() != kKeySize) {
    return fail(ErrorCode::kInternal, "a data key must be 32 bytes long");
  }
  if (binding.provider.empty() || binding.credential_id.empty()) {
    return fail(ErrorCode::kInternal, "a credential binding needs a provider and a credential id");
  }
  return seal(data_key.reveal(), data_key_id, credentialContext(binding), plaintext.reveal());
}

Result<Secret> Vault::decryptCredential(const Secret& data_key, const CredentialBinding& binding,
                                        std::string_view ciphertext) {
  Result<Secret> plaintext = open(data_key.reveal(), credentialContext(binding), ciphertext);
  if (!plaintext) {
    std::string sealed_by;
    if (std::string_view key_id = ciphertextKeyId(ciphertext); !key_id.empty()) {
      sealed_by = " sealed by data key " + printableKeyId(key_id);
    }
    return fail(ErrorCode::kByokKeyUnreadable, "cannot decrypt " + describeCredential(binding) +
                                                   sealed_by + ": " + plaintext.error().message);
  }
  return plaintext;
}

std::string_view ciphertextKeyId(std::string_view ciphertext) {
  std::optional<SealedParts> parts = parseSealed(ciphertext);
  return parts ? parts->key_id : std::string_view();
}

}  // namespace keystore::vault
