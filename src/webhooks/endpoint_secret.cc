#include "webhooks/endpoint_secret.h"

#include <string>
#include <vector>

namespace keystore::webhooks {

namespace {

constexpr std::string_view kBindingProvider = "keystore.webhook";

// The project's data key named `key_id`, or its newest when `key_id` is empty.
Result<store::DataKey> findDataKey(store::Store& store, const std::string& project_id,
                                   const std::string& key_id) {
  Result<std::vector<store::DataKey>> keys = store.listDataKeys();
  if (!keys) {
    return std::unexpected(keys.error());
  }
  const store::DataKey* chosen = nullptr;
  for (const store::DataKey& key : *keys) {
    bool candidate = key.project_id == project_id && (key_id.empty() || key.key_id == key_id);
    if (candidate && (chosen == nullptr || key.created_at >= chosen->created_at)) {
      chosen = &key;
    }
  }
  if (chosen == nullptr) {
    return fail(ErrorCode::kInternal, "project " + project_id + " has no data key" +
                                          (key_id.empty() ? "" : " " + key_id));
  }
  return *chosen;
}

}  // namespace

Result<void> sealEndpointSecret(store::Store& store, const vault::Vault& vault,
                                store::WebhookEndpoint& endpoint, const Secret& secret) {
  Result<store::DataKey> key = findDataKey(store, endpoint.project_id, "");
  if (!key) {
    return std::unexpected(key.error());
  }
  Result<Secret> data_key = vault.unwrapDataKey(endpoint.project_id, key->key_id, key->wrapped);
  if (!data_key) {
    return std::unexpected(data_key.error());
  }
  vault::CredentialBinding binding{endpoint.project_id, kBindingProvider, endpoint.id};
  Result<std::string> sealed =
      vault::Vault::encryptCredential(*data_key, key->key_id, binding, secret);
  if (!sealed) {
    return std::unexpected(sealed.error());
  }
  endpoint.data_key_id = key->key_id;
  endpoint.secret_ciphertext = std::move(*sealed);
  return {};
}

Result<Secret> openEndpointSecret(store::Store& store, const vault::Vault& vault,
                                  const store::WebhookEndpoint& endpoint) {
  Result<store::DataKey> key = findDataKey(store, endpoint.project_id, endpoint.data_key_id);
  if (!key) {
    return std::unexpected(key.error());
  }
  Result<Secret> data_key = vault.unwrapDataKey(endpoint.project_id, key->key_id, key->wrapped);
  if (!data_key) {
    return std::unexpected(data_key.error());
  }
  vault::CredentialBinding binding{endpoint.project_id, kBindingProvider, endpoint.id};
  return vault::Vault::decryptCredential(*data_key, binding, endpoint.secret_ciphertext);
}

}  // namespace keystore::webhooks
