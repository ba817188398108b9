#include "dashboard/site.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace keystore::dashboard {
namespace {

constexpr std::array<Asset, 3> kAssets = {{
    {"/index.html", "<!doctype html><title>Keystore</title>"},
    {"/assets/index-AbC123.js", "console.log(1);"},
    {"/favicon.svg", "<svg/>"},
}};

constexpr std::string_view kHtml = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

std::string header(const Response& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) {
      return value;
    }
  }
  return "<absent>";
}

TEST(DashboardSite, RootServesIndexWithNoCache) {
  Site site(kAssets);
  auto response = site.respond("GET", "/", kHtml);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "<!doctype html><title>Keystore</title>");
  EXPECT_EQ(header(*response, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(header(*response, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(*response, "Content-Length"), "38");
}

TEST(DashboardSite, HashedAssetIsImmutable) {
  Site site(kAssets);
  auto response = site.respond("GET", "/assets/index-AbC123.js?v=1", "*/*");
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "console.log(1);");
  EXPECT_EQ(header(*response, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(header(*response, "Cache-Control"), "public, max-age=31536000, immutable");
}

TEST(DashboardSite, UnhashedFileIsRevalidated) {
  Site site(kAssets);
  auto response = site.respond("GET", "/favicon.svg", "image/*");
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(header(*response, "Content-Type"), "image/svg+xml");
  EXPECT_EQ(header(*response, "Cache-Control"), "no-cache");
}

TEST(DashboardSite, EveryResponseCarriesSecurityHeaders) {
  Site site(kAssets);
  Site unbuilt({});
  const std::array<std::optional<Response>, 4> responses = {
      site.respond("GET", "/", kHtml),
      site.respond("GET", "/assets/index-AbC123.js", "*/*"),
      site.respond("GET", "/assets/gone-111.js", "*/*"),
      unbuilt.respond("GET", "/", kHtml),
  };
  for (const auto& response : responses) {
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(header(*response, "Content-Security-Policy"), kContentSecurityPolicy);
    EXPECT_EQ(header(*response, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header(*response, "X-Frame-Options"), "DENY");
  }
  EXPECT_NE(kContentSecurityPolicy.find("script-src 'self';"), std::string_view::npos);
  EXPECT_NE(kContentSecurityPolicy.find("frame-ancestors 'none'"), std::string_view::npos);
  EXPECT_EQ(kContentSecurityPolicy.find("unsafe-inline"), std::string_view::npos);
  EXPECT_EQ(kContentSecurityPolicy.find("unsafe-eval"), std::string_view::npos);
}

TEST(DashboardSite, ClientPathFallsBackToIndex) {
  Site site(kAssets);
  auto response = site.respond("GET", "/agents/agt_1?tab=tokens", kHtml);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "<!doctype html><title>Keystore</title>");
  EXPECT_EQ(header(*response, "Cache-Control"), "no-cache");
}

TEST(DashboardSite, FallbackNeedsHtmlAccept) {
  Site site(kAssets);
  EXPECT_FALSE(site.respond("GET", "/agents", "application/json").has_value());
  EXPECT_FALSE(site.respond("GET", "/agents", "").has_value());
}

TEST(DashboardSite, ReservedPathsAreLeftToOtherHandlers) {
  Site site(kAssets);
  for (std::string_view target : {"/api", "/api/v1/projects", "/api/v1/nothing", "/metrics",
                                  "/healthz", "/readyz", "/healthz?verbose=1"}) {
    EXPECT_FALSE(site.respond("GET", target, kHtml).has_value()) << target;
  }
  // Only whole segments are reserved: /apidocs is a client path.
  EXPECT_TRUE(site.respond("GET", "/apidocs", kHtml).has_value());
}

TEST(DashboardSite, OnlyGetAndHeadAreServed) {
  Site site(kAssets);
  EXPECT_FALSE(site.respond("POST", "/", kHtml).has_value());
  EXPECT_FALSE(site.respond("DELETE", "/agents", kHtml).has_value());
}

TEST(DashboardSite, HeadOmitsBodyButKeepsLength) {
  Site site(kAssets);
  auto response = site.respond("HEAD", "/assets/index-AbC123.js", "*/*");
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(header(*response, "Content-Length"), "15");
}

TEST(DashboardSite, MissingHashedAssetIsNotFound) {
  Site site(kAssets);
  auto response = site.respond("GET", "/assets/index-Old999.js", kHtml);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(header(*response, "Content-Type"), "text/plain; charset=utf-8");
}

TEST(DashboardSite, UnbuiltDashboardExplainsHowToBuild) {
  Site site({});
  EXPECT_FALSE(site.built());
  auto response = site.respond("GET", "/", "*/*");
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(header(*response, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(response->body.find("was not built"), std::string_view::npos);
  EXPECT_NE(response->body.find("scripts/build.sh"), std::string_view::npos);
  EXPECT_NE(response->body.find("npm ci"), std::string_view::npos);
}

TEST(DashboardSite, ContentTypesByExtension) {
  EXPECT_EQ(contentTypeFor("/a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(contentTypeFor("/a.woff2"), "font/woff2");
  EXPECT_EQ(contentTypeFor("/a.png"), "image/png");
  EXPECT_EQ(contentTypeFor("/a.json"), "application/json");
  EXPECT_EQ(contentTypeFor("/a.bin"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("/README"), "application/octet-stream");
}

TEST(DashboardSite, BuiltinTableHasIndexWhenBuilt) {
  Site site(builtinAssets());
  for (const Asset& asset : builtinAssets()) {
    EXPECT_TRUE(asset.path.starts_with("/")) << asset.path;
  }
  if (!builtinAssets().empty()) {
    EXPECT_TRUE(site.built());
  }
}

}  // namespace
}  // namespace keystore::dashboard
