// The CLI's saved sign-in: `keystore login` writes the server URL and the session token to
// $XDG_CONFIG_HOME/keystore/session.json (default ~/.config/keystore), mode 0600 in a 0700
// directory, and other commands use it when no admin key is configured.
//
// Free functions; not thread-safe with respect to other processes writing the same file.
#pragma once

#include <optional>
#include <string>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::cli {

struct SavedSession {
  std::string url;
  Secret token;  // "kss_…"
};

// The path of session.json. kInvalidRequest when neither XDG_CONFIG_HOME nor HOME is set.
Result<std::string> sessionFilePath();

// Writes the session file, creating its directory with mode 0700.
Result<void> saveSession(const SavedSession& session);

// The saved session, or nullopt when there is no file. kInvalidRequest when the file has
// wider permissions than 0600 or does not hold a URL and a session token.
Result<std::optional<SavedSession>> loadSession();

// Deletes the session file; a missing file is not an error.
Result<void> removeSession();

}  // namespace keystore::cli
