#include "admin/router.h"

#include <gtest/gtest.h>

#include <array>

namespace keystore::admin {
namespace {

struct TestRoute {
  std::string_view method;
  std::string_view path;
};

constexpr std::array<TestRoute, 4> kRoutes = {{
    {"GET", "/api/v1/projects"},
    {"POST", "/api/v1/projects"},
    {"GET", "/api/v1/projects/{}/agents"},
    {"PATCH", "/api/v1/agents/{}"},
}};

std::vector<std::string> segments(std::initializer_list<const char*> parts) {
  return std::vector<std::string>(parts.begin(), parts.end());
}

TEST(RouterTest, ExactPathMatchesMethod) {
  RouteLookup lookup =
      findRoute(std::span<const TestRoute>(kRoutes), "POST", segments({"api", "v1", "projects"}));
  EXPECT_EQ(lookup.outcome, RouteLookup::Outcome::kFound);
  EXPECT_EQ(lookup.index, 1u);
  EXPECT_TRUE(lookup.params.empty());
}

TEST(RouterTest, PlaceholderCapturesSegment) {
  RouteLookup lookup = findRoute(std::span<const TestRoute>(kRoutes), "GET",
                                 segments({"api", "v1", "projects", "demo", "agents"}));
  ASSERT_EQ(lookup.outcome, RouteLookup::Outcome::kFound);
  EXPECT_EQ(lookup.index, 2u);
  ASSERT_EQ(lookup.params.size(), 1u);
  EXPECT_EQ(lookup.params[0], "demo");
}

TEST(RouterTest, OtherMethodListsAllowed) {
  RouteLookup lookup =
      findRoute(std::span<const TestRoute>(kRoutes), "DELETE", segments({"api", "v1", "projects"}));
  EXPECT_EQ(lookup.outcome, RouteLookup::Outcome::kMethodNotAllowed);
  EXPECT_EQ(lookup.allow, "GET, POST");
}

TEST(RouterTest, UnknownPathNotFound) {
  RouteLookup lookup = findRoute(std::span<const TestRoute>(kRoutes), "GET",
                                 segments({"api", "v1", "projects", "demo", "nothing"}));
  EXPECT_EQ(lookup.outcome, RouteLookup::Outcome::kNotFound);
  EXPECT_TRUE(lookup.allow.empty());
}

TEST(RouterTest, EmptyPlaceholderSegmentNotMatched) {
  RouteLookup lookup = findRoute(std::span<const TestRoute>(kRoutes), "PATCH",
                                 segments({"api", "v1", "agents", ""}));
  EXPECT_EQ(lookup.outcome, RouteLookup::Outcome::kNotFound);
}

TEST(RouterTest, TemplateSegmentsSplitOnSlash) {
  std::vector<std::string_view> parts = templateSegments("/api/v1/agents/{}");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], "api");
  EXPECT_EQ(parts[3], "{}");
}

}  // namespace
}  // namespace keystore::admin
