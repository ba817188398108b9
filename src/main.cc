// keystore: one binary for the server (`keystore serve`) and the command-line client.
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "server/rotate_command.h"
#include "server/serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Keystore: a credential vault and injecting proxy for AI agents"};
  app.set_version_flag("--version", "keystore 0.1.0");
  app.require_subcommand(1);

  int exit_code = keystore::cli::kExitOk;
  keystore::server::addServeCommand(app, exit_code);
  keystore::server::addRotateCommand(app, exit_code);
  keystore::cli::addClientCommands(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int status = app.exit(error);
    return status == 0 ? keystore::cli::kExitOk : keystore::cli::kExitUsage;
  }
  return exit_code;
}
