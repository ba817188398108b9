// The one pass over a request body gives exactly what the separate readers give, on valid,
// odd and malformed bodies.
#include "proxy/request_body.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keystore::proxy {
namespace {

std::string nested(int depth, const std::string& inner) {
  std::string body = R"({"max_tokens":7,"model":"m","stream":true,"x":)";
  for (int i = 1; i < depth; ++i) {
    body += "[";
  }
  body += inner;
  for (int i = 1; i < depth; ++i) {
    body += "]";
  }
  return body + "}";
}

std::vector<std::string> bodies() {
  return {
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":64})",
      R"({"model":"gpt-4o-mini","messages":[],"stream":true})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":null})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{}})",
      R"({"model":"gpt-4o-mini","stream":true,"stream_options":{"x":1}})",
      R"({"stream_options":{"x":{"include_usage":1}},"stream":true})",
      R"({"stream":true,"stream_options":{"include_usage":false}})",
      R"({"stream":true,"stream_options":{"x":[false], "include_usage" : false }})",
      R"({"stream":true,"stream_options":{"include_usage":false,"include_usage":false}})",
      R"({"stream":true,"stream_options":{"include_usage":true}})",
      R"({"stream":true,"stream_options":{"include_usage":0}})",
      R"({"stream":true,"stream_options":{"include_usage":{"a":1}}})",
      R"({"stream":true,"stream_options":{},"stream_options":{}})",
      R"({"stream":true,"stream_options":[]})",
      R"({"stream":true,"stream_options":"yes"})",
      R"({"stream":true,"stream":[]})",
      R"({"stream":"true"})",
      R"({"str\u0065am":true,"mod\u0065l":"gpt-\u0034o"})",
      R"({"model":"","model":"second"})",
      R"({"model":5,"model":"second","model":"third"})",
      R"({"model":")" + std::string(256, 'm') + R"("})",
      R"({"model":")" + std::string(257, 'm') + R"(","stream":true})",
      R"({"max_tokens":-5,"max_completion_tokens":12.2,"n":3})",
      R"({"max_output_tokens":18446744073709551615,"n":0.5})",
      R"({"max_tokens":1e300,"n":2,"n":1})",
      R"({"nested":{"max_tokens":9,"n":4,"model":"inner","stream":true}})",
      R"([{"to":"a"},{"to":"b"},{"to":"c"}])",
      R"([])",
      R"("just a string")",
      R"(42)",
      "  {\"model\":\"m\",\"stream\":true}  \n",
      R"({"model":"m","stream":true} trailing)",
      R"({"model":"m","stream":true)",
      R"({"model":"m",)",
      "{\"model\":\"m\",\"stream\":true,\"note\":\"\xff\xfe\"}",
      "{\"note\":\"\xc3\",\"model\":\"after\"}",
      R"({"model":"m", /* comment */ "stream":true})",
      R"({"model":"m","stream":true,})",
      nested(32, R"({"n":2})"),
      nested(33, R"({"n":2})"),
      nested(64, "1"),
      nested(65, "1"),
      "",
  };
}

TEST(RequestBodySummaryTest, MatchesSeparateReaders) {
  for (const std::string& body : bodies()) {
    SCOPED_TRACE("body: " + body.substr(0, 120));
    RequestBodySummary summary = summarizeRequestBody(body);

    metering::RequestBodyFacts facts = metering::readRequestBody(body);
    EXPECT_EQ(summary.facts.model, facts.model);
    EXPECT_EQ(summary.facts.array_size, facts.array_size);

    limits::OutputRequest output = limits::readOutputRequest(body);
    EXPECT_EQ(summary.output.max_output_tokens, output.max_output_tokens);
    EXPECT_EQ(summary.output.choices, output.choices);

    EXPECT_EQ(addStreamUsageOption(body, summary), metering::addStreamUsageOption(body));
  }
}

TEST(RequestBodySummaryTest, ValidBodyTakesOnePass) {
  RequestBodySummary summary = summarizeRequestBody(
      R"({"model":"gpt-4o-mini","stream":true,"max_completion_tokens":100,"n":2})");
  ASSERT_TRUE(summary.stream_options.has_value());
  EXPECT_TRUE(summary.stream_options->stream);
  EXPECT_TRUE(summary.stream_options->root_is_object);
  EXPECT_EQ(summary.facts.model, "gpt-4o-mini");
  EXPECT_EQ(summary.output.max_output_tokens, 100);
  EXPECT_EQ(summary.output.choices, 2);
}

TEST(RequestBodySummaryTest, InvalidUtf8FallsBack) {
  std::string body = "{\"model\":\"m\",\"stream\":true,\"note\":\"\xff\"}";
  RequestBodySummary summary = summarizeRequestBody(body);
  EXPECT_FALSE(summary.stream_options.has_value());
  EXPECT_EQ(summary.facts.model, "m");
  // The scanner behind the rewrite accepts invalid UTF-8, so the fallback still adds the usage
  // option.
  auto rewritten = addStreamUsageOption(body, summary);
  ASSERT_TRUE(rewritten.has_value());
  EXPECT_EQ(*rewritten,
            "{\"model\":\"m\",\"stream\":true,\"note\":\"\xff\",\"stream_options\":"
            "{\"include_usage\":true}}");
}

TEST(RequestBodySummaryTest, DepthPastDefaultLimitDropsOutputBounds) {
  RequestBodySummary summary = summarizeRequestBody(nested(33, "1"));
  ASSERT_TRUE(summary.stream_options.has_value());
  EXPECT_EQ(summary.facts.model, "m");
  EXPECT_FALSE(summary.output.max_output_tokens.has_value());
  EXPECT_EQ(summary.output.choices, 1);
}

}  // namespace
}  // namespace keystore::proxy
