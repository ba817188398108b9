#include "server/master_key_rotation.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace keystore::server {

namespace {

// Data keys not yet wrapped by `target_key_id`, oldest first.
Result<std::vector<store::DataKey>> pendingDataKeys(store::Store& store,
                                                    const std::string& target_key_id) {
  auto keys = store.listDataKeys();
  if (!keys) {
    return std::unexpected(keys.error());
  }
  std::erase_if(*keys,
                [&](const store::DataKey& key) { return key.master_key_id == target_key_id; });
  return keys;
}

Result<store::DataKeyRewrap> rewrapOne(const vault::Vault& keyring, const store::DataKey& key) {
  auto plain = keyring.unwrapDataKey(key.project_id, key.key_id, key.wrapped);
  if (!plain) {
    return std::unexpected(plain.error());
  }
  auto wrapped = keyring.wrapDataKey(key.project_id, key.key_id, *plain);
  if (!wrapped) {
    return std::unexpected(wrapped.error());
  }

  store::DataKey updated = key;
  updated.master_key_id = std::string(vault::ciphertextKeyId(*wrapped));
  updated.wrapped = std::move(*wrapped);
  return store::DataKeyRewrap{std::move(updated), key.master_key_id};
}

// Re-seals the check value under the current key unless it already is.
Result<bool> moveCheckValue(store::Store& store, const vault::Vault& keyring) {
  auto stored = store.getSetting(std::string(kCheckValueSetting));
  if (!stored) {
    return std::unexpected(stored.error());
  }
  if (!stored->has_value() || vault::Vault::checkValueKeyId(**stored) == keyring.masterKeyId()) {
    return false;
  }
  // The old value must open first, so a rotation run with the wrong keys cannot replace the
  // installation's check value.
  if (auto verified = keyring.verifyCheckValue(**stored); !verified) {
    return std::unexpected(verified.error());
  }
  if (auto done = store.putSetting(std::string(kCheckValueSetting), keyring.makeCheckValue());
      !done) {
    return std::unexpected(done.error());
  }
  return true;
}

bool fileExists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

Result<void> removeFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return fail(ErrorCode::kInternal, "cannot remove " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<RotationReport> rewrapAllDataKeys(store::Store& store, const vault::Vault& keyring,
                                         const RotationOptions& options,
                                         const RotationProgress& progress) {
  RotationReport report;
  report.target_key_id = keyring.masterKeyId();
  size_t batch_size = std::max<size_t>(options.batch_size, 1);
  int idle_batches = 0;

  while (true) {
    auto pending = pendingDataKeys(store, report.target_key_id);
    if (!pending) {
      return std::unexpected(pending.error());
    }
    report.remaining = pending->size();
    bool limit_reached = options.limit != 0 && report.moved >= options.limit;
    if (pending->empty() || limit_reached) {
      break;
    }

    size_t count = std::min(batch_size, pending->size());
    if (options.limit != 0) {
      count = std::min(count, options.limit - report.moved);
    }
    std::vector<store::DataKeyRewrap> batch;
    for (size_t i = 0; i < count; ++i) {
      auto rewrap = rewrapOne(keyring, (*pending)[i]);
      if (!rewrap) {
        return std::unexpected(rewrap.error());
      }
      batch.push_back(std::move(*rewrap));
    }

    auto changed = store.rewrapDataKeys(batch);
    if (!changed) {
      return std::unexpected(changed.error());
    }
    report.moved += *changed;
    report.remaining = pending->size() - std::min(pending->size(), *changed);
    if (progress) {
      progress(report.moved, report.remaining);
    }
    // Rows that keep changing under this run mean another rotation to a different key is
    // running; stop rather than fight it.
    idle_batches = *changed == 0 ? idle_batches + 1 : 0;
    if (idle_batches >= 3) {
      return fail(ErrorCode::kConflict,
                  "data keys keep changing under this rotation; is another rotation to a "
                  "different master key running?");
    }
  }

  if (report.remaining == 0) {
    auto moved = moveCheckValue(store, keyring);
    if (!moved) {
      return std::unexpected(moved.error());
    }
    report.check_value_updated = *moved;
  }
  return report;
}

Result<size_t> countUsesOfMasterKey(store::Store& store, const std::string& master_key_id) {
  auto keys = store.listDataKeys();
  if (!keys) {
    return std::unexpected(keys.error());
  }
  size_t uses =
      static_cast<size_t>(std::count_if(keys->begin(), keys->end(), [&](const store::DataKey& key) {
        return key.master_key_id == master_key_id;
      }));

  auto check_value = store.getSetting(std::string(kCheckValueSetting));
  if (!check_value) {
    return std::unexpected(check_value.error());
  }
  if (check_value->has_value() && vault::Vault::checkValueKeyId(**check_value) == master_key_id) {
    ++uses;
  }
  return uses;
}

Result<std::vector<vault::MasterKey>> prepareDataDirRotation(store::Store& store,
                                                             const std::string& data_dir,
                                                             bool& resumed) {
  std::string current_path = vault::masterKeyPath(data_dir);
  std::string previous_path = vault::previousMasterKeyPath(data_dir);
  auto current = vault::readMasterKeyFile(current_path);
  if (!current) {
    return std::unexpected(current.error());
  }

  auto previous = vault::readMasterKeyFile(previous_path);
  if (!previous && previous.error().code != ErrorCode::kNotFound) {
    return std::unexpected(previous.error());
  }
  resumed = false;
  if (previous && previous->id != current->id) {
    auto uses = countUsesOfMasterKey(store, previous->id);
    if (!uses) {
      return std::unexpected(uses.error());
    }
    if (*uses > 0) {
      resumed = true;
      return std::vector<vault::MasterKey>{std::move(*current), std::move(*previous)};
    }
    // A finished rotation left its previous key behind; this run replaces it.
    if (auto done = removeFile(previous_path); !done) {
      return std::unexpected(done.error());
    }
  }

  // Keep the current key as the previous one before master.key changes. A crash between the
  // two steps leaves both files holding the same key, which the next run recognizes above.
  if (!previous || previous->id != current->id) {
    if (::link(current_path.c_str(), previous_path.c_str()) != 0) {
      return fail(ErrorCode::kInternal,
                  "cannot keep the master key as " + previous_path + ": " + std::strerror(errno));
    }
  }
  vault::MasterKey next = vault::generateMasterKey("file " + current_path);
  if (auto done = vault::writeMasterKeyFile(current_path, next); !done) {
    return std::unexpected(done.error());
  }
  return std::vector<vault::MasterKey>{std::move(next), std::move(*current)};
}

Result<std::string> finishDataDirRotation(store::Store& store, const std::string& data_dir) {
  std::string previous_path = vault::previousMasterKeyPath(data_dir);
  if (!fileExists(previous_path)) {
    return std::string();
  }
  auto previous = vault::readMasterKeyFile(previous_path);
  if (!previous) {
    return std::unexpected(previous.error());
  }
  auto current = vault::readMasterKeyFile(vault::masterKeyPath(data_dir));
  if (!current) {
    return std::unexpected(current.error());
  }
  if (current->id == previous->id) {
    return fail(ErrorCode::kConflict,
                "the rotation stopped before writing the new master key; run 'keystore rotate "
                "master-key' again first");
  }

  auto uses = countUsesOfMasterKey(store, previous->id);
  if (!uses) {
    return std::unexpected(uses.error());
  }
  if (*uses > 0) {
    return fail(ErrorCode::kConflict,
                std::to_string(*uses) + " stored values still use the previous master key " +
                    previous->id + "; run 'keystore rotate master-key' again to move them");
  }
  if (auto done = removeFile(previous_path); !done) {
    return std::unexpected(done.error());
  }
  return previous->id;
}

}  // namespace keystore::server
