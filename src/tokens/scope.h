// Scopes of an agent token: "provider:<id>:read", "provider:<id>:write", "provider:<id>:*".
//
// read covers GET, HEAD and OPTIONS; write covers every other method; * covers both. write
// does not imply read. A token with no scopes may use every provider enabled in its project.
// Anything that cannot be parsed is denied. Free functions on values; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace keystore::tokens {

enum class Operation { kRead, kWrite };

// kRead for GET, HEAD and OPTIONS, kWrite otherwise. Methods are case-sensitive (RFC 9110), so
// "get" is kWrite and needs the stronger grant.
Operation operationForMethod(std::string_view method);

struct Scope {
  enum class Access { kRead, kWrite, kAll };
  std::string provider;
  Access access = Access::kAll;
};

// kInvalidRequest naming the text when it is not a valid scope. Provider ids are 1 to 64
// lowercase letters, digits, '-' and '_'; the access is read, write or *.
Result<Scope> parseScope(std::string_view text);
// The text form that parseScope accepts, e.g. "provider:openai:read".
std::string formatScope(const Scope& scope);

// Whether `scopes` grant `operation` on `provider`. Empty scopes grant every provider; an
// empty provider is always denied.
bool scopesAllow(const std::vector<Scope>& scopes, std::string_view provider, Operation operation);

}  // namespace keystore::tokens
