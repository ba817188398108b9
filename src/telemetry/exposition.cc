#include "telemetry/exposition.h"

#include <cstdint>

namespace keystore::telemetry {

namespace {

bool isAsciiLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isAsciiDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

bool isValidMetricName(std::string_view name) {
  if (name.empty() || isAsciiDigit(name.front())) {
    return false;
  }
  for (char c : name) {
    if (!isAsciiLetter(c) && !isAsciiDigit(c) && c != '_' && c != ':') {
      return false;
    }
  }
  return true;
}

bool isValidLabelName(std::string_view name) {
  if (name.empty() || isAsciiDigit(name.front()) || name.starts_with("__")) {
    return false;
  }
  for (char c : name) {
    if (!isAsciiLetter(c) && !isAsciiDigit(c) && c != '_') {
      return false;
    }
  }
  return true;
}

void appendEscapedLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void appendEscapedHelp(std::string& out, std::string_view help) {
  for (char c : help) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void appendSeconds(std::string& out, std::chrono::nanoseconds duration) {
  constexpr int64_t kNanosPerSecond = 1'000'000'000;
  int64_t nanos = duration.count();
  if (nanos <= 0) {
    out += '0';
    return;
  }

  out += std::to_string(nanos / kNanosPerSecond);
  int64_t fraction = nanos % kNanosPerSecond;
  if (fraction == 0) {
    return;
  }

  // Nine digits with leading zeros, then the trailing zeros dropped.
  std::string digits = std::to_string(fraction);
  digits.insert(0, 9 - digits.size(), '0');
  digits.erase(digits.find_last_not_of('0') + 1);
  out += '.';
  out += digits;
}

}  // namespace keystore::telemetry
