// Writing and checking the audit trail through the Store, for code outside the management API:
// operator commands that change the store directly (master-key rotation, user creation) and
// `keystore audit verify` on a data directory.
//
// Free functions; thread-safe as far as the Store is.
#pragma once

#include <string>

#include "audit/audit_chain.h"
#include "common/error.h"
#include "store/store.h"

namespace keystore::audit {

// Appends one entry for a change made outside the management API and returns it as stored.
// Empty fields get defaults: actor_kind "operator_cli", actor "local:<login name>" (from the
// USER environment variable, else "local") and details "{}". The store adds id, time, seq and
// the hashes. `entry` must name the organization and the action. Details must hold no
// secret. To make the change and its entry one atomic unit, call this and the change inside
// one Store::inTransaction().
Result<store::AuditEntry> appendOperatorEntry(store::Store& store, store::AuditEntry entry);

// Checks the store's whole chain, reading it in pages of `page_size` entries.
Result<ChainReport> verifyStoredChain(store::Store& store, int page_size = 1000);

}  // namespace keystore::audit
