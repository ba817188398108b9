// Reading a secret for the CLI without it ever appearing in an argument list or on screen.
#pragma once

#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::cli {

// Reads a secret: all of standard input when it is not a terminal (a pipe or a file), or one
// line typed at `prompt` with echo turned off when it is. Trailing CR and LF characters are
// removed. kInvalidRequest when nothing was read or the input exceeds 64 KiB.
Result<Secret> readSecret(std::string_view prompt);

// Removes trailing CR and LF characters in place, so "key\n" and "key\r\n" read as "key".
void stripTrailingNewlines(Secret& secret);

}  // namespace keystore::cli
