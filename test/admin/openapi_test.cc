// The OpenAPI document of the management API against the route table: the same routes in both
// directions, path parameters declared, shared error body on every failure, and the document
// served without a key.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "admin/admin_api.h"
#include "admin/openapi_document.h"
#include "admin_fixture.h"

namespace keystore::admin {
namespace {

// The admin listener serves these itself, in front of AdminApi, so they are documented without
// being in the route table.
const std::set<std::pair<std::string, std::string>> kListenerRoutes = {{"GET", "/metrics"}};

const std::set<std::string> kHttpMethods = {"get",     "put",  "post",  "delete",
                                            "options", "head", "patch", "trace"};

boost::json::object parseDocument() {
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(openApiDocument(), error);
  EXPECT_FALSE(error) << "the OpenAPI document is not JSON: " << error.message();
  if (error || !parsed.is_object()) {
    return {};
  }
  return parsed.as_object();
}

// "/api/v1/projects/{project}/agents" becomes "/api/v1/projects/{}/agents", the route table's
// spelling.
std::string toTemplate(std::string_view documented) {
  std::string path;
  size_t i = 0;
  while (i < documented.size()) {
    if (documented[i] == '{') {
      size_t close = documented.find('}', i);
      path += "{}";
      i = close == std::string_view::npos ? documented.size() : close + 1;
    } else {
      path += documented[i++];
    }
  }
  return path;
}

std::string upper(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return result;
}

// Follows a local "$ref" such as "#/components/parameters/project" once.
const boost::json::object& resolve(const boost::json::object& document,
                                   const boost::json::object& node) {
  static const boost::json::object kEmpty;
  const boost::json::value* reference = node.if_contains("$ref");
  if (reference == nullptr || !reference->is_string()) {
    return node;
  }
  std::string_view pointer = reference->as_string();
  if (!pointer.starts_with("#/")) {
    ADD_FAILURE() << "not a local reference: " << pointer;
    return kEmpty;
  }
  const boost::json::object* current = &document;
  std::string_view rest = pointer.substr(2);
  while (current != nullptr && !rest.empty()) {
    size_t slash = rest.find('/');
    const boost::json::value* found = current->if_contains(rest.substr(0, slash));
    current = found != nullptr ? found->if_object() : nullptr;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  EXPECT_NE(current, nullptr) << "unresolved reference " << pointer;
  return current != nullptr ? *current : kEmpty;
}

struct Operation {
  std::string method;  // "GET"
  std::string path;    // as documented, "/api/v1/projects/{project}"
  const boost::json::object* path_item = nullptr;
  const boost::json::object* operation = nullptr;
};

std::vector<Operation> documentedOperations(const boost::json::object& document) {
  std::vector<Operation> operations;
  const boost::json::value* paths = document.if_contains("paths");
  if (paths == nullptr || !paths->is_object()) {
    ADD_FAILURE() << "the document has no paths object";
    return operations;
  }
  for (const auto& [path, item] : paths->as_object()) {
    for (const auto& [method, operation] : item.as_object()) {
      if (kHttpMethods.contains(std::string(method))) {
        operations.push_back(
            Operation{upper(method), std::string(path), &item.as_object(), &operation.as_object()});
      }
    }
  }
  return operations;
}

// The names of the path parameters an operation declares, at path or operation level.
std::set<std::string> declaredPathParameters(const boost::json::object& document,
                                             const Operation& operation) {
  std::set<std::string> names;
  for (const boost::json::object* owner : {operation.path_item, operation.operation}) {
    const boost::json::value* parameters = owner->if_contains("parameters");
    if (parameters == nullptr) {
      continue;
    }
    for (const boost::json::value& entry : parameters->as_array()) {
      const boost::json::object& parameter = resolve(document, entry.as_object());
      if (parameter.at("in").as_string() == "path") {
        names.insert(std::string(parameter.at("name").as_string()));
      }
    }
  }
  return names;
}

std::set<std::string> placeholders(std::string_view path) {
  std::set<std::string> names;
  size_t open = path.find('{');
  while (open != std::string_view::npos) {
    size_t close = path.find('}', open);
    names.insert(std::string(path.substr(open + 1, close - open - 1)));
    open = path.find('{', close);
  }
  return names;
}

TEST(OpenApiDocumentTest, ParsesAsOpenApi303) {
  boost::json::object document = parseDocument();
  ASSERT_FALSE(document.empty());
  EXPECT_EQ(document.at("openapi").as_string(), "3.0.3");
  EXPECT_EQ(document.at("info").at("title").as_string(), "Keystore management API");
  EXPECT_FALSE(document.at("info").at("version").as_string().empty());
  EXPECT_EQ(document.at("servers").at(0).at("url").as_string(), "http://127.0.0.1:8081");
  const boost::json::object& scheme =
      document.at("components").at("securitySchemes").at("adminKey").as_object();
  EXPECT_EQ(scheme.at("type").as_string(), "http");
  EXPECT_EQ(scheme.at("scheme").as_string(), "bearer");
}

TEST(OpenApiDocumentTest, EveryRouteDocumented) {
  boost::json::object document = parseDocument();
  std::set<std::pair<std::string, std::string>> documented;
  for (const Operation& operation : documentedOperations(document)) {
    documented.emplace(operation.method, toTemplate(operation.path));
  }
  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    EXPECT_TRUE(documented.contains({std::string(route.method), std::string(route.path)}))
        << route.method << " " << route.path << " is served but not documented";
  }
}

TEST(OpenApiDocumentTest, EveryDocumentedOperationRouted) {
  boost::json::object document = parseDocument();
  std::set<std::pair<std::string, std::string>> routed(kListenerRoutes);
  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    routed.emplace(std::string(route.method), std::string(route.path));
  }
  std::vector<Operation> operations = documentedOperations(document);
  EXPECT_EQ(operations.size(), AdminApi::routeTable().size() + kListenerRoutes.size());
  for (const Operation& operation : operations) {
    EXPECT_TRUE(routed.contains({operation.method, toTemplate(operation.path)}))
        << operation.method << " " << operation.path << " is documented but not served";
  }
}

TEST(OpenApiDocumentTest, PathParametersDeclared) {
  boost::json::object document = parseDocument();
  for (const Operation& operation : documentedOperations(document)) {
    EXPECT_EQ(declaredPathParameters(document, operation), placeholders(operation.path))
        << operation.method << " " << operation.path;
  }
}

TEST(OpenApiDocumentTest, KeylessRoutesHaveNoSecurity) {
  boost::json::object document = parseDocument();
  std::set<std::pair<std::string, std::string>> keyless(kListenerRoutes);
  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    if (!route.needs_key) {
      keyless.emplace(std::string(route.method), std::string(route.path));
    }
  }
  // /healthz, /readyz, the document, /metrics, sign-in and sign-out.
  EXPECT_EQ(keyless.size(), 6u);

