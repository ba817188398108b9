// MasterKey: the 256-bit root key and where it came from.
//
// Sources, in order of precedence: the KEYSTORE_MASTER_KEY value (64 hex digits or base64 of
// 32 bytes), a key file named by the operator, or `<data dir>/master.key`, generated on first
// start. A key file must be a regular file readable by its owner only (mode 0600 or 0400);
// anything wider is refused. A generated key file contains 64 lowercase hex digits and a newline;
// it is written to a staging file with mode 0600 and hard-linked into place, so a crash never
// leaves a partial key file and two processes starting at once agree on one key.
//
// Rotation keeps the key it replaces in `<data dir>/master.key.previous` (or in a file or value
// the operator names), so data keys wrapped before or during a rotation can still be opened.
//
// Free functions without shared state; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::vault {

struct MasterKey {
  Secret key;          // 32 bytes
  std::string id;      // "mk_" + first 16 hex digits of SHA-256(key); safe to log
  std::string source;  // "environment", "file <path>" or "generated <path>"; safe to log
};

struct MasterKeyOptions {
  Secret env_value;      // KEYSTORE_MASTER_KEY, empty when unset
  std::string key_file;  // --master-key-file, empty when unset
  std::string data_dir;  // where master.key is generated when nothing else is given
  // Keys replaced by a rotation, still needed to open data keys not yet re-wrapped.
  Secret previous_env_value;      // KEYSTORE_PREVIOUS_MASTER_KEY, empty when unset
  std::string previous_key_file;  // --previous-master-key-file, empty when unset
};

// Errors name the problem and the fix, e.g. "master key file /x/master.key has mode 0644;
// run chmod 600 on it", never the key.
Result<MasterKey> loadMasterKey(const MasterKeyOptions& options);

// The current key followed by every previous key, without duplicates. The data directory's
// master.key.previous counts only when the current key is the data directory's own.
Result<std::vector<MasterKey>> loadMasterKeyring(const MasterKeyOptions& options);

// Where the data directory keeps its generated key and the key a rotation replaced.
std::string masterKeyPath(const std::string& data_dir);
std::string previousMasterKeyPath(const std::string& data_dir);

// Generates a random master key with its id; `source` is the file it will be written to.
MasterKey generateMasterKey(std::string source);
// Reads one key file. kNotFound when it does not exist.
Result<MasterKey> readMasterKeyFile(const std::string& path);
// Writes the key as 64 hex digits and a newline, mode 0600, replacing `path` atomically.
Result<void> writeMasterKeyFile(const std::string& path, const MasterKey& key);

// Parses 64 hex digits or base64 of exactly 32 bytes (surrounding whitespace ignored).
Result<Secret> parseMasterKeyText(std::string_view text);

}  // namespace keystore::vault
