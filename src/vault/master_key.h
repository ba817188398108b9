// MasterKey: the 256-bit root key and where it came from.
//
// Sources, in order of precedence: the KEYSTORE_MASTER_KEY value (64 hex digits or base64 of
// 32 bytes), a key file named by the operator, or `<data dir>/master.key`, generated on first
// start. A key file must be a regular file readable by its owner only (mode 0600 or 0400);
// anything wider is refused. A generated key file contains 64 lowercase hex digits and a newline;
// it is written to a staging file with mode 0600 and hard-linked into place, so a crash never
// leaves a partial key file and two processes starting at once agree on one key.
//
// Free functions without shared state; thread-safe.
#pragma once

#include <string>
#include <string_view>

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
};

// Errors name the problem and the fix, e.g. "master key file /x/master.key has mode 0644;
// run chmod 600 on it", never the key.
Result<MasterKey> loadMasterKey(const MasterKeyOptions& options);

// Parses 64 hex digits or base64 of exactly 32 bytes (surrounding whitespace ignored).
Result<Secret> parseMasterKeyText(std::string_view text);

}  // namespace keystore::vault
