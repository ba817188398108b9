// The limit and budget flags of `agent update` and `project update`: each takes a whole number
// or the word null (clear the value), and --clear names flags to clear as a list.
//
// One instance belongs to one command and is filled by CLI11 while it parses; not
// thread-safe.
#pragma once

#include <CLI/CLI.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::cli {

// A limit a command can set: its flag without dashes ("rpm"), the API body member it sets
// ("rpm_limit") and the help text.
struct LimitFlag {
  std::string_view flag;
  std::string_view member;
  std::string_view help;
};

class LimitOptions {
 public:
  explicit LimitOptions(std::vector<LimitFlag> flags);

  // Adds one option per flag and --clear to `command`, bound to this object, which must
  // outlive the parse.
  void addTo(CLI::App& command);

  // The PATCH body: each given flag's member with its number, or null for "null" and for the
  // names in --clear. Prints an error and returns nullopt when a value is neither a whole
  // number nor null, --clear names an unknown flag or one that also has a value, or nothing
  // was given.
  std::optional<boost::json::object> body() const;

 private:
  std::vector<LimitFlag> flags_;
  std::vector<std::string> values_;    // one per flag
  std::vector<CLI::Option*> options_;  // one per flag, set by addTo
  std::vector<std::string> clear_;
};

}  // namespace keystore::cli
