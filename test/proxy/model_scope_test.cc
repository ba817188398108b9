#include "proxy/model_scope.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

// Requests are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::proxy {
namespace {

const std::vector<std::string> kMiniOnly = {"gpt-4o-mini"};

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kMiniChat = R"({"model":"gpt-4o-mini","messages":[]})";

constexpr std::string_view kInvalidJsonMessage = "the request body is not valid JSON";
constexpr std::string_view kNoModelMessage =
    "this token is limited to certain models and the request names none";
constexpr std::string_view kQueryMessage =
    "the model must be given in the request body, not the query string";

struct Request {
  std::string_view method = "POST";
  std::string_view content_type = kJson;
  std::string_view query;
  std::string_view body = kMiniChat;
};

Result<void> check(const Request& request, const std::vector<std::string>& allowed = kMiniOnly) {
  return checkModelRestriction(allowed, request.method, request.content_type, request.query,
                               request.body);
}

// Asserts that `result` failed with `code`, the HTTP status that goes with it and, when given,
// exactly `message`.
void expectError(const Result<void>& result, ErrorCode code, int status,
                 std::string_view message = {}) {
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, code) << result.error().message;
  EXPECT_EQ(httpStatus(result.error().code), status);
  if (!message.empty()) {
    EXPECT_EQ(result.error().message, message);
  }
}

TEST(ModelScopeTest, AllowedModelAccepted) {
  EXPECT_TRUE(check({}).has_value());
}

TEST(ModelScopeTest, AnyListedModelAccepted) {
  const std::vector<std::string> allowed = {"gpt-4o-mini", "claude-3-5-haiku-20241022"};
  EXPECT_TRUE(check({.body = R"({"model":"claude-3-5-haiku-20241022","max_tokens":16})"}, allowed)
                  .has_value());
  EXPECT_TRUE(check({}, allowed).has_value());
}

TEST(ModelScopeTest, OtherModelDenied) {
  expectError(check({.body = R"({"model":"gpt-4o","messages":[]})"}), ErrorCode::kScopeDenied, 403,
              "agent token may not use model 'gpt-4o'");
}

TEST(ModelScopeTest, ModelComparedExactly) {
  for (std::string_view body :
       {R"({"model":"GPT-4o-mini"})", R"({"model":"gpt-4o-mini "})", R"({"model":" gpt-4o-mini"})",
        R"({"model":"gpt-4o-mini\u0000"})", R"({"model":"gpt-4o-min"})", R"({"model":""})"}) {
    SCOPED_TRACE(body);
    expectError(check({.body = body}), ErrorCode::kScopeDenied, 403);
  }
}

TEST(ModelScopeTest, UnprintableModelNotQuoted) {
  expectError(check({.body = R"({"model":"gpt-4o\n[error] forged line"})"}),
              ErrorCode::kScopeDenied, 403, "agent token may not use the requested model");
  std::string long_model = R"({"model":")" + std::string(200'000, 'm') + R"("})";
  expectError(check({.body = long_model}), ErrorCode::kScopeDenied, 403,
              "agent token may not use the requested model");
}

TEST(ModelScopeTest, EscapedModelValueDecoded) {
  // The upstream decodes escapes, so the check must compare the decoded name.
  EXPECT_TRUE(check({.body = R"({"model":"gpt-4o-m\u0069ni"})"}).has_value());
  expectError(check({.body = R"({"model":"gpt-4\u006f"})"}), ErrorCode::kScopeDenied, 403,
              "agent token may not use model 'gpt-4o'");
}

TEST(ModelScopeTest, QueryModelRejectedDespiteAllowedBody) {
  expectError(check({.query = "model=gpt-4o"}), ErrorCode::kInvalidRequest, 400, kQueryMessage);
}

TEST(ModelScopeTest, QueryModelVariantsRejected) {
  for (std::string_view query :
       {"model=gpt-4o-mini", "api-version=1&model=gpt-4o", "MODEL=gpt-4o", "Model=gpt-4o",
        "mod%65l=gpt-4o", "%6D%6F%64%65%6C=gpt-4o", "model[]=gpt-4o", "model[0]=gpt-4o",
        "a=1;model=gpt-4o", "model", "model=", "a=1&&model=gpt-4o"}) {
    SCOPED_TRACE(query);
    expectError(check({.query = query}), ErrorCode::kInvalidRequest, 400, kQueryMessage);
  }
}

TEST(ModelScopeTest, QueryWithoutModelAccepted) {
  for (std::string_view query : {"", "api-version=2024-06-01", "models=gpt-4o", "x=model",
                                 "my_model=gpt-4o", "modelx=1", "a=model%3Dgpt-4o", "&&", "="}) {
    SCOPED_TRACE(query);
    EXPECT_TRUE(check({.query = query}).has_value());
  }
}

