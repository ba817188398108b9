#include "proxy/header_rules.h"

#include <gtest/gtest.h>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <vector>

#include "common/encoding.h"
#include "proxy/admission.h"
#include "proxy/message_head.h"

namespace keystore::proxy {
namespace {

namespace http = boost::beast::http;

const catalog::ProviderSpec& provider(std::string_view id) {
  static const catalog::Catalog catalog = *catalog::Catalog::builtIn();
  return *catalog.find(id);
}

size_t count(const Fields& fields, std::string_view name) {
  auto range = fields.equal_range(name);
  return static_cast<size_t>(std::distance(range.first, range.second));
}

TEST(HeaderRulesTest, TwilioAccountSidRewrittenInPath) {
  Secret credential(
      std::string(R"({"account_sid":"AC0123456789abcdef","auth_token":"tw_test_token_0001"})"));
  Route route{"twilio", "/2010-04-01/Accounts/ACplaceholder/Messages.json", ""};
  auto target = buildUpstreamTarget(provider("twilio"), route, credential, "ks_agent");
  ASSERT_TRUE(target.has_value()) << target.error().message;
  EXPECT_EQ(*target, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
  // The account list itself has no SID segment to rewrite.
  Route list{"twilio", "/2010-04-01/Accounts.json", ""};
  EXPECT_EQ(*buildUpstreamTarget(provider("twilio"), list, credential, "ks_agent"),
            "/2010-04-01/Accounts.json");
  Route trailing{"twilio", "/2010-04-01/Accounts/", ""};
  EXPECT_EQ(*buildUpstreamTarget(provider("twilio"), trailing, credential, "ks_agent"),
            "/2010-04-01/Accounts/");
}

TEST(HeaderRulesTest, PathRewriteWithoutFieldFailsClosed) {
  Secret plain(std::string("just-a-key"));
  Route route{"twilio", "/2010-04-01/Accounts/ACx/Messages.json", ""};
  auto target = buildUpstreamTarget(provider("twilio"), route, plain, "ks_agent");
  ASSERT_FALSE(target.has_value());
  EXPECT_EQ(target.error().code, ErrorCode::kProviderNotConfigured);
  EXPECT_EQ(target.error().message.find("just-a-key"), std::string::npos);
}

TEST(HeaderRulesTest, ClientCredentialsReplacedByOneInjectedKey) {
  Fields client;
  client.insert(http::field::authorization, "Bearer ks_agent");
  client.insert("x-api-key", "ks_agent");
  client.insert("api-key", "sk-other-0002");
  client.insert(http::field::cookie, "s=1");
  client.insert("anthropic-version", "2023-06-01");
  client.insert(http::field::host, "proxy.example.test");
  Fields upstream;
  ASSERT_TRUE(buildUpstreamHeaders(client, upstream, provider("anthropic"),
                                   Secret(std::string("sk-ant-test-0001")), "req_1", "ks_agent"));
  EXPECT_EQ(count(upstream, "x-api-key"), 1u);
  EXPECT_EQ(upstream["x-api-key"], "sk-ant-test-0001");
  EXPECT_EQ(count(upstream, "authorization"), 0u);
  EXPECT_EQ(count(upstream, "api-key"), 0u);
  EXPECT_EQ(count(upstream, "cookie"), 0u);
  EXPECT_EQ(upstream["anthropic-version"], "2023-06-01");
  EXPECT_EQ(upstream[http::field::host], "api.anthropic.com");
  EXPECT_EQ(upstream["x-request-id"], "req_1");
}

TEST(HeaderRulesTest, HopByHopAndConnectionNamedHeadersDropped) {
  Fields client;
  client.insert(http::field::connection, "keep-alive, x-secret-hop");
  client.insert("x-secret-hop", "1");
  client.insert(http::field::te, "trailers");
  client.insert(http::field::upgrade, "h2c");
  client.insert("keep-alive", "timeout=5");
  client.insert(http::field::transfer_encoding, "chunked");
  client.insert("x-custom", "kept");
  Fields upstream;
  ASSERT_TRUE(buildUpstreamHeaders(client, upstream, provider("openai"),
                                   Secret(std::string("sk-test-OPENAI-0001")), "req_2", ""));
  EXPECT_EQ(count(upstream, "x-secret-hop"), 0u);
  EXPECT_EQ(count(upstream, "te"), 0u);
  EXPECT_EQ(count(upstream, "upgrade"), 0u);
  EXPECT_EQ(count(upstream, "keep-alive"), 0u);
  EXPECT_EQ(count(upstream, "transfer-encoding"), 0u);
  EXPECT_EQ(count(upstream, "connection"), 0u);
  EXPECT_EQ(upstream["x-custom"], "kept");
  EXPECT_EQ(upstream[http::field::authorization], "Bearer sk-test-OPENAI-0001");
}

TEST(HeaderRulesTest, ResponseCredentialHeadersAndEchoesRemoved) {
  Fields response;
  response.insert(http::field::set_cookie, "s=1");
  response.insert("x-api-key", "pc-test-0001");
  response.insert("x-echo", "key was pc-test-0001");
  response.insert(http::field::content_type, "application/json");
  cleanResponseHeaders(response, {"pc-test-0001"});
  EXPECT_EQ(count(response, "set-cookie"), 0u);
  EXPECT_EQ(count(response, "x-api-key"), 0u);
  EXPECT_EQ(count(response, "x-echo"), 0u);
  EXPECT_EQ(response[http::field::content_type], "application/json");
}

TEST(HeaderRulesTest, ResponseFieldNamedAfterKeyRemoved) {
  Fields response;
  response.insert("x-pc-test-0001", "1");
  response.insert("x-trace", "kept");
  cleanResponseHeaders(response, {"pc-test-0001"});
  EXPECT_EQ(count(response, "x-pc-test-0001"), 0u);
  EXPECT_EQ(response["x-trace"], "kept");
}

// Builds the upstream headers for an OpenAI request carrying agent token "ks_agent".
void buildForOpenAi(const Fields& client, Fields& upstream, std::string_view request_id) {
  ASSERT_TRUE(buildUpstreamHeaders(client, upstream, provider("openai"),
                                   Secret(std::string("sk-test-OPENAI-0001")), request_id,
                                   "ks_agent"));
}

TEST(HeaderRulesTest, AgentTokenInOtherHeadersDropped) {
  Fields client;
  client.insert("x-token", "ks_agent");
  client.insert("x-note", "prefix ks_agent suffix");
  client.insert("x-other", "kept");
  Fields upstream;
  ASSERT_NO_FATAL_FAILURE(buildForOpenAi(client, upstream, "req_3"));
  EXPECT_EQ(count(upstream, "x-token"), 0u);
  EXPECT_EQ(count(upstream, "x-note"), 0u);
  EXPECT_EQ(upstream["x-other"], "kept");
}

TEST(HeaderRulesTest, MixedCaseNamesWithoutFieldCodeDropped) {
  Fields client;
  client.insert("X-Request-Id", "req_client");
  client.insert("X-Goog-Api-Key", "sk-other-0003");
  client.insert("API-KEY", "sk-other-0004");
  client.insert("X-Custom", "kept");
  Fields upstream;
  ASSERT_NO_FATAL_FAILURE(buildForOpenAi(client, upstream, "req_4"));
  EXPECT_EQ(count(upstream, "x-request-id"), 1u);
  EXPECT_EQ(upstream["x-request-id"], "req_4");
  EXPECT_EQ(count(upstream, "x-goog-api-key"), 0u);
  EXPECT_EQ(count(upstream, "api-key"), 0u);
  EXPECT_EQ(upstream["x-custom"], "kept");
  EXPECT_EQ(count(upstream, "authorization"), 1u);
}

TEST(HeaderRulesTest, CredentialHeaderReplacesSameNamedField) {
  // A catalog entry may name a header that the proxy also sets. The credential takes its place.
  catalog::ProviderSpec spec = provider("anthropic");
  spec.auth.header = "Accept-Encoding";
  spec.auth.prefix = "";
  Fields client;
  Fields upstream;
  ASSERT_TRUE(buildUpstreamHeaders(client, upstream, spec, Secret(std::string("sk-ant-test-0005")),
                                   "req_5", "ks_agent"));
  EXPECT_EQ(count(upstream, "accept-encoding"), 1u);
  EXPECT_EQ(upstream[http::field::accept_encoding], "sk-ant-test-0005");
}

// The head that Beast's own message gives for the same request: the fields from
// buildUpstreamHeaders, framed by prepare_payload and keep_alive, written by appendRequestHead.
std::string headThroughBeastMessage(const UpstreamRequestLine& line, const Fields& client,
                                    const catalog::ProviderSpec& spec, const Secret& credential,
                                    std::string_view body) {
  http::request<http::string_body, Fields> request;
  if (line.method == http::verb::unknown) {
    request.method_string(line.method_text);
  } else {
    request.method(line.method);
  }
  request.target(line.target);
  request.version(11);
  EXPECT_TRUE(buildUpstreamHeaders(client, request.base(), spec, credential, "req_9", "ks_agent"));
  request.body() = std::string(body);
  request.prepare_payload();
  request.keep_alive(true);
  std::string head;
  appendRequestHead(head, request.base());
  return head;
}

TEST(HeaderRulesTest, TextHeadMatchesBeastMessageHead) {
  Fields client;
  client.insert(http::field::authorization, "Bearer ks_agent");
  client.insert(http::field::content_type, "application/json");
  client.insert(http::field::content_length, "17");
  client.insert(http::field::connection, "keep-alive, X-Hop");
  client.insert("X-Hop", "1");
  client.insert("OpenAI-Beta", "assistants=v2");
  client.insert(http::field::user_agent, "sdk/1.0");
  client.insert("x-request-id", "client-chosen");

  const Secret key(std::string("sk-test-0009"));
  const Secret twilio_key(
      std::string(R"({"account_sid":"AC0123456789abcdef","auth_token":"tw_test_token_0009"})"));
  struct Case {
    http::verb method;
    std::string_view method_text;
    std::string_view body;
  };
  const Case cases[] = {
      {http::verb::post, "POST", R"({"model":"m"})"},
      {http::verb::post, "POST", ""},
      {http::verb::get, "GET", ""},
      {http::verb::delete_, "DELETE", "{}"},
      {http::verb::put, "PUT", ""},
      {http::verb::options, "OPTIONS", ""},
      {http::verb::head, "HEAD", ""},
      {http::verb::unknown, "PURGE", ""},
  };

  for (std::string_view id : {"openai", "anthropic", "twilio", "pinecone"}) {
    const Secret& credential = id == "twilio" ? twilio_key : key;
    for (const Case& test : cases) {
      UpstreamRequestLine line{.method = test.method,
                               .method_text = test.method_text,
                               .target = "/v1/things?limit=2",
                               .body_size = test.body.size()};
      std::string head = "kept|";
      ASSERT_TRUE(appendUpstreamRequestHead(head, line, client, provider(id), credential, "req_9",
                                            "ks_agent"));
      EXPECT_EQ(head, "kept|" + headThroughBeastMessage(line, client, provider(id), credential,
                                                        test.body))
          << id << " " << test.method_text << " with " << test.body.size() << " body bytes";
    }
  }
}

TEST(HeaderRulesTest, TextHeadLetsCredentialReplaceProxyHeader) {
  catalog::ProviderSpec spec = provider("anthropic");
  spec.auth.header = "Host";
  Fields client;
  UpstreamRequestLine line{
      .method = http::verb::get, .method_text = "GET", .target = "/v1/models", .body_size = 0};
  std::string head;
  ASSERT_TRUE(appendUpstreamRequestHead(head, line, client, spec,
                                        Secret(std::string("sk-ant-test-0006")), "req_6", "ks"));
  EXPECT_EQ(head,
            "GET /v1/models HTTP/1.1\r\nAccept-Encoding: identity\r\nx-request-id: "
            "req_6\r\nHost: sk-ant-test-0006\r\n\r\n");
}

TEST(HeaderRulesTest, TextHeadTraceWithBodyRejected) {
  Fields client;
  UpstreamRequestLine line{
      .method = http::verb::trace, .method_text = "TRACE", .target = "/", .body_size = 3};
  std::string head = "before";
  auto written = appendUpstreamRequestHead(head, line, client, provider("openai"),
                                           Secret(std::string("sk-test-0007")), "req_7", "ks");
  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(head, "before");
}

TEST(HeaderRulesTest, TextHeadFailureLeavesOutputAlone) {
  // A Basic-auth credential without its JSON fields fails after the client's fields went out.
  Fields client;
  client.insert(http::field::user_agent, "sdk/1.0");
  UpstreamRequestLine line{
      .method = http::verb::get, .method_text = "GET", .target = "/", .body_size = 0};
  std::string head = "before";
  auto written = appendUpstreamRequestHead(head, line, client, provider("twilio"),
                                           Secret(std::string("not-json")), "req_8", "ks");
  ASSERT_FALSE(written.has_value());
  EXPECT_EQ(written.error().code, ErrorCode::kProviderNotConfigured);
  EXPECT_EQ(head, "before");
}

TEST(HeaderRulesTest, AgentTokenInQueryDropped) {
  Route route{"openai", "/v1/models", "api_key=ks_agent&limit=2"};
  EXPECT_EQ(buildUpstreamTarget(provider("openai"), route, Secret(std::string("k")), "ks_agent"),
            "/v1/models?limit=2");
}

TEST(HeaderRulesTest, NeedlesAreKeyAndBasicPair) {
  auto plain = credentialNeedles(provider("openai"), Secret(std::string("sk-test-OPENAI-0001")));
  EXPECT_EQ(plain, std::vector<std::string>{"sk-test-OPENAI-0001"});
  auto basic = credentialNeedles(
      provider("twilio"),
      Secret(std::string(R"({"account_sid":"AC1","auth_token":"tw_test_token_0001"})")));
  EXPECT_EQ(basic, (std::vector<std::string>{"tw_test_token_0001",
                                             base64Encode("AC1:tw_test_token_0001")}));
}

TEST(HeaderRulesTest, NeedlesFromManyShortMembers) {
  // Hundreds of one-letter members take the most document storage per byte of text, so this
  // fails if the credential's parse buffer is sized too small.
  std::string json = "{";
  for (int i = 0; i < 500; ++i) {
    json += "\"" + std::to_string(i) + "\":\"v\",";
  }
  json += R"("auth_token":"tw_test_token_0002"})";
  auto needles = credentialNeedles(provider("openai"), Secret(std::string(json)));
  EXPECT_EQ(needles, std::vector<std::string>{"tw_test_token_0002"});
}

TEST(HeaderRulesTest, ShortKeyHasNoNeedles) {
  EXPECT_TRUE(credentialNeedles(provider("openai"), Secret(std::string("short"))).empty());
}

TEST(HeaderRulesTest, EncodedPasswordEchoInHeaderRemoved) {
  Fields response;
  response.insert("x-debug-auth", "Basic QUMxOnR3X3Rlc3RfdG9rZW5fMDAwMQ==");
  cleanResponseHeaders(response, {"tw_test_token_0001", "QUMxOnR3X3Rlc3RfdG9rZW5fMDAwMQ=="});
  EXPECT_EQ(count(response, "x-debug-auth"), 0u);
}

TEST(HeaderRulesTest, RedactorReplacesKeySplitAcrossChunks) {
  const std::vector<std::string> needles{"sk-test-OPENAI-0001"};
  StreamRedactor redactor(needles);
  std::string out(redactor.feed("prefix sk-test-OP"));
  out += redactor.feed("ENAI-0001 suffix");
  out += redactor.finish();
  EXPECT_EQ(out, "prefix ******************* suffix");
}

TEST(HeaderRulesTest, RedactorHoldsBackEveryPossibleKeyStart) {
  // Each tail below could begin the key: the key's first byte appears several times in the
  // chunk, and only the last occurrence starts a prefix of the key.
  struct Case {
    std::string_view first;
    std::string_view held_back;
  };
  const Case cases[] = {
      {"s", "s"},
      {"sss", "s"},
      {"ask sk", "sk"},
      {"x sk-test-OPENAI-000", "sk-test-OPENAI-000"},
      {"sk-sk-test-", "sk-test-"},
  };
  for (const Case& c : cases) {
    const std::vector<std::string> needles{"sk-test-OPENAI-0001"};
    StreamRedactor redactor(needles);
    std::string_view sent = redactor.feed(c.first);
    EXPECT_EQ(sent, c.first.substr(0, c.first.size() - c.held_back.size())) << c.first;
    EXPECT_EQ(redactor.finish(), c.held_back) << c.first;
  }
}

TEST(HeaderRulesTest, RedactorIgnoresEmptyNeedle) {
  const std::vector<std::string> needles{"", "sk-test-OPENAI-0001"};
  StreamRedactor redactor(needles);
  std::string out(redactor.feed("a sk-test-OPENAI-0001 b"));
  out += redactor.finish();
  EXPECT_EQ(out, "a ******************* b");
}

TEST(HeaderRulesTest, RedactorInactiveWithoutNeedles) {
  const std::vector<std::string> none;
  EXPECT_FALSE(StreamRedactor(none).active());
  const std::vector<std::string> empty{""};
  EXPECT_FALSE(StreamRedactor(empty).active());
  const std::vector<std::string> key{"sk-test-OPENAI-0001"};
  EXPECT_TRUE(StreamRedactor(key).active());
}

TEST(HeaderRulesTest, RedactorHoldsNothingBackForEventEnds) {
  const std::vector<std::string> needles{"sk-test-OPENAI-0001"};
  StreamRedactor redactor(needles);
  EXPECT_EQ(redactor.feed("data: {}\n\n"), "data: {}\n\n");
}

TEST(HeaderRulesTest, TargetKeepsQueryAndBasePath) {
  Route route{"openai", "/v1/models", "limit=2"};
  EXPECT_EQ(buildUpstreamTarget(provider("openai"), route, Secret(std::string("k")), "ks_x"),
            "/v1/models?limit=2");
}

TEST(HeaderRulesTest, TransferCodingsOtherThanChunkedFound) {
  struct Case {
    std::vector<std::string_view> values;
    bool other;
  };
  const Case cases[] = {
      {{}, false},
      {{"chunked"}, false},
      {{"Chunked"}, false},
      {{" chunked , "}, false},
      {{"gzip, chunked"}, true},
      {{"gzip", "chunked"}, true},
      {{"chunked;ext=1"}, false},
      {{"x-custom;q=1, chunked"}, true},
      {{"identity"}, true},
  };
  for (const Case& c : cases) {
    Fields fields;
    for (std::string_view value : c.values) {
      fields.insert(http::field::transfer_encoding, value);
    }
    EXPECT_EQ(hasTransferCodingOtherThanChunked(fields), c.other)
        << (c.values.empty() ? std::string_view("(none)") : c.values.front());
  }
}

TEST(AdmissionTest, TwoDifferentAuthorizationHeadersAreAmbiguous) {
  Fields headers;
  headers.insert(http::field::authorization, "Bearer ks_a");
  headers.insert(http::field::authorization, "Bearer sk-attacker-9999");
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("openai"), decoded);
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kAmbiguousCredentials);
}

TEST(AdmissionTest, CommaJoinedAuthorizationIsAmbiguous) {
  Fields headers;
  headers.insert(http::field::authorization, "Bearer ks_a, Bearer sk-attacker-9999");
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("openai"), decoded);
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kAmbiguousCredentials);
}

