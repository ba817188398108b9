#include "cli/cli.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/url.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/api_client.h"
#include "cli/command_support.h"
#include "cli/session_file.h"
#include "common/private_file.h"
#include "tokens/agent_token.h"

namespace keystore::cli {

namespace {

void trimInPlace(std::string& text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.back() = '\0';
    text.pop_back();
  }
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) {
    ++start;
  }
  text.erase(0, start);
}

// The admin key from KEYSTORE_ADMIN_KEY or, failing that, `<data_dir>/admin.key`.
Result<Secret> loadAdminKey(const std::string& data_dir) {
  if (const char* from_env = std::getenv("KEYSTORE_ADMIN_KEY");
      from_env != nullptr && *from_env != '\0') {
    Secret key{std::string(from_env)};
    trimInPlace(key.revealMutable());
    if (!tokens::isAdminKeyShaped(key.reveal())) {
      return fail(ErrorCode::kUnauthenticated,
                  "KEYSTORE_ADMIN_KEY does not hold an admin API key (ksa_ followed by 64 "
                  "lowercase hex digits)");
    }
    return key;
  }

  std::string path = (std::filesystem::path(data_dir) / "admin.key").string();
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    return fail(ErrorCode::kNotFound,
                "no admin API key: KEYSTORE_ADMIN_KEY is not set and " + path +
                    " does not exist; set KEYSTORE_ADMIN_KEY, pass --data-dir with the "
                    "server's data directory, or sign in with `keystore login`");
  }
  Result<Secret> key = readPrivateFile(path);
  if (!key) {
    return key;
  }
  trimInPlace(key->revealMutable());
  if (!tokens::isAdminKeyShaped(key->reveal())) {
    return fail(ErrorCode::kUnauthenticated,
                path +
                    " does not hold an admin API key (ksa_ followed by 64 lowercase hex "
                    "digits)");
  }
  return key;
}

// "error: <message> (<code>)" from an API error body, or a description of the status when
// the body is not one.
std::string describeFailure(const ServerAddress& address, int status,
                            const boost::json::value& body) {
  boost::system::error_code error;
  const boost::json::value* message = body.find_pointer("/error/message", error);
  const boost::json::value* code = body.find_pointer("/error/code", error);
  if (message != nullptr && message->is_string() && code != nullptr && code->is_string()) {
    std::string text =
        std::string(message->as_string()) + " (" + std::string(code->as_string()) + ")";
    if (status == 401) {
      text += "; check KEYSTORE_ADMIN_KEY or the admin.key file in --data-dir, or sign in "
              "again with `keystore login`";
    }
    return text;
  }
  return "the server at " + address.text + " answered HTTP " + std::to_string(status) +
         " without a Keystore error body; check that --addr names the admin listener";
}

}  // namespace

void addCommonOptions(CLI::App& command, CommonOptions& options) {
  command.add_option("--addr", options.addr, "Address of the Keystore admin API")
      ->envname("KEYSTORE_ADDR")
      ->capture_default_str();
  command
      .add_option("--data-dir", options.data_dir,
                  "Server data directory, where admin.key is read when KEYSTORE_ADMIN_KEY is "
                  "not set")
      ->envname("KEYSTORE_DATA_DIR")
      ->capture_default_str();
  command.add_flag("--json", options.json,
                   "Print the API's JSON response instead of text for people");
}

std::optional<boost::json::value> callApi(const CommonOptions& options, std::string_view method,
                                          const std::string& target, std::string_view body,
                                          int& exit_code) {
  Result<ServerAddress> address = parseServerAddress(options.addr);
  if (!address) {
    printError(address.error().message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  // An admin key, from the environment or the data directory, wins over a saved sign-in.
  Result<Secret> admin_key = loadAdminKey(options.data_dir);
  if (!admin_key && admin_key.error().code == ErrorCode::kNotFound) {
    Result<std::optional<SavedSession>> session = loadSession();
    if (!session) {
      admin_key = std::unexpected(session.error());
    } else if (session->has_value()) {
      admin_key = std::move((*session)->token);
      if (options.addr == CommonOptions{}.addr) {
        if (Result<ServerAddress> saved = parseServerAddress((*session)->url); saved) {
          address = std::move(saved);
        }
      }
    }
  }
  if (!admin_key) {
    printError(admin_key.error().message);
    exit_code = kExitFailure;
    return std::nullopt;
  }

  ApiClient client(*address, std::move(*admin_key));
  Result<HttpReply> reply = client.send(method, target, body);
  if (!reply) {
    printError(reply.error().message);
    exit_code = kExitFailure;
    return std::nullopt;
  }

  boost::system::error_code error;
  boost::json::value parsed =
      reply->body.empty() ? boost::json::value(nullptr) : boost::json::parse(reply->body, error);
  if (reply->status >= 400) {
    printError(describeFailure(*address, reply->status, error ? boost::json::value() : parsed));
    exit_code = kExitFailure;
    return std::nullopt;
  }
  if (error) {
    printError("the server at " + address->text +
               " did not answer with JSON; check that --addr names the admin listener");
    exit_code = kExitFailure;
    return std::nullopt;
  }
  return parsed;
}

std::string apiTarget(std::initializer_list<std::string_view> segments,
                      const std::vector<std::pair<std::string, std::string>>& query) {
  boost::urls::url url;
  url.set_path_absolute(true);
  url.segments().push_back("api");
  url.segments().push_back("v1");
  for (std::string_view segment : segments) {
    url.segments().push_back(segment);
  }
  for (const auto& [key, value] : query) {
    url.params().append({key, value});
  }
  return std::string(url.buffer());
}

void runCommand(int& exit_code, const std::function<int()>& body) {
  try {
    exit_code = body();
  } catch (const std::exception& error) {
    printError(error.what());
    exit_code = kExitFailure;
  }
}

void printError(std::string_view message) {
  std::cerr << "error: " << message << '\n';
}

void printJson(const boost::json::value& value) {
  std::cout << boost::json::serialize(value) << '\n';
}

std::string stringField(const boost::json::value& object, std::string_view name,
                        std::string_view fallback) {
  const boost::json::object* fields = object.if_object();
  const boost::json::value* value = fields != nullptr ? fields->if_contains(name) : nullptr;
  if (value == nullptr || !value->is_string()) {
    return std::string(fallback);
  }
  return std::string(value->as_string());
}

std::string shortTime(const boost::json::value& object, std::string_view name) {
  std::string time = stringField(object, name);
  if (time.size() < 16 || time[10] != 'T') {
    return time;
  }
  time[10] = ' ';
  return time.substr(0, 16);
}

const boost::json::array& dataArray(const boost::json::value& response) {
  static const boost::json::array kEmpty;
  const boost::json::object* fields = response.if_object();
  const boost::json::value* data = fields != nullptr ? fields->if_contains("data") : nullptr;
  return data != nullptr && data->is_array() ? data->as_array() : kEmpty;
}

void addClientCommands(CLI::App& app, int& exit_code) {
  addProjectCommands(app, exit_code);
  addProviderCommands(app, exit_code);
  addAgentCommands(app, exit_code);
  addTokenCommands(app, exit_code);
  addPoolCommands(app, exit_code);
  addConciergeCommands(app, exit_code);
  addAdminKeyCommands(app, exit_code);
  addPriceCommands(app, exit_code);
  addUsageCommands(app, exit_code);
  addAccountCommands(app, exit_code);
  addAuditCommands(app, exit_code);
  addWebhookCommands(app, exit_code);
}

}  // namespace keystore::cli