  EXPECT_EQ(document.at("security").at(0).as_object().count("adminKey"), 1u);
  for (const Operation& operation : documentedOperations(document)) {
    const boost::json::value* security = operation.operation->if_contains("security");
    bool open = security != nullptr && security->as_array().empty();
    EXPECT_EQ(open, keyless.contains({operation.method, toTemplate(operation.path)}))
        << operation.method << " " << operation.path;
  }
}

TEST(OpenApiDocumentTest, FailuresUseSharedErrorBody) {
  boost::json::object document = parseDocument();
  for (const Operation& operation : documentedOperations(document)) {
    bool needs_key = !operation.operation->contains("security");
    const boost::json::object& responses = operation.operation->at("responses").as_object();
    // Sign-in needs no key, yet answers 401 for wrong credentials.
    bool answers_401 = needs_key || operation.path == "/api/v1/auth/login";
    EXPECT_EQ(responses.contains("401"), answers_401) << operation.method << " " << operation.path;
    for (const auto& [status, entry] : responses) {
      if (status.starts_with("2") || operation.path == "/readyz") {
        continue;
      }
      const boost::json::object& response = resolve(document, entry.as_object());
      const boost::json::value& schema = response.at("content").at("application/json").at("schema");
      EXPECT_EQ(schema.at("$ref").as_string(), "#/components/schemas/Error")
          << operation.method << " " << operation.path << " " << status;
    }
  }
  const boost::json::object& error =
      document.at("components").at("schemas").at("Error").at("properties").at("error").as_object();
  boost::json::array expected{"type", "code", "message", "request_id"};
  EXPECT_EQ(error.at("required").as_array(), expected);
}

