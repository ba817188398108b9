#include "catalog/catalog.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fstream>
#include <sstream>

namespace keystore::catalog {

namespace json = boost::json;

std::string_view availabilityName(Availability availability) {
  switch (availability) {
    case Availability::kMarketplace:
      return "marketplace";
    case Availability::kConcierge:
      return "concierge";
    case Availability::kBoth:
      return "both";
    case Availability::kByok:
      return "byok";
  }
  return "byok";
}

namespace {

Error invalidEntry(std::string_view id, std::string_view problem) {
  return Error{ErrorCode::kInvalidRequest,
               "provider catalog entry '" + std::string(id) + "': " + std::string(problem)};
}

std::string stringField(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) {
    return {};
  }
  return std::string(value->get_string());
}

bool isValidProviderId(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

Result<AuthSpec> parseAuth(std::string_view id, const json::object& object) {
  AuthSpec auth;
  std::string scheme = stringField(object, "scheme");
  if (scheme == "bearer") {
    auth.scheme = AuthSpec::Scheme::kBearer;
  } else if (scheme == "header") {
    auth.scheme = AuthSpec::Scheme::kHeader;
    auth.header = stringField(object, "header");
    auth.prefix = stringField(object, "prefix");
    if (auth.header.empty()) {
      return std::unexpected(invalidEntry(id, "auth scheme 'header' needs a 'header' name"));
    }
  } else if (scheme == "basic") {
    auth.scheme = AuthSpec::Scheme::kBasic;
    if (auto user = stringField(object, "username_field"); !user.empty()) {
      auth.username_field = user;
    }
    if (auto password = stringField(object, "password_field"); !password.empty()) {
      auth.password_field = password;
    }
  } else if (scheme == "query") {
    auth.scheme = AuthSpec::Scheme::kQuery;
    auth.query_param = stringField(object, "query_param");
    if (auth.query_param.empty()) {
      return std::unexpected(invalidEntry(id, "auth scheme 'query' needs a 'query_param'"));
    }
  } else {
    return std::unexpected(invalidEntry(id, "unknown auth scheme '" + scheme + "'"));
  }
  for (auto& c : auth.header) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return auth;
}

Result<TokenLocation> parseTokenLocation(std::string_view id, const json::object& object) {
  TokenLocation location;
  std::string kind = stringField(object, "kind");
  location.name = stringField(object, "name");
  for (auto& c : location.name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (kind == "bearer") {
    location.kind = TokenLocation::Kind::kBearer;
  } else if (kind == "header") {
    location.kind = TokenLocation::Kind::kHeader;
  } else if (kind == "basic_password") {
    location.kind = TokenLocation::Kind::kBasicPassword;
  } else if (kind == "basic_username") {
    location.kind = TokenLocation::Kind::kBasicUsername;
  } else if (kind == "query") {
    location.kind = TokenLocation::Kind::kQuery;
  } else {
    return std::unexpected(invalidEntry(id, "unknown token location kind '" + kind + "'"));
  }
  bool needs_name =
      location.kind == TokenLocation::Kind::kHeader || location.kind == TokenLocation::Kind::kQuery;
  if (needs_name && location.name.empty()) {
    return std::unexpected(invalidEntry(id, "token location '" + kind + "' needs a 'name'"));
  }
  return location;
}

Result<Availability> parseAvailability(std::string_view id, std::string_view text) {
  if (text == "marketplace") {
    return Availability::kMarketplace;
  }
  if (text == "concierge") {
    return Availability::kConcierge;
  }
  if (text == "both") {
    return Availability::kBoth;
  }
  if (text == "byok") {
    return Availability::kByok;
  }
  return std::unexpected(invalidEntry(id, "unknown availability '" + std::string(text) + "'"));
}

// Field names and path segments: lowercase letters, digits and '_', so they need no
// escaping anywhere they appear.
bool isValidFieldName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Result<void> parseCredentialFields(const json::object& object, ProviderSpec& spec) {
  const json::value* fields = object.if_contains("credential_fields");
  if (fields == nullptr) {
    return {};
  }
  if (!fields->is_array() || fields->get_array().size() < 2 || fields->get_array().size() > 8) {
    return std::unexpected(
        invalidEntry(spec.id, "'credential_fields' must be an array of 2 to 8 field names"));
  }
  for (const auto& field : fields->get_array()) {
    if (!field.is_string() || !isValidFieldName(field.get_string())) {
      return std::unexpected(
          invalidEntry(spec.id, "credential field names are 1-64 characters of a-z, 0-9 and _"));
    }
    std::string name(field.get_string());
    if (std::find(spec.credential_fields.begin(), spec.credential_fields.end(), name) !=
        spec.credential_fields.end()) {
      return std::unexpected(invalidEntry(spec.id, "credential field '" + name + "' is repeated"));
    }
    spec.credential_fields.push_back(std::move(name));
  }
  return {};
}

bool hasField(const ProviderSpec& spec, std::string_view field) {
  return std::find(spec.credential_fields.begin(), spec.credential_fields.end(), field) !=
         spec.credential_fields.end();
}

Result<void> parsePathRewrites(const json::object& object, ProviderSpec& spec) {
  const json::value* rewrites = object.if_contains("path_rewrites");
  if (rewrites == nullptr) {
    return {};
  }
  if (!rewrites->is_array()) {
    return std::unexpected(invalidEntry(spec.id, "'path_rewrites' must be an array"));
  }
  for (const auto& entry : rewrites->get_array()) {
    if (!entry.is_object()) {
      return std::unexpected(invalidEntry(spec.id, "each path rewrite must be an object"));
    }
    PathRewrite rewrite{stringField(entry.get_object(), "after"),
                        stringField(entry.get_object(), "field")};
    if (rewrite.after.empty() || rewrite.after.find('/') != std::string::npos ||
        !hasField(spec, rewrite.field)) {
      return std::unexpected(invalidEntry(
          spec.id, "a path rewrite needs an 'after' segment and a 'field' from credential_fields"));
    }
    spec.path_rewrites.push_back(std::move(rewrite));
  }
  return {};
}

constexpr std::string_view kEntryMembers[] = {
    "id",   "display_name",    "category", "base_url",          "availability",
    "auth", "token_locations", "metering", "credential_fields", "path_rewrites"};

Result<ProviderSpec> parseProvider(const json::object& object) {
  ProviderSpec spec;
  spec.id = stringField(object, "id");
  if (!isValidProviderId(spec.id)) {
    return std::unexpected(invalidEntry(spec.id, "id must be 1-64 characters of a-z, 0-9, - or _"));
  }
  // An operator's catalog file is checked strictly, so a misspelt member fails at start-up
  // instead of silently falling back to a default.
  for (const auto& member : object) {
    if (std::find(std::begin(kEntryMembers), std::end(kEntryMembers), member.key()) ==
        std::end(kEntryMembers)) {
      return std::unexpected(
          invalidEntry(spec.id, "unknown member '" + std::string(member.key()) + "'"));
    }
  }
  spec.display_name = stringField(object, "display_name");
  spec.category = stringField(object, "category");
  spec.metering = stringField(object, "metering");
  if (spec.display_name.empty() || spec.category.empty() || spec.metering.empty()) {
    return std::unexpected(
        invalidEntry(spec.id, "display_name, category and metering are required"));
  }
  if (std::find(std::begin(kMeteringKinds), std::end(kMeteringKinds), spec.metering) ==
      std::end(kMeteringKinds)) {
    return std::unexpected(invalidEntry(spec.id, "unknown metering kind '" + spec.metering + "'"));
  }
  if (auto fields = parseCredentialFields(object, spec); !fields) {
    return std::unexpected(fields.error());
  }
  if (auto rewrites = parsePathRewrites(object, spec); !rewrites) {
    return std::unexpected(rewrites.error());
  }
  // Catalog URLs are public provider endpoints; private targets come only from operator
  // overrides, which are checked against the operator's policy.
  auto base = parseUpstreamUrl(stringField(object, "base_url"), UpstreamPolicy{true});
  if (!base) {
    return std::unexpected(invalidEntry(spec.id, base.error().message));
  }
  spec.base = std::move(*base);
  auto availability = parseAvailability(spec.id, stringField(object, "availability"));
  if (!availability) {
    return std::unexpected(availability.error());
  }
  spec.availability = *availability;

  const json::value* auth = object.if_contains("auth");
  if (auth == nullptr || !auth->is_object()) {
    return std::unexpected(invalidEntry(spec.id, "'auth' object is required"));
  }
  auto parsed_auth = parseAuth(spec.id, auth->get_object());
  if (!parsed_auth) {
    return std::unexpected(parsed_auth.error());
  }
  spec.auth = std::move(*parsed_auth);
  if (spec.auth.scheme == AuthSpec::Scheme::kBasic && !spec.credential_fields.empty() &&
      (!hasField(spec, spec.auth.username_field) || !hasField(spec, spec.auth.password_field))) {
    return std::unexpected(
        invalidEntry(spec.id,
                     "basic auth's username_field and password_field must be credential "
                     "fields"));
  }
  if (spec.auth.scheme != AuthSpec::Scheme::kBasic && !spec.credential_fields.empty()) {
    return std::unexpected(
        invalidEntry(spec.id, "only basic auth can inject a credential with several fields"));
  }

  const json::value* locations = object.if_contains("token_locations");
  if (locations == nullptr || !locations->is_array() || locations->get_array().empty()) {
    return std::unexpected(invalidEntry(spec.id, "'token_locations' must be a non-empty array"));
  }
  for (const auto& entry : locations->get_array()) {
    if (!entry.is_object()) {
      return std::unexpected(invalidEntry(spec.id, "each token location must be an object"));
    }
    auto location = parseTokenLocation(spec.id, entry.get_object());
    if (!location) {
      return std::unexpected(location.error());
    }
    spec.token_locations.push_back(std::move(*location));
  }
  return spec;
}

}  // namespace

Result<Catalog> Catalog::parse(std::string_view json_text) {
  boost::system::error_code error;
  json::value document = json::parse(json_text, error);
  if (error || !document.is_object()) {
    return fail(ErrorCode::kInvalidRequest, "provider catalog is not a valid JSON object");
  }
  const json::value* providers = document.get_object().if_contains("providers");
  if (providers == nullptr || !providers->is_array()) {
    return fail(ErrorCode::kInvalidRequest, "provider catalog needs a 'providers' array");
  }
  Catalog catalog;
  for (const auto& entry : providers->get_array()) {
    if (!entry.is_object()) {
      return fail(ErrorCode::kInvalidRequest, "each provider catalog entry must be an object");
    }
    auto spec = parseProvider(entry.get_object());
    if (!spec) {
      return std::unexpected(spec.error());
    }
    if (catalog.find(spec->id) != nullptr) {
      return std::unexpected(invalidEntry(spec->id, "duplicate id"));
    }
    catalog.providers_.push_back(std::move(*spec));
  }
  return catalog;
}

Result<Catalog> Catalog::builtIn() {
  return parse(builtInCatalogJson());
}

Result<Catalog> Catalog::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return fail(ErrorCode::kInvalidRequest, "cannot read the catalog file " + path);
  }
  std::ostringstream text;
  text << file.rdbuf();
  auto catalog = parse(text.str());
  if (!catalog) {
    return fail(ErrorCode::kInvalidRequest, path + ": " + catalog.error().message);
  }
  return catalog;
}

const ProviderSpec* Catalog::find(std::string_view id) const {
  for (const auto& spec : providers_) {
    if (spec.id == id) {
      return &spec;
    }
  }
  return nullptr;
}

Result<void> Catalog::overrideBaseUrl(std::string_view provider_id, std::string_view url,
                                      const UpstreamPolicy& policy) {
  for (auto& spec : providers_) {
    if (spec.id != provider_id) {
      continue;
    }
    auto parsed = parseUpstreamUrl(url, policy);
    if (!parsed) {
      return std::unexpected(parsed.error());
    }
    spec.base = std::move(*parsed);
    return {};
  }
  return fail(ErrorCode::kInvalidRequest,
              "--upstream names unknown provider '" + std::string(provider_id) + "'");
}

}  // namespace keystore::catalog
