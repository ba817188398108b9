// Routes for agent tokens.
#include <algorithm>
#include <boost/json/array.hpp>
#include <string_view>

#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/clock.h"
#include "common/random.h"
#include "tokens/agent_token.h"
#include "tokens/scope.h"

namespace keystore::admin {

namespace {

constexpr size_t kMaxScopes = 64;

// Reads "scopes": absent or null means no restriction. Returns each scope in the text form
// that parseScope accepts, without duplicates.
Result<std::vector<std::string>> readScopes(const boost::json::object& body,
                                            const catalog::Catalog& catalog) {
  std::vector<std::string> scopes;
  const boost::json::value* value = body.if_contains("scopes");
  if (value == nullptr || value->is_null()) {
    return scopes;
  }
  if (!value->is_array()) {
    return fail(ErrorCode::kInvalidRequest, "\"scopes\" must be an array of strings");
  }
  if (value->as_array().size() > kMaxScopes) {
    return fail(ErrorCode::kInvalidRequest, "\"scopes\" may hold at most 64 entries");
  }

  for (const boost::json::value& entry : value->as_array()) {
    if (!entry.is_string()) {
      return fail(ErrorCode::kInvalidRequest, "\"scopes\" must be an array of strings");
    }
    Result<tokens::Scope> scope = tokens::parseScope(entry.as_string());
    if (!scope) {
      return std::unexpected(scope.error());
    }
    if (catalog.find(scope->provider) == nullptr) {
      return fail(ErrorCode::kInvalidRequest, "scope " + tokens::formatScope(*scope) +
                                                  " names unknown provider " + scope->provider);
    }
    std::string text = tokens::formatScope(*scope);
    if (std::find(scopes.begin(), scopes.end(), text) == scopes.end()) {
      scopes.push_back(std::move(text));
    }
  }
  return scopes;
}

constexpr size_t kMaxModels = 64;
constexpr size_t kMaxModelNameLength = 128;

// Model names as providers spell them, fine-tuned ones included ("ft:gpt-4o-mini:acme::abc").
bool isValidModelName(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameLength) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '/' || c == '-';
  });
}

// Reads "models": absent, null or empty means any model. Returns the names without duplicates,
// in the order given.
Result<std::vector<std::string>> readModels(const boost::json::object& body) {
  std::vector<std::string> models;
  const boost::json::value* value = body.if_contains("models");
  if (value == nullptr || value->is_null()) {
    return models;
  }
  if (!value->is_array()) {
    return fail(ErrorCode::kInvalidRequest, "\"models\" must be an array of strings");
  }
  if (value->as_array().size() > kMaxModels) {
    return fail(ErrorCode::kInvalidRequest, "\"models\" may contain at most 64 entries");
  }

  size_t index = 0;
  for (const boost::json::value& entry : value->as_array()) {
    if (!entry.is_string()) {
      return fail(ErrorCode::kInvalidRequest, "\"models\" must be an array of strings");
    }
    // The entry itself is left out of the message because it may be any text.
    std::string_view name = entry.as_string();
    if (!isValidModelName(name)) {
      return fail(ErrorCode::kInvalidRequest,
                  "\"models\" entry " + std::to_string(index) +
                      " is not a model name: use 1 to 128 characters of A-Z, a-z, 0-9, '.', "
                      "'_', ':', '/' and '-'");
    }
    if (std::find(models.begin(), models.end(), name) == models.end()) {
      models.emplace_back(name);
    }
    ++index;
  }
  return models;
}

