// The route that serves the management API's OpenAPI document.
#include "admin/admin_api.h"
#include "admin/openapi_document.h"
#include "admin/request_context.h"

namespace keystore::admin {

std::vector<AdminApi::RouteInfo> AdminApi::routeTable() {
  std::vector<RouteInfo> table;
  for (const Route& route : routes()) {
    table.push_back(RouteInfo{route.method, route.path, route.needs_key});
  }
  return table;
}

Result<ApiResponse> AdminApi::openapi(const RequestContext&) {
  ApiResponse response;
  response.body = std::string(openApiDocument());
  return response;
}

}  // namespace keystore::admin
