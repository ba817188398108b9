// Master-key rotation: re-wraps every data key under a new master key while servers keep
// running, and the key-file steps for a data directory's generated key.
//
// Only data keys change; credential ciphertexts stay byte for byte as they are. Each batch of
// data keys is one transaction that updates a row only while it is still wrapped by the key
// it was read under. So two runs, or a run after a crash, never undo each other's work, and
// running the command again resumes an interrupted rotation. The master-key check value follows the
// new key once no data key is left under an old one.
//
// Free functions without shared state; callers serialize runs on one data directory.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/store.h"
#include "vault/master_key.h"
#include "vault/vault.h"

namespace keystore::server {

// The settings key of the master-key check value.
inline constexpr std::string_view kCheckValueSetting = "vault.check_value";

struct RotationOptions {
  size_t batch_size = 16;  // data keys per transaction
  size_t limit = 0;        // stop after this many data keys; 0 = no limit
};

struct RotationReport {
  std::string target_key_id;  // the master key every data key is moved to
  size_t moved = 0;           // data keys re-wrapped by this run
  size_t remaining = 0;       // data keys still wrapped by another master key
  bool check_value_updated = false;
};

using RotationProgress = std::function<void(size_t moved, size_t remaining)>;

// Moves every data key not wrapped by the keyring's current key under it. The keyring must
// hold the keys the data keys are wrapped by. kByokKeyUnreadable (naming the data key) when
// one cannot be unwrapped; rows moved before the failure stay moved.
Result<RotationReport> rewrapAllDataKeys(store::Store& store, const vault::Vault& keyring,
                                         const RotationOptions& options,
                                         const RotationProgress& progress);

// How many data keys, plus one for the check value, are still wrapped by `master_key_id`.
Result<size_t> countUsesOfMasterKey(store::Store& store, const std::string& master_key_id);

// The keyring for rotating a data directory's generated key: the new key first, then the one
// it replaces. Starts a rotation (the current master.key is kept as master.key.previous and a
// new master.key is written, atomically each) unless one is unfinished, which it resumes.
// Sets `resumed` to true when it resumed an unfinished rotation.
Result<std::vector<vault::MasterKey>> prepareDataDirRotation(store::Store& store,
                                                             const std::string& data_dir,
                                                             bool& resumed);

// Deletes master.key.previous once nothing uses it; kConflict, naming the count, otherwise.
// Returns the removed key's id, or "" when there was no previous key.
Result<std::string> finishDataDirRotation(store::Store& store, const std::string& data_dir);

}  // namespace keystore::server