// Reads "expires_in" (a duration) or "expires_at" (RFC 3339, in the future) into Unix
// milliseconds, or 0 when neither is given.
Result<int64_t> readNewExpiry(const boost::json::object& body, int64_t now) {
  Result<OptionalField<std::string>> expires_in = readString(body, "expires_in", true);
  if (!expires_in) {
    return std::unexpected(expires_in.error());
  }
  Result<OptionalField<std::string>> expires_at = readString(body, "expires_at", true);
  if (!expires_at) {
    return std::unexpected(expires_at.error());
  }
  if (expires_in->value && expires_at->value) {
    return fail(ErrorCode::kInvalidRequest,
                "send either \"expires_in\" or \"expires_at\", not both");
  }

  if (expires_in->value) {
    std::optional<int64_t> duration = parseDurationMillis(*expires_in->value);
    if (!duration) {
      return fail(ErrorCode::kInvalidRequest,
                  "\"expires_in\" must be a duration such as 30m, 12h or 90d");
    }
    return now + *duration;
  }
  if (expires_at->value) {
    std::optional<int64_t> time = parseRfc3339(*expires_at->value);
    if (!time) {
      return fail(ErrorCode::kInvalidRequest,
                  "\"expires_at\" must be an RFC 3339 time such as 2025-01-31T12:00:00Z");
    }
    if (*time <= now) {
      return fail(ErrorCode::kInvalidRequest, "\"expires_at\" is in the past");
    }
    return *time;
  }
  return 0;
}

// Reads "grace" (a duration) into milliseconds; absent, null or zero ("0", "0s") is 0.
Result<int64_t> readGrace(const boost::json::object& body) {
  Result<OptionalField<std::string>> grace = readString(body, "grace", true);
  if (!grace) {
    return std::unexpected(grace.error());
  }
  if (!grace->value) {
    return 0;
  }
  const std::string& text = *grace->value;
  bool zero =
      !text.empty() && text.front() == '0' && text.find_first_of("123456789") == std::string::npos;
  if (zero && (text == "0" || parseDurationMillis("1" + text.substr(text.find_last_of('0') + 1)))) {
    return 0;
  }
  std::optional<int64_t> millis = parseDurationMillis(text);
  if (!millis) {
    return fail(ErrorCode::kInvalidRequest,
                "\"grace\" must be a duration such as 30s, 10m or 1h, or 0 to revoke the old "
                "token at once");
  }
  return *millis;
}

}  // namespace

Result<ApiResponse> AdminApi::createToken(const RequestContext& context) {
  Result<store::Agent> agent = findAgent(context, context.params[0]);
  if (!agent) {
    return std::unexpected(agent.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"scopes", "models", "expires_in", "expires_at"});
      !known) {
    return std::unexpected(known.error());
  }
  Result<std::vector<std::string>> scopes = readScopes(*body, catalog_);
  if (!scopes) {
    return std::unexpected(scopes.error());
  }
  Result<std::vector<std::string>> models = readModels(*body);
  if (!models) {
    return std::unexpected(models.error());
  }
  Result<int64_t> expires_at = readNewExpiry(*body, context.now);
  if (!expires_at) {
    return std::unexpected(expires_at.error());
  }
  if (agent->status == "revoked") {
    return fail(ErrorCode::kConflict,
                "agent " + agent->name + " is revoked; create a new agent to mint tokens");
  }

  Secret token = tokens::generateAgentToken();
  store::AgentToken record;
  record.id = newId("tok");
  record.agent_id = agent->id;
  record.project_id = agent->project_id;
  record.token_hash = tokens::hashToken(token.reveal());
  record.scopes = std::move(*scopes);
  record.models = std::move(*models);
  record.expires_at = *expires_at;
  record.created_at = context.now;

  Result<store::AgentToken> created = store_.createToken(record);
  if (!created) {
    return std::unexpected(created.error());
  }
  notifyConfigChange();

  // The one place where the plaintext leaves the server. Only its hash is stored.
  boost::json::object rendered = renderToken(*created, context.now);
  rendered["token"] = token.reveal();
  return jsonResponse(201, rendered);
}

