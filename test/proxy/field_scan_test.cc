#include "proxy/field_scan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

// Returns fields as a parser stores them: names in mixed case, repeats apart from each other.
Fields sampleFields() {
  Fields fields;
  fields.insert("Content-Type", "application/json");
  fields.insert("authorization", "Bearer first");
  fields.insert("X-Request-Id", "req_upstream");
  fields.insert("AUTHORIZATION", "Bearer second");
  fields.insert("x-keystore-overhead-ms", "1.000");
  fields.insert("Content-Length", "2");
  return fields;
}

TEST(FieldScanTest, FirstValueFindsFieldByCode) {
  Fields fields = sampleFields();
  EXPECT_EQ(firstValue(fields, http::field::content_type), "application/json");
  EXPECT_EQ(firstValue(fields, http::field::authorization), "Bearer first");
  EXPECT_EQ(firstValue(fields, http::field::expect), "");
}

TEST(FieldScanTest, ScanMatchesBeastTreeOrder) {
  Fields fields = sampleFields();
  std::vector<std::string> scanned;
  forEachValue(fields, http::field::authorization,
               [&scanned](std::string_view value) { scanned.emplace_back(value); });
  std::vector<std::string> looked_up;
  auto range = fields.equal_range(http::field::authorization);
  for (auto it = range.first; it != range.second; ++it) {
    looked_up.emplace_back(it->value());
  }
  EXPECT_EQ(scanned, (std::vector<std::string>{"Bearer first", "Bearer second"}));
  EXPECT_EQ(scanned, looked_up);
  EXPECT_EQ(firstValue(fields, http::field::authorization), fields[http::field::authorization]);
}

TEST(FieldScanTest, CountFieldsCountsRepeats) {
  Fields fields = sampleFields();
  EXPECT_EQ(countFields(fields, http::field::authorization), 2u);
  EXPECT_EQ(countFields(fields, http::field::content_length), 1u);
  EXPECT_EQ(countFields(fields, http::field::cookie), 0u);
}

TEST(FieldScanTest, EraseNamedIgnoresCase) {
  Fields fields = sampleFields();
  eraseNamed(fields, {"x-request-id", "X-Keystore-Overhead-Ms", "authorization"});
  EXPECT_EQ(fields.count("x-request-id"), 0u);
  EXPECT_EQ(fields.count("x-keystore-overhead-ms"), 0u);
  EXPECT_EQ(fields.count(http::field::authorization), 0u);
  EXPECT_EQ(fields[http::field::content_type], "application/json");
  EXPECT_EQ(fields[http::field::content_length], "2");
  EXPECT_EQ(std::distance(fields.begin(), fields.end()), 2);
}

}  // namespace
}  // namespace keystore::proxy
