// Catalog: the providers Keystore can proxy, loaded from a JSON data file and validated.
//
// The built-in file ships inside the binary; an operator may replace base URLs with
// `--upstream PROVIDER=URL`, subject to the SSRF rules in upstream_url.h. A Catalog is
// immutable once built and safe to read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/upstream_url.h"
#include "common/error.h"

namespace keystore::catalog {

// The credential sources a provider offers.
enum class Availability { kMarketplace, kConcierge, kBoth, kByok };

std::string_view availabilityName(Availability availability);

// The scheme in which the proxy puts the credential on the upstream request.
struct AuthSpec {
  enum class Scheme {
    kBearer,  // Authorization: Bearer <key>
    kHeader,  // <header>: <prefix><key>
    kBasic,   // Authorization: Basic base64(<user field>:<password field>)
    kQuery,   // ?<query_param>=<key>
  };
  Scheme scheme = Scheme::kBearer;
  std::string header;                       // kHeader: lowercase header name
  std::string prefix;                       // kHeader: text before the key, often empty
  std::string query_param;                  // kQuery
  std::string username_field = "username";  // kBasic: credential field names
  std::string password_field = "password";
};

// A place where the provider's official SDK sends its API key, so the agent token is found
// there too.
struct TokenLocation {
  enum class Kind { kBearer, kHeader, kBasicPassword, kBasicUsername, kQuery };
  Kind kind = Kind::kBearer;
  std::string name;  // kHeader: lowercase header name; kQuery: parameter name
};

// Rewrites the upstream path with a credential field: the segment that follows a segment
// equal to `after` is replaced by the field's value. Twilio puts the account SID in the path,
// and the agent, which never has the real account, sends a placeholder there.
struct PathRewrite {
  std::string after;
  std::string field;
};

// The metering kinds whose usage the proxy can read.
inline constexpr std::string_view kMeteringKinds[] = {"openai",   "anthropic", "emails",
                                                      "messages", "pinecone",  "requests"};

struct ProviderSpec {
  std::string id;
  std::string display_name;
  std::string category;
  UpstreamUrl base;
  Availability availability = Availability::kByok;
  AuthSpec auth;
  std::vector<TokenLocation> token_locations;
  std::string metering;  // one of kMeteringKinds
  // The fields of a multi-field credential, stored as a JSON object; empty for a plain key.
  std::vector<std::string> credential_fields;
  std::vector<PathRewrite> path_rewrites;
};

class Catalog {
 public:
  // Parses and validates a catalog document. kInvalidRequest names the entry and field at
  // fault. Base URLs must be https unless `allow_private` is set (tests, local providers).
  static Result<Catalog> parse(std::string_view json_text);
  // The catalog compiled into the binary.
  static Result<Catalog> builtIn();
  // Reads and parses an operator's catalog file, which replaces the built-in one.
  static Result<Catalog> load(const std::string& path);

  // nullptr for an unknown id.
  const ProviderSpec* find(std::string_view id) const;
  const std::vector<ProviderSpec>& providers() const { return providers_; }

  // Points a provider at another base URL after checking it against the SSRF rules.
  Result<void> overrideBaseUrl(std::string_view provider_id, std::string_view url,
                               const UpstreamPolicy& policy);

 private:
  std::vector<ProviderSpec> providers_;
};

// The built-in catalog document.
std::string_view builtInCatalogJson();

}  // namespace keystore::catalog
