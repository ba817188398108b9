// The OpenAPI 3 document of the management API, compiled into the binary from
// src/admin/openapi.json so that GET /api/v1/openapi.json needs no file at run time.
//
// Free function returning static data, thread-safe.
#pragma once

#include <string_view>

namespace keystore::admin {

// The document's JSON text, exactly as in src/admin/openapi.json.
std::string_view openApiDocument();

}  // namespace keystore::admin
