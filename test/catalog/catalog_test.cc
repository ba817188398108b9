#include "catalog/catalog.h"

#include <gtest/gtest.h>

namespace keystore::catalog {
namespace {

namespace ip = boost::asio::ip;

TEST(CatalogTest, BuiltInCatalogLoads) {
  auto catalog = Catalog::builtIn();
  ASSERT_TRUE(catalog.has_value()) << catalog.error().message;
  ASSERT_NE(catalog->find("openai"), nullptr);
  ASSERT_NE(catalog->find("anthropic"), nullptr);
  ASSERT_NE(catalog->find("resend"), nullptr);
  EXPECT_EQ(catalog->find("anthropic")->auth.header, "x-api-key");
  EXPECT_EQ(catalog->find("openai")->base.host, "api.openai.com");
  EXPECT_EQ(catalog->find("nope"), nullptr);
}

TEST(CatalogTest, InvalidEntryNamed) {
  auto catalog = Catalog::parse(R"({"providers":[{"id":"x","display_name":"X","category":"c",
    "base_url":"https://x.test","availability":"sometimes","auth":{"scheme":"bearer"},
    "token_locations":[{"kind":"bearer"}],"metering":"requests"}]})");
  ASSERT_FALSE(catalog.has_value());
  EXPECT_NE(catalog.error().message.find("'x'"), std::string::npos);
  EXPECT_NE(catalog.error().message.find("availability"), std::string::npos);
}

TEST(UpstreamUrlTest, PrivateTargetsRefusedByDefault) {
  UpstreamPolicy strict{false};
  for (const char* url : {"http://10.0.0.5", "http://localhost", "http://127.0.0.1:2375",
                          "http://169.254.169.254/", "http://[::1]:80", "http://192.168.1.1",
                          "http://172.16.0.1", "http://0.0.0.0", "http://[::ffff:127.0.0.1]"}) {
    auto parsed = parseUpstreamUrl(url, strict);
    EXPECT_FALSE(parsed.has_value()) << url;
  }
}

TEST(UpstreamUrlTest, PrivateTargetsAllowedWhenOperatorPermits) {
  auto parsed = parseUpstreamUrl("http://127.0.0.1:9999/base/", UpstreamPolicy{true});
  ASSERT_TRUE(parsed.has_value());
  EXPECT_FALSE(parsed->tls);
  EXPECT_EQ(parsed->port, 9999);
  EXPECT_EQ(parsed->base_path, "/base");
  EXPECT_EQ(parsed->host_header, "127.0.0.1:9999");
}

TEST(UpstreamUrlTest, MalformedUrlsRejected) {
  UpstreamPolicy loose{true};
  for (const char* url : {"http://", "ftp://x.test", "https://user:pw@x.test", "https://x.test/?a=1",
                          "not a url"}) {
    EXPECT_FALSE(parseUpstreamUrl(url, loose).has_value()) << url;
  }
}

TEST(UpstreamUrlTest, PrivateRangesClassified) {
  EXPECT_TRUE(isPrivateAddress(ip::make_address("100.64.0.1")));
  EXPECT_TRUE(isPrivateAddress(ip::make_address("fd00::1")));
  EXPECT_TRUE(isPrivateAddress(ip::make_address("fe80::1")));
  EXPECT_TRUE(isPrivateAddress(ip::make_address("64:ff9b::a00:5")));
  EXPECT_TRUE(isPrivateAddress(ip::make_address("2002:a00:5::1")));
  EXPECT_TRUE(isPrivateAddress(ip::make_address("::10.0.0.5")));
  EXPECT_FALSE(isPrivateAddress(ip::make_address("64:ff9b::808:808")));
  EXPECT_FALSE(isPrivateAddress(ip::make_address("2002:808:808::1")));
  EXPECT_FALSE(isPrivateAddress(ip::make_address("8.8.8.8")));
  EXPECT_FALSE(isPrivateAddress(ip::make_address("2001:4860::8888")));
}

}  // namespace
}  // namespace keystore::catalog