class OpenApiRouteTest : public AdminApiTest {};

TEST_F(OpenApiRouteTest, DocumentServedWithoutKey) {
  CallResult result = callWithKey("", "GET", "/api/v1/openapi.json");
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.content_type, "application/json");
  EXPECT_EQ(result.response.body, openApiDocument());
  EXPECT_EQ(result.str("/openapi"), "3.0.3");
}

TEST_F(OpenApiRouteTest, DocumentRejectsOtherMethods) {
  CallResult result = callWithKey("", "POST", "/api/v1/openapi.json");
  EXPECT_EQ(result.response.status, 405);
  EXPECT_EQ(result.errorCode(), "method_not_allowed");
  EXPECT_EQ(result.header("Allow"), "GET");
}

// Every route with a path parameter answers 404 for an id that does not exist, as documented.
TEST_F(OpenApiRouteTest, UnknownIdsAnswerDocumentedNotFound) {
  boost::json::object document = parseDocument();
  int checked = 0;
  for (const Operation& operation : documentedOperations(document)) {
    if (operation.path.find('{') == std::string::npos) {
      continue;
    }
    std::string target = toTemplate(operation.path);
    // A well-formed month, so that only the project is unknown.
    bool invoice = operation.path.ends_with("{month}");
    for (size_t at = target.find("{}"); at != std::string::npos; at = target.find("{}")) {
      bool last = target.find("{}", at + 2) == std::string::npos;
      target.replace(at, 2, invoice && last ? "2026-01" : "no_such_id");
    }
    std::string body = operation.method == "GET" || operation.method == "DELETE" ? "" : "{}";
    CallResult result = callAsOperator(operation.method, target, body);
    EXPECT_EQ(result.response.status, 404)
        << operation.method << " " << target << ": " << result.response.body;
    EXPECT_EQ(result.str("/error/type"), "keystore_error") << operation.method << " " << target;
    EXPECT_EQ(result.str("/error/request_id"), "req_test") << operation.method << " " << target;
    EXPECT_TRUE(operation.operation->at("responses").as_object().contains("404"))
        << operation.method << " " << operation.path << " does not document 404";
    ++checked;
  }
  EXPECT_EQ(checked, 44);
}

// Every GET without parameters answers one of its documented statuses, as the operator.
TEST_F(OpenApiRouteTest, ParameterlessGetsAnswerDocumentedStatus) {
  boost::json::object document = parseDocument();
  int checked = 0;
  for (const Operation& operation : documentedOperations(document)) {
    if (operation.method != "GET" || operation.path.find('{') != std::string::npos ||
        kListenerRoutes.contains({operation.method, operation.path})) {
      continue;
    }
    CallResult result = callAsOperator("GET", operation.path);
    // An admin key has no session to show.
    int expected = operation.path == "/api/v1/auth/session" ? 401 : 200;
    EXPECT_EQ(result.response.status, expected) << operation.path << ": " << result.response.body;
    EXPECT_TRUE(operation.operation->at("responses").as_object().contains("200")) << operation.path;
    EXPECT_TRUE(result.json.is_object()) << operation.path;
    ++checked;
  }
  // healthz, readyz, openapi.json, projects, catalog, pools, prices, prices/current,
  // concierge, admin-keys, auth/session, organizations, audit and audit/verify.
  EXPECT_EQ(checked, 14);
}

}  // namespace
}  // namespace keystore::admin
