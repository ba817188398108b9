// `keystore rotate master-key`: rotates the master key of a data directory, or moves the
// data keys to a key the operator supplies, while servers keep running. It works on the
// database and key files directly, because the key material never crosses the management API.
#pragma once

#include <CLI/CLI.hpp>

namespace keystore::server {

// Registers `rotate master-key` on `app`; the callback stores its exit status in `exit_code`.
void addRotateCommand(CLI::App& app, int& exit_code);

}  // namespace keystore::server
