// Proxy routing: turns a request target "/v1/{provider}/{rest}?{query}" into the provider id
// and the path to send upstream.
//
// The path is percent-decoded exactly once and checked: "." and ".." segments, encoded
// slashes or backslashes, NUL and control characters are rejected. The upstream path is then
// re-encoded canonically, so a doubly encoded "%252e%252e" reaches the upstream as the
// literal text "%2e%2e" and can never become a traversal there. The query string is kept
// byte for byte.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace keystore::proxy {

struct Route {
  std::string provider;
  std::string path;   // "/rest" re-encoded, always starting with '/'
  std::string query;  // without the '?', may be empty
};

// kInvalidRequest for malformed or unsafe targets; kUnknownProvider is left to the caller,
// which has the catalog.
Result<Route> parseProxyTarget(std::string_view target);

}  // namespace keystore::proxy