TEST(AdmissionTest, SameTokenInTwoPlacesAccepted) {
  Fields headers;
  headers.insert(http::field::authorization, "Bearer ks_a");
  headers.insert("x-api-key", "ks_a");
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("anthropic"), decoded);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(*token, "ks_a");
  // A token sent as it is stays in the request; nothing is copied.
  EXPECT_TRUE(decoded.empty());
}

TEST(AdmissionTest, BasicPasswordTokenCopied) {
  Fields headers;
  headers.insert(http::field::authorization, "Basic " + base64Encode("AC1:ks_basic"));
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("twilio"), decoded);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(*token, "ks_basic");
  // The decoded pair is freed inside findAgentToken, so the token must point into `decoded`.
  EXPECT_EQ(decoded.reveal(), "ks_basic");
  EXPECT_EQ(token->data(), decoded.reveal().data());
}

TEST(AdmissionTest, BasicAndBearerDifferentAreAmbiguous) {
  Fields headers;
  headers.insert(http::field::authorization, "Basic " + base64Encode("AC1:ks_basic"));
  headers.insert(http::field::authorization, "Bearer ks_other");
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("twilio"), decoded);
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kAmbiguousCredentials);
}

TEST(AdmissionTest, QueryTokenViewsTheQuery) {
  Fields headers;
  const std::string query = "limit=2&api_key=ks_query";
  Secret decoded;
  catalog::ProviderSpec spec = provider("openai");
  spec.token_locations = {catalog::TokenLocation{catalog::TokenLocation::Kind::kQuery, "api_key"}};
  auto token = findAgentToken(headers, query, spec, decoded);
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(*token, "ks_query");
  EXPECT_EQ(token->data(), query.data() + query.find("ks_query"));
}

TEST(AdmissionTest, MissingTokenReported) {
  Fields headers;
  Secret decoded;
  auto token = findAgentToken(headers, "", provider("openai"), decoded);
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kMissingToken);
}

}  // namespace
}  // namespace keystore::proxy