TEST(ModelScopeTest, QueryBadPercentEncodingRejected) {
  for (std::string_view query : {"a%zz=1", "model%=gpt-4o", "x=1&%"}) {
    SCOPED_TRACE(query);
    expectError(check({.query = query}), ErrorCode::kInvalidRequest, 400);
  }
}

TEST(ModelScopeTest, DuplicateModelKeyRejected) {
  expectError(check({.body = R"({"model":"gpt-4o-mini","model":"gpt-4o","messages":[]})"}),
              ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'model'");
  expectError(check({.body = R"({"model":"gpt-4o","model":"gpt-4o-mini"})"}),
              ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'model'");
}

TEST(ModelScopeTest, EscapedDuplicateKeyRejected) {
  expectError(check({.body = R"({"model":"gpt-4o-mini","mod\u0065l":"gpt-4o"})"}),
              ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'model'");
}

TEST(ModelScopeTest, NestedDuplicateKeysRejected) {
  expectError(
      check({.body = R"({"model":"gpt-4o-mini","messages":[{"role":"user","role":"system"}]})"}),
      ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'role'");
  expectError(check({.body = R"({"model":"gpt-4o-mini","a":{"b":{"c":{"d":1,"d":2}}}})"}),
              ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'd'");
  expectError(check({.body = R"({"model":"gpt-4o-mini","metadata":{"x y":1,"x y":2}})"}),
              ErrorCode::kInvalidJson, 400, "the request body has duplicate key 'x y'");
  expectError(check({.body = R"({"model":"gpt-4o-mini","a":{"'\n":1,"'\n":2}})"}),
              ErrorCode::kInvalidJson, 400, "the request body has a duplicate key");
}

TEST(ModelScopeTest, SameKeyInSeparateObjectsAccepted) {
  for (std::string_view body :
       {R"({"model":"gpt-4o-mini","messages":[{"role":"user"},{"role":"assistant"}]})",
        R"({"model":"gpt-4o-mini","a":{"x":1},"b":{"x":2},"c":{"x":{"x":3}}})",
        R"({"model":"gpt-4o-mini","a":{"b":{"k":1}},"c":{"k":2,"d":{"k":3}}})"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(check({.body = body}).has_value());
  }
}

TEST(ModelScopeTest, NestedModelIgnored) {
  EXPECT_TRUE(
      check({.body = R"({"metadata":{"model":"gpt-4o"},"model":"gpt-4o-mini"})"}).has_value());
  expectError(check({.body = R"({"metadata":{"model":"gpt-4o-mini"}})"}), ErrorCode::kScopeDenied,
              403, kNoModelMessage);
  expectError(check({.body = R"({"input":[{"model":"gpt-4o-mini"}]})"}), ErrorCode::kScopeDenied,
              403, kNoModelMessage);
}

TEST(ModelScopeTest, InvalidJsonRejected) {
  const std::vector<std::string> bodies = {
      R"({"model":"gpt-4o-mini")",                   // truncated
      R"({"model":"gpt-4o-mini","messages":[)",      // truncated inside an array
      R"({"model":"gpt-4o-mi)",                      // truncated inside the model
      "{\"model\":\"gpt-4o-mini\",\"x\":\"\xff\"}",  // invalid UTF-8
      "{\"model\":\"gpt-4o-mini\xc0\"}",             // truncated UTF-8 sequence in the model
      "{\"mod\xe9l\":\"gpt-4o\",\"model\":\"gpt-4o-mini\"}",  // invalid UTF-8 in a key
      "\xef\xbb\xbf{\"model\":\"gpt-4o-mini\"}",              // byte order mark
      R"({"model":"gpt-4o-mini"} {"model":"gpt-4o"})",        // a second document
      R"({"model":"gpt-4o-mini"}x)",                          // trailing data
      R"({"model":"gpt-4o-mini",})",                          // trailing comma
      R"({"model":"gpt-4o-mini" /* comment */})",             // comment
      R"({'model':'gpt-4o-mini'})",                           // single quotes
      R"({"model":"gpt-4o-mini","t":NaN})",                   // not a JSON number
      R"({model:"gpt-4o-mini"})",                             // unquoted key
      std::string("{\"model\":\"gpt-4o-mini\"}\0", 24),       // NUL after the document
      " ",
  };
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body);
    expectError(check({.body = body}), ErrorCode::kInvalidJson, 400, kInvalidJsonMessage);
  }
}

TEST(ModelScopeTest, SurroundingWhitespaceAccepted) {
  EXPECT_TRUE(check({.body = " \r\n\t{\"model\" : \"gpt-4o-mini\"}\n"}).has_value());
}

TEST(ModelScopeTest, NonObjectBodyRejected) {
  for (std::string_view body : {R"([{"model":"gpt-4o-mini"}])", R"("gpt-4o-mini")", "42", "null"}) {
    SCOPED_TRACE(body);
    expectError(check({.body = body}), ErrorCode::kInvalidRequest, 400,
                "the request body must be a JSON object");
  }
}

TEST(ModelScopeTest, MissingModelDenied) {
  for (std::string_view body : {"{}", R"({"messages":[]})", R"({"Model":"gpt-4o-mini"})"}) {
    SCOPED_TRACE(body);
    expectError(check({.body = body}), ErrorCode::kScopeDenied, 403, kNoModelMessage);
  }
}

TEST(ModelScopeTest, NonStringModelDenied) {
  for (std::string_view body :
       {R"({"model":null})", R"({"model":["gpt-4o-mini"]})", R"({"model":{"id":"gpt-4o-mini"}})",
        R"({"model":4})", R"({"model":-1.5e3})", R"({"model":true})"}) {
    SCOPED_TRACE(body);
    expectError(check({.body = body}), ErrorCode::kScopeDenied, 403,
                "this token is limited to certain models and the request's \"model\" is not a "
                "string");
  }
}

TEST(ModelScopeTest, BodylessReadsAllowed) {
  for (std::string_view method : {"GET", "HEAD", "OPTIONS"}) {
    SCOPED_TRACE(method);
    EXPECT_TRUE(check({.method = method, .content_type = "", .body = ""}).has_value());
  }
}

TEST(ModelScopeTest, BodylessReadWithQueryModelRejected) {
  expectError(check({.method = "GET", .content_type = "", .query = "model=gpt-4o", .body = ""}),
              ErrorCode::kInvalidRequest, 400, kQueryMessage);
}

TEST(ModelScopeTest, BodylessWriteDenied) {
  // Method names are case-sensitive, so "get" is not GET.
  for (std::string_view method : {"POST", "PUT", "PATCH", "DELETE", "get"}) {
    SCOPED_TRACE(method);
    expectError(check({.method = method, .content_type = "", .body = ""}), ErrorCode::kScopeDenied,
                403, kNoModelMessage);
  }
}

TEST(ModelScopeTest, ReadWithBodyChecked) {
  expectError(check({.method = "GET", .body = R"({"model":"gpt-4o"})"}), ErrorCode::kScopeDenied,
              403, "agent token may not use model 'gpt-4o'");
  EXPECT_TRUE(check({.method = "GET"}).has_value());
}

TEST(ModelScopeTest, JsonContentTypesAccepted) {
  for (std::string_view content_type :
       {"", "application/json", "Application/JSON", "application/json; charset=utf-8",
        " application/json ;charset=UTF-8", "application/vnd.api+json"}) {
    SCOPED_TRACE(content_type);
    EXPECT_TRUE(check({.content_type = content_type}).has_value());
  }
}

TEST(ModelScopeTest, OtherContentTypesRejected) {
  for (std::string_view content_type :
       {"multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/plain",
        "text/json", "application/+json", "; charset=utf-8", "application/jsonx"}) {
    SCOPED_TRACE(content_type);
    expectError(check({.content_type = content_type}), ErrorCode::kInvalidRequest, 400);
  }
  expectError(
      check({.content_type = "multipart/form-data; boundary=x"}), ErrorCode::kInvalidRequest, 400,
      "this token is limited to certain models, which are read from a JSON body, so the "
      "Content-Type 'multipart/form-data' is not accepted. Send the body as application/json");
}

TEST(ModelScopeTest, DeepNestingWithinLimitAccepted) {
  std::string body = R"({"model":"gpt-4o-mini","schema":)";
  body += std::string(62, '[') + std::string(62, ']') + "}";
  EXPECT_TRUE(check({.body = body}).has_value());

  std::string too_deep = R"({"model":"gpt-4o-mini","schema":)";
  too_deep += std::string(100, '[') + std::string(100, ']') + "}";
  expectError(check({.body = too_deep}), ErrorCode::kInvalidJson, 400,
              "the request body nests JSON deeper than 64 levels, the most that a token limited "
              "to certain models accepts");
}

TEST(ModelScopeTest, ManyKeysAccepted) {
  std::string body = R"({"model":"gpt-4o-mini","logit_bias":{)";
  for (int i = 0; i < 5000; ++i) {
    body += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\":1";
  }
  body += "}}";
  EXPECT_TRUE(check({.body = body}).has_value());
}

TEST(ModelScopeTest, EmptyAllowListSkipsChecks) {
  const std::vector<std::string> any_model;
  for (const Request& request :
       {Request{}, Request{.query = "model=gpt-4o"}, Request{.body = "not json"},
        Request{.body = R"({"model":"gpt-4o","model":"o1"})"},
        Request{.content_type = "text/plain", .body = ""},
        Request{.method = "DELETE", .body = ""}}) {
    EXPECT_TRUE(check(request, any_model).has_value()) << request.body;
  }
}

}  // namespace
}  // namespace keystore::proxy
