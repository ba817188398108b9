// Model restriction: whether a request of a token limited to certain models names only a model
// the token may use.
//
// The check reads the model from the same place the upstream reads it: the top-level "model"
// member of the JSON request body, byte for byte as forwarded. Anything that could make the
// upstream see another model than the check saw is rejected rather than interpreted: a model
// parameter in the query string, a body that is not strict UTF-8 JSON, and duplicate keys,
// which JSON parsers resolve differently (first wins, last wins, or error).
//
// A free function on values: thread-safe, no I/O, no locks, so it runs on the proxy's I/O
// threads after the request body is read and before any upstream connection.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace keystore::proxy {

// Checks one request against the token's allowed models. An empty `allowed_models` means any
// model and returns success without reading the request.
//
// Otherwise, in this order:
// - a query parameter named "model" (percent-decoded, any letter case) is kInvalidRequest,
//   and so is a query string with invalid percent-encoding;
// - GET, HEAD and OPTIONS without a body are allowed, and any other method without a body is
//   kScopeDenied because it names no model;
// - a body whose Content-Type is present and not JSON (application/json or
//   application/*+json) is kInvalidRequest;
// - a body that is not valid JSON (including invalid UTF-8, comments, trailing commas and
//   data after the value), or that repeats a key in any object, is kInvalidJson;
// - JSON other than an object is kInvalidRequest;
// - an object without a top-level "model", or whose "model" is not a string equal to one of
//   `allowed_models`, is kScopeDenied.
Result<void> checkModelRestriction(const std::vector<std::string>& allowed_models,
                                   std::string_view method, std::string_view content_type,
                                   std::string_view query, std::string_view body);

}  // namespace keystore::proxy
