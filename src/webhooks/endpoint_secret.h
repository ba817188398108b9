// Encryption of webhook signing secrets at rest.
//
// A secret is sealed by the vault under its project's newest data key, with associated data
// binding it to the project and the endpoint id (with "keystore.webhook" in the provider
// field), so a ciphertext copied to another endpoint row, or to a credential row, fails to
// open: endpoint ids ("whk_…") never equal a credential id.
//
// Free functions; thread-safe as far as the Store is. They read the data keys from the store.
#pragma once

#include "common/error.h"
#include "common/secret.h"
#include "store/store.h"
#include "vault/vault.h"

namespace keystore::webhooks {

// Sets endpoint.data_key_id and endpoint.secret_ciphertext. endpoint.id and project_id must
// be set.
Result<void> sealEndpointSecret(store::Store& store, const vault::Vault& vault,
                                store::WebhookEndpoint& endpoint, const Secret& secret);

// kByokKeyUnreadable when the ciphertext does not open under the recorded data key.
Result<Secret> openEndpointSecret(store::Store& store, const vault::Vault& vault,
                                  const store::WebhookEndpoint& endpoint);

}  // namespace keystore::webhooks
