#include "cli/report_format.h"

namespace keystore::cli {

namespace {

// "<whole>.<fraction>" of a non-negative magnitude in units of 1 / `scale`, with the fraction
// padded to `places` digits.
std::string fixedPoint(uint64_t magnitude, uint64_t scale, size_t places) {
  std::string fraction = std::to_string(magnitude % scale);
  fraction.insert(0, places - fraction.size(), '0');
  return std::to_string(magnitude / scale) + "." + fraction;
}

// The magnitude of `value`, negated in unsigned arithmetic so that INT64_MIN has one too.
uint64_t magnitudeOf(int64_t value) {
  return value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
}

}  // namespace

std::string decimalMicros(int64_t micros) {
  return (micros < 0 ? "-" : "") + fixedPoint(magnitudeOf(micros), 1'000'000, 6);
}

std::string dollarsFromMicros(int64_t micros) {
  return (micros < 0 ? "-$" : "$") + fixedPoint(magnitudeOf(micros), 1'000'000, 6);
}

std::string dollarsFromCents(int64_t cents) {
  return (cents < 0 ? "-$" : "$") + fixedPoint(magnitudeOf(cents), 100, 2);
}

std::string csvRecord(const std::vector<std::string>& fields) {
  std::string record;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) {
      record += ',';
    }
    std::string field = fields[i];
    if (!field.empty() && std::string_view("=+-@\t\r").find(field.front()) != std::string::npos) {
      field.insert(0, 1, '\'');
    }
    if (field.find_first_of(",\"\r\n") == std::string::npos) {
      record += field;
      continue;
    }
    record += '"';
    for (char c : field) {
      record += c;
      if (c == '"') {
        record += '"';
      }
    }
    record += '"';
  }
  return record + "\n";
}

std::string printableText(std::string_view text) {
  std::string printable(text);
  for (char& c : printable) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  return printable;
}

}  // namespace keystore::cli
