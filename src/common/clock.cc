#include "common/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace keystore {

int64_t nowUnixMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string formatRfc3339(int64_t unix_millis) {
  time_t seconds = static_cast<time_t>(unix_millis / 1000);
  int millis = static_cast<int>(unix_millis % 1000);
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[80];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, millis);
  return text;
}

namespace {

bool readDigits(std::string_view text, size_t pos, size_t count, int& value) {
  if (pos + count > text.size()) {
    return false;
  }
  value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return false;
    }
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<int64_t> parseRfc3339(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!readDigits(text, 0, 4, year) || text.size() < 10 || text[4] != '-' ||
      !readDigits(text, 5, 2, month) || text[7] != '-' || !readDigits(text, 8, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    return std::nullopt;
  }
  int64_t offset_seconds = 0;
  int millis = 0;
  if (text.size() > 10) {
    if ((text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !readDigits(text, 11, 2, hour) ||
        text.size() < 19 || text[13] != ':' || !readDigits(text, 14, 2, minute) ||
        text[16] != ':' || !readDigits(text, 17, 2, second)) {
      return std::nullopt;
    }
    if (hour > 23 || minute > 59 || second > 60) {
      return std::nullopt;
    }
    size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      int digits = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (digits < 3) {
          millis = millis * 10 + (text[pos] - '0');
        }
        ++digits;
        ++pos;
      }
      if (digits == 0) {
        return std::nullopt;
      }
      for (int i = digits; i < 3; ++i) {
        millis *= 10;
      }
    }
    if (pos >= text.size()) {
      return std::nullopt;
    }
    if (text[pos] == 'Z' || text[pos] == 'z') {
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      int offset_hours = 0, offset_minutes = 0;
      if (!readDigits(text, pos + 1, 2, offset_hours) || pos + 3 >= text.size() ||
          text[pos + 3] != ':' || !readDigits(text, pos + 4, 2, offset_minutes)) {
        return std::nullopt;
      }
      offset_seconds = (offset_hours * 3600 + offset_minutes * 60) * (text[pos] == '+' ? 1 : -1);
      pos += 6;
    } else {
      return std::nullopt;
    }
    if (pos != text.size()) {
      return std::nullopt;
    }
  }
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  int64_t seconds = static_cast<int64_t>(timegm(&parts)) - offset_seconds;
  return seconds * 1000 + millis;
}

namespace {

// Sums a duration made of numbers with units; 0 when every number is 0.
std::optional<int64_t> sumDurationMillis(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  int64_t total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int64_t number = 0;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      number = number * 10 + (text[pos] - '0');
      if (number > 1'000'000'000) {
        return std::nullopt;
      }
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
    int64_t unit = 0;
    if (text.substr(pos, 2) == "ms") {
      unit = 1;
      pos += 2;
    } else if (pos < text.size()) {
      switch (text[pos]) {
        case 's':
          unit = 1000;
          break;
        case 'm':
          unit = 60'000;
          break;
        case 'h':
          unit = 3'600'000;
          break;
        case 'd':
          unit = 86'400'000;
          break;
        case 'w':
          unit = 604'800'000;
          break;
        default:
          return std::nullopt;
      }
      ++pos;
    } else {
      return std::nullopt;
    }
    // Durations beyond 100 years are rejected, which also keeps the sum far from overflow.
    constexpr int64_t kMaxDurationMillis = 100LL * 366 * 86'400'000;
    if (number * unit > kMaxDurationMillis - total) {
      return std::nullopt;
    }
    total += number * unit;
  }
  return total;
}

}  // namespace

std::optional<int64_t> parseDurationMillis(std::string_view text) {
  std::optional<int64_t> total = sumDurationMillis(text);
  if (!total || *total <= 0) {
    return std::nullopt;
  }
  return total;
}

std::optional<int64_t> parseDurationMillisOrZero(std::string_view text) {
  if (text == "0") {
    return 0;
  }
  return sumDurationMillis(text);
}

}  // namespace keystore
