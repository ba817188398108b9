// JsonScanner keeps keys right on every nesting level, including the levels past the ones
// allocated with the scanner.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metering/usage_json.h"

namespace keystore::metering {
namespace {

// Records each scalar as its path ("k0.k1.[2].key") and value text.
class PathRecorder final : public JsonVisitor {
 public:
  void onScalar(const JsonPath& path, const JsonScalar& value) override {
    std::string text;
    for (const JsonPathFrame& frame : path.frames()) {
      if (!text.empty()) {
        text += '.';
      }
      text += frame.is_array ? "[" + std::to_string(frame.index) + "]" : std::string(frame.key);
    }
    text += '=';
    text += value.isString() ? std::string(value.text) : std::to_string(value.integer);
    scalars.push_back(text);
  }

  std::vector<std::string> scalars;
};

TEST(JsonScannerDepthTest, KeysKeptPastInlineDepth) {
  // Twenty nested objects, with a member before and after each inner object.
  constexpr int kLevels = 20;
  std::string document;
  std::string expected_prefix;
  for (int level = 0; level < kLevels; ++level) {
    document += "{\"before" + std::to_string(level) + "\":" + std::to_string(level) +
                ",\"level_key_number_" + std::to_string(level) + "\":";
  }
  document += "\"leaf\"";
  for (int level = kLevels - 1; level >= 0; --level) {
    document += ",\"after" + std::to_string(level) + "\":" + std::to_string(level) + "}";
  }

  PathRecorder recorder;
  JsonScanner scanner(recorder);
  // Split into small pieces so keys arrive in parts.
  for (std::size_t at = 0; at < document.size(); at += 7) {
    scanner.write(std::string_view(document).substr(at, 7));
  }
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);

  std::string leaf_path;
  for (int level = 0; level < kLevels; ++level) {
    leaf_path += (level == 0 ? "" : ".") + std::string("level_key_number_") + std::to_string(level);
  }
  ASSERT_EQ(recorder.scalars.size(), static_cast<std::size_t>(2 * kLevels + 1));
  EXPECT_EQ(recorder.scalars[kLevels], leaf_path + "=leaf");
  // The member after the innermost object sits one level above the leaf.
  std::string parent = leaf_path.substr(0, leaf_path.rfind('.'));
  EXPECT_EQ(recorder.scalars[kLevels + 1], parent + ".after19=19");
  EXPECT_EQ(recorder.scalars.back(), "after0=0");
}

TEST(JsonScannerDepthTest, ResetReusesFrames) {
  PathRecorder recorder;
  JsonScanner scanner(recorder);
  scanner.write(R"({"a":{"b":[1,{"c":2}]}})");
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  scanner.reset();
  scanner.write(R"({"x":[{"y":3}]})");
  ASSERT_EQ(scanner.finish(), JsonScanner::State::kComplete);
  ASSERT_EQ(recorder.scalars.size(), 3u);
  EXPECT_EQ(recorder.scalars[0], "a.b.[0]=1");
  EXPECT_EQ(recorder.scalars[1], "a.b.[1].c=2");
  EXPECT_EQ(recorder.scalars[2], "x.[0].y=3");
}

}  // namespace
}  // namespace keystore::metering
