// Plumbing shared by the CLI's client commands: the options every command takes, calling the
// management API, and printing results and errors. Internal to src/cli.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keystore::cli {

// Options that every client command accepts.
struct CommonOptions {
  std::string addr = "http://127.0.0.1:8081";
  std::string data_dir = "./keystore-data";
  bool json = false;
};

// Adds --addr, --data-dir and --json to `command`, bound to `options`.
void addCommonOptions(CLI::App& command, CommonOptions& options);

// Calls the management API. On success returns the parsed JSON body (null for an empty
// body). Otherwise prints the error on standard error, sets `exit_code` and returns nullopt.
std::optional<boost::json::value> callApi(const CommonOptions& options, std::string_view method,
                                          const std::string& target, std::string_view body,
                                          int& exit_code);

// Builds "/api/v1/…" from unencoded path segments and query parameters, percent-encoding each.
std::string apiTarget(std::initializer_list<std::string_view> segments,
                      const std::vector<std::pair<std::string, std::string>>& query = {});

// Runs a command's body, turning an escaped exception into "error: …" and exit status 1, so
// no failure ends the process with an uncaught exception.
void runCommand(int& exit_code, const std::function<int()>& body);

// Prints "error: <message>" on standard error.
void printError(std::string_view message);

// Prints a JSON value on standard output, followed by a newline.
void printJson(const boost::json::value& value);

// The string member `name` of a JSON object, or `fallback` when it is absent, null or not a
// string.
std::string stringField(const boost::json::value& object, std::string_view name,
                        std::string_view fallback = "-");

// An RFC 3339 time shortened for tables ("2025-01-31 12:00"), or "-" for null.
std::string shortTime(const boost::json::value& object, std::string_view name);

// The "data" array of a list response, or an empty array when it is missing.
const boost::json::array& dataArray(const boost::json::value& response);

void addProjectCommands(CLI::App& app, int& exit_code);
void addProviderCommands(CLI::App& app, int& exit_code);
void addAgentCommands(CLI::App& app, int& exit_code);
void addTokenCommands(CLI::App& app, int& exit_code);
void addPoolCommands(CLI::App& app, int& exit_code);
void addConciergeCommands(CLI::App& app, int& exit_code);
void addAdminKeyCommands(CLI::App& app, int& exit_code);
void addPriceCommands(CLI::App& app, int& exit_code);
// `usage` and `invoice`.
void addUsageCommands(CLI::App& app, int& exit_code);
// `login`, `logout`, `user`, `org` and `member`.
void addAccountCommands(CLI::App& app, int& exit_code);
void addAuditCommands(CLI::App& app, int& exit_code);
void addWebhookCommands(CLI::App& app, int& exit_code);

}  // namespace keystore::cli