Result<ApiResponse> AdminApi::listTokens(const RequestContext& context) {
  Result<store::Agent> agent = findAgent(context, context.params[0]);
  if (!agent) {
    return std::unexpected(agent.error());
  }
  Result<std::vector<store::AgentToken>> tokens = store_.listTokens(agent->id);
  if (!tokens) {
    return std::unexpected(tokens.error());
  }

  boost::json::array items;
  for (const store::AgentToken& token : *tokens) {
    items.push_back(renderToken(token, context.now));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::getToken(const RequestContext& context) {
  Result<store::AgentToken> token = findToken(context, context.params[0]);
  if (!token) {
    return std::unexpected(token.error());
  }
  return jsonResponse(200, renderToken(*token, context.now));
}

Result<ApiResponse> AdminApi::revokeToken(const RequestContext& context) {
  Result<store::AgentToken> token = findToken(context, context.params[0]);
  if (!token) {
    return std::unexpected(token.error());
  }

  // Revoking twice is not an error: the token keeps its first revocation time.
  Result<store::AgentToken> revoked = store_.revokeToken(token->id, context.now);
  if (!revoked) {
    return std::unexpected(revoked.error());
  }
  notifyConfigChange();
  if (token->revoked_at == 0) {
    publishEvent("token.revoked", revoked->project_id,
                 {{"token_id", revoked->id}, {"agent_id", revoked->agent_id}});
  }
  return jsonResponse(200, renderToken(*revoked, context.now));
}

Result<ApiResponse> AdminApi::patchToken(const RequestContext& context) {
  Result<store::AgentToken> token = findToken(context, context.params[0]);
  if (!token) {
    return std::unexpected(token.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"expires_at"}); !known) {
    return std::unexpected(known.error());
  }
  Result<OptionalField<std::string>> field = readString(*body, "expires_at", true);
  if (!field) {
    return std::unexpected(field.error());
  }
  if (!field->present) {
    return fail(ErrorCode::kInvalidRequest, "\"expires_at\" is required");
  }

  // null removes the expiry, while "now" and past times expire the token at once.
  int64_t expires_at = 0;
  if (field->value == "now") {
    expires_at = context.now;
  } else if (field->value) {
    std::optional<int64_t> time = parseRfc3339(*field->value);
    if (!time) {
      return fail(ErrorCode::kInvalidRequest,
                  "\"expires_at\" must be an RFC 3339 time such as 2025-01-31T12:00:00Z, "
                  "\"now\" or null");
    }
    expires_at = *time;
  }
  if (token->revoked_at != 0) {
    return fail(ErrorCode::kConflict,
                "token " + token->id + " is revoked; its expiry no longer matters");
  }

  Result<store::AgentToken> updated = store_.setTokenExpiry(token->id, expires_at);
  if (!updated) {
    return std::unexpected(updated.error());
  }
  notifyConfigChange();
  return jsonResponse(200, renderToken(*updated, context.now));
}

Result<ApiResponse> AdminApi::rotateToken(const RequestContext& context) {
  Result<store::AgentToken> token = findToken(context, context.params[0]);
  if (!token) {
    return std::unexpected(token.error());
  }

  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"grace"}); !known) {
    return std::unexpected(known.error());
  }
  Result<int64_t> grace = readGrace(*body);
  if (!grace) {
    return std::unexpected(grace.error());
  }

  // The replacement keeps what the old token was allowed, including when it stops working.
  Secret secret = tokens::generateAgentToken();
  store::AgentToken replacement;
  replacement.id = newId("tok");
  replacement.token_hash = tokens::hashToken(secret.reveal());
  replacement.scopes = token->scopes;
  replacement.models = token->models;
  replacement.expires_at = token->expires_at;
  replacement.created_at = context.now;

  Result<store::TokenRotation> rotated =
      store_.rotateToken(token->id, replacement, context.now, *grace);
  if (!rotated) {
    return std::unexpected(rotated.error());
  }
  notifyConfigChange();

  // As at creation, the one place where the new token's plaintext leaves the server.
  boost::json::object rendered = renderToken(rotated->replacement, context.now);
  rendered["token"] = secret.reveal();
  return jsonResponse(201, rendered);
}

}  // namespace keystore::admin
