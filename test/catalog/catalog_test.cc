#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include <fstream>

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

// A one-entry catalog document with `extra` members appended to the entry.
std::string entryWith(const std::string& auth, const std::string& extra) {
  return R"({"providers":[{"id":"x","display_name":"X","category":"c",
    "base_url":"https://x.test","availability":"both","auth":)" +
         auth + R"(,"token_locations":[{"kind":"bearer"}],"metering":"requests")" + extra + "}]}";
}

TEST(CatalogTest, BuiltInCatalogHasEveryTier) {
  auto catalog = Catalog::builtIn();
  ASSERT_TRUE(catalog.has_value()) << catalog.error().message;
  const std::pair<const char*, Availability> expected[] = {
      {"openai", Availability::kBoth},      {"anthropic", Availability::kBoth},
      {"resend", Availability::kBoth},      {"groq", Availability::kConcierge},
      {"twilio", Availability::kConcierge}, {"pinecone", Availability::kConcierge},
      {"neon", Availability::kMarketplace}, {"stripe", Availability::kByok},
      {"tavily", Availability::kByok},
  };
  for (const auto& [id, availability] : expected) {
    const ProviderSpec* spec = catalog->find(id);
    ASSERT_NE(spec, nullptr) << id;
    EXPECT_EQ(spec->availability, availability) << id;
  }
  const ProviderSpec* twilio = catalog->find("twilio");
  EXPECT_EQ(twilio->auth.scheme, AuthSpec::Scheme::kBasic);
  EXPECT_EQ(twilio->credential_fields, (std::vector<std::string>{"account_sid", "auth_token"}));
  ASSERT_EQ(twilio->path_rewrites.size(), 1u);
  EXPECT_EQ(twilio->path_rewrites[0].after, "Accounts");
  EXPECT_EQ(twilio->path_rewrites[0].field, "account_sid");
  EXPECT_EQ(catalog->find("pinecone")->auth.header, "api-key");
}

TEST(CatalogTest, CredentialFieldsMustMatchBasicAuth) {
  auto valid = Catalog::parse(entryWith(
      R"({"scheme":"basic","username_field":"sid","password_field":"secret"})",
      R"(,"credential_fields":["sid","secret"],"path_rewrites":[{"after":"Accounts","field":"sid"}])"));
  ASSERT_TRUE(valid.has_value()) << valid.error().message;
  EXPECT_EQ(valid->find("x")->credential_fields.size(), 2u);

  auto unknown_field = Catalog::parse(
      entryWith(R"({"scheme":"basic","username_field":"sid","password_field":"token"})",
                R"(,"credential_fields":["sid","secret"])"));
  ASSERT_FALSE(unknown_field.has_value());
  EXPECT_NE(unknown_field.error().message.find("credential fields"), std::string::npos);

  auto bearer_with_fields =
      Catalog::parse(entryWith(R"({"scheme":"bearer"})", R"(,"credential_fields":["a","b"])"));
  EXPECT_FALSE(bearer_with_fields.has_value());
  auto repeated =
      Catalog::parse(entryWith(R"({"scheme":"basic","username_field":"a","password_field":"a"})",
                               R"(,"credential_fields":["a","a"])"));
  EXPECT_FALSE(repeated.has_value());
  auto rewrite_unknown_field = Catalog::parse(entryWith(
      R"({"scheme":"basic","username_field":"a","password_field":"b"})",
      R"(,"credential_fields":["a","b"],"path_rewrites":[{"after":"Accounts","field":"c"}])"));
  EXPECT_FALSE(rewrite_unknown_field.has_value());
}

TEST(CatalogTest, UnknownMemberAndMeteringKindRejected) {
  auto misspelt = Catalog::parse(entryWith(R"({"scheme":"bearer"})", R"(,"availabilty":"both")"));
  ASSERT_FALSE(misspelt.has_value());
  EXPECT_NE(misspelt.error().message.find("unknown member 'availabilty'"), std::string::npos);
  std::string text = entryWith(R"({"scheme":"bearer"})", "");
  text.replace(text.find("\"requests\""), 10, "\"tokens\"");
  auto metering = Catalog::parse(text);
  ASSERT_FALSE(metering.has_value());
  EXPECT_NE(metering.error().message.find("metering kind 'tokens'"), std::string::npos);
}

TEST(CatalogTest, LoadReadsOperatorFile) {
  std::string path = ::testing::TempDir() + "catalog-test.json";
  {
    std::ofstream file(path);
    file << entryWith(R"({"scheme":"bearer"})", "");
  }
  auto loaded = Catalog::load(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->providers().size(), 1u);
  EXPECT_EQ(loaded->find("openai"), nullptr);
  auto missing = Catalog::load(path + ".absent");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("cannot read the catalog file"), std::string::npos);
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
  for (const char* url :
       {"http://", "ftp://x.test", "https://user:pw@x.test", "https://x.test/?a=1", "not a url"}) {
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
