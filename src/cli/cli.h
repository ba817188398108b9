// The client side of the `keystore` binary: `keystore <noun> <verb>` commands that talk to
// the management API of a running server.
//
// The server address comes from --addr or KEYSTORE_ADDR (default http://127.0.0.1:8081); the
// admin key from KEYSTORE_ADMIN_KEY or, failing that, `<data dir>/admin.key` (--data-dir or
// KEYSTORE_DATA_DIR, default ./keystore-data). Secrets are read from standard input or a
// hidden prompt, never from an argument.
#pragma once

#include <CLI/CLI.hpp>

namespace keystore::cli {

// Exit statuses of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Registers the client commands on `app`. A command's callback stores its exit status in
// `exit_code`.
void addClientCommands(CLI::App& app, int& exit_code);

}  // namespace keystore::cli
