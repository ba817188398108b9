#include "cli/limit_options.h"

#include <algorithm>

#include "cli/command_support.h"

namespace keystore::cli {

namespace {

// Up to 18 digits always fit in int64; the server checks each limit's range.
constexpr size_t kMaxDigits = 18;

std::optional<int64_t> parseWholeNumber(const std::string& text) {
  bool digits = !text.empty() && text.size() <= kMaxDigits &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return std::nullopt;
  }
  return std::stoll(text);
}

}  // namespace

LimitOptions::LimitOptions(std::vector<LimitFlag> flags)
    : flags_(std::move(flags)), values_(flags_.size()) {}

void LimitOptions::addTo(CLI::App& command) {
  std::string names;
  for (size_t i = 0; i < flags_.size(); ++i) {
    options_.push_back(
        command
            .add_option("--" + std::string(flags_[i].flag), values_[i], std::string(flags_[i].help))
            ->type_name("N|null"));
    names += names.empty() ? "" : ",";
    names += flags_[i].flag;
  }
  command
      .add_option(
          "--clear", clear_,
          "Comma-separated limits to clear, the same as giving each the value null: " + names)
      ->delimiter(',')
      ->type_name("NAMES");
}

std::optional<boost::json::object> LimitOptions::body() const {
  boost::json::object body;
  for (size_t i = 0; i < flags_.size(); ++i) {
    if (options_.size() <= i || options_[i]->count() == 0) {
      continue;
    }
    const std::string& value = values_[i];
    if (value == "null") {
      body[flags_[i].member] = nullptr;
      continue;
    }
    std::optional<int64_t> number = parseWholeNumber(value);
    if (!number) {
      printError("--" + std::string(flags_[i].flag) +
                 " must be a whole number or the word null, not \"" + value + "\"");
      return std::nullopt;
    }
    body[flags_[i].member] = *number;
  }

  for (const std::string& name : clear_) {
    auto flag = std::find_if(flags_.begin(), flags_.end(),
                             [&](const LimitFlag& candidate) { return candidate.flag == name; });
    if (flag == flags_.end()) {
      std::string names;
      for (const LimitFlag& known : flags_) {
        names += names.empty() ? "" : ", ";
        names += known.flag;
      }
      printError("--clear names unknown limit \"" + name + "\"; expected some of: " + names);
      return std::nullopt;
    }
    const boost::json::value* existing = body.if_contains(flag->member);
    if (existing != nullptr && !existing->is_null()) {
      printError("--" + name + " is given a value and also named in --clear; use one of them");
      return std::nullopt;
    }
    body[flag->member] = nullptr;
  }

  if (body.empty()) {
    std::string names;
    for (const LimitFlag& flag : flags_) {
      names += names.empty() ? "" : ", ";
      names += "--" + std::string(flag.flag);
    }
    printError("nothing to change; give at least one of " + names + " or --clear");
    return std::nullopt;
  }
  return body;
}

}  // namespace keystore::cli
