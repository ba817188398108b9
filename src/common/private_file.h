// Files that hold secrets (master key, admin key, CLI session): created 0600 through a
// temporary file and rename, and refused when their permissions are wider than the owner's.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore {

// Writes `contents` to `path` with mode 0600 via a temporary file in the same directory and
// rename, so readers see either the old file or the whole new one.
Result<void> writePrivateFile(const std::string& path, std::string_view contents);

// Reads a private file after checking it is a regular file with no group or other permission
// bits; otherwise kInvalidRequest with a message naming the path, its mode and the fix.
Result<Secret> readPrivateFile(const std::string& path);

// Creates `path` (and parents) with mode 0700 if missing.
Result<void> ensurePrivateDirectory(const std::string& path);

}  // namespace keystore
