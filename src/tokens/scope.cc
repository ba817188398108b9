#include "tokens/scope.h"

namespace keystore::tokens {

namespace {

constexpr std::string_view kScopePrefix = "provider:";
constexpr size_t kMaxProviderIdSize = 64;
// Maximum number of characters of rejected input echoed in an error message.
constexpr size_t kMaxEchoSize = 80;

bool isValidProviderId(std::string_view id) {
  if (id.empty() || id.size() > kMaxProviderIdSize) {
    return false;
  }
  for (char c : id) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!allowed) {
      return false;
    }
  }
  return true;
}

// The rejected text, shortened and with control characters replaced, for an error message.
std::string quoteForMessage(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, kMaxEchoSize)) {
    out.push_back(c >= 0x20 && c != 0x7f ? c : '?');
  }
  if (text.size() > kMaxEchoSize) {
    out += "...";
  }
  out += '"';
  return out;
}

std::string_view accessName(Scope::Access access) {
  switch (access) {
    case Scope::Access::kRead:
      return "read";
    case Scope::Access::kWrite:
      return "write";
    case Scope::Access::kAll:
      return "*";
  }
  return "*";
}

bool grants(Scope::Access access, Operation operation) {
  switch (access) {
    case Scope::Access::kAll:
      return true;
    case Scope::Access::kRead:
      return operation == Operation::kRead;
    case Scope::Access::kWrite:
      return operation == Operation::kWrite;
  }
  return false;
}

}  // namespace

Operation operationForMethod(std::string_view method) {
  if (method == "GET" || method == "HEAD" || method == "OPTIONS") {
    return Operation::kRead;
  }
  return Operation::kWrite;
}

Result<Scope> parseScope(std::string_view text) {
  auto invalid = [&](std::string_view reason) {
    return fail(ErrorCode::kInvalidRequest,
                "invalid scope " + quoteForMessage(text) + ": " + std::string(reason) +
                    "; expected provider:<id>:read, provider:<id>:write or provider:<id>:*");
  };

  if (!text.starts_with(kScopePrefix)) {
    return invalid("it does not start with \"provider:\"");
  }
  std::string_view rest = text.substr(kScopePrefix.size());
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid("the access part is missing");
  }
  std::string_view provider = rest.substr(0, colon);
  std::string_view access = rest.substr(colon + 1);

  if (!isValidProviderId(provider)) {
    return invalid("a provider id is 1 to 64 lowercase letters, digits, '-' or '_'");
  }
  Scope scope;
  scope.provider = std::string(provider);
  if (access == "read") {
    scope.access = Scope::Access::kRead;
  } else if (access == "write") {
    scope.access = Scope::Access::kWrite;
  } else if (access == "*") {
    scope.access = Scope::Access::kAll;
  } else {
    return invalid("the access must be read, write or *");
  }
  return scope;
}

std::string formatScope(const Scope& scope) {
  return std::string(kScopePrefix) + scope.provider + ":" + std::string(accessName(scope.access));
}

bool scopesAllow(const std::vector<Scope>& scopes, std::string_view provider, Operation operation) {
  if (provider.empty()) {
    return false;
  }
  if (scopes.empty()) {
    return true;
  }
  for (const Scope& scope : scopes) {
    if (scope.provider == provider && grants(scope.access, operation)) {
      return true;
    }
  }
  return false;
}

}  // namespace keystore::tokens
