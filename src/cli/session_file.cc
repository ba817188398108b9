#include "cli/session_file.h"


#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <filesystem>

#include "accounts/session_token.h"
#include "common/private_file.h"
#include "common/secure_zero.h"

namespace keystore::cli {

Result<std::string> sessionFilePath() {
  std::filesystem::path directory;
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && *config != '\0') {
    directory = config;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    directory = std::filesystem::path(home) / ".config";
  } else {
    return fail(ErrorCode::kInvalidRequest,
                "cannot find the configuration directory: set XDG_CONFIG_HOME or HOME");
  }
  return (directory / "keystore" / "session.json").string();
}

Result<void> saveSession(const SavedSession& session) {
  Result<std::string> path = sessionFilePath();
  if (!path) {
    return std::unexpected(path.error());
  }
  std::string directory = std::filesystem::path(*path).parent_path().string();
  if (auto created = ensurePrivateDirectory(directory); !created) {
    return created;
  }
  std::string contents = boost::json::serialize(
      boost::json::object{{"url", session.url}, {"session_token", session.token.reveal()}});
  Result<void> written = writePrivateFile(*path, contents + "\n");
  secureZero(contents.data(), contents.size());
  return written;
}

Result<std::optional<SavedSession>> loadSession() {
  Result<std::string> path = sessionFilePath();
  if (!path) {
    return std::unexpected(path.error());
  }
  std::error_code error;
  if (!std::filesystem::exists(*path, error)) {
    return std::nullopt;
  }
  Result<Secret> contents = readPrivateFile(*path);
  if (!contents) {
    return std::unexpected(contents.error());
  }
  boost::system::error_code parse_error;
  boost::json::value parsed = boost::json::parse(contents->reveal(), parse_error);
  const boost::json::object* fields = parse_error ? nullptr : parsed.if_object();
  const boost::json::value* url = fields != nullptr ? fields->if_contains("url") : nullptr;
  const boost::json::value* token =
      fields != nullptr ? fields->if_contains("session_token") : nullptr;
  bool valid = url != nullptr && url->is_string() && token != nullptr && token->is_string() &&
               accounts::isSessionTokenShaped(token->as_string());
  if (!valid) {
    return fail(ErrorCode::kInvalidRequest,
                *path + " does not hold a saved sign-in; run `keystore login` again");
  }
  SavedSession session{std::string(url->as_string()), Secret(std::string(token->as_string()))};
  boost::json::string& stored_token = parsed.as_object()["session_token"].as_string();
  secureZero(stored_token.data(), stored_token.size());
  return session;
}

Result<void> removeSession() {
  Result<std::string> path = sessionFilePath();
  if (!path) {
    return std::unexpected(path.error());
  }
  std::error_code error;
  std::filesystem::remove(*path, error);
  if (error) {
    return fail(ErrorCode::kInternal, "cannot delete " + *path + ": " + error.message());
  }
  return {};
}

}  // namespace keystore::cli
