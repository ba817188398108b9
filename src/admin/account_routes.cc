// Sign-in, sessions, organizations, members and the operator flag of users.
//
// Sign-in never tells whether an email has an account: an unknown email, a disabled user and
// a wrong password get the same 401 body after the same Argon2id work.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/array.hpp>

#include "accounts/password.h"
#include "accounts/session_token.h"
#include "admin/admin_api.h"
#include "admin/json_body.h"
#include "admin/json_render.h"
#include "admin/request_context.h"
#include "common/clock.h"

namespace keystore::admin {

namespace {

constexpr size_t kMaxEmailBytes = 254;

bool isRole(const std::string& role) {
  return role == "owner" || role == "admin" || role == "member" || role == "viewer";
}

Result<void> validateRole(const std::string& role) {
  if (!isRole(role)) {
    return fail(ErrorCode::kInvalidRequest,
                "\"role\" must be \"owner\", \"admin\", \"member\" or \"viewer\"");
  }
  return {};
}

Result<void> validateEmail(const std::string& email) {
  bool has_space_or_control = std::any_of(email.begin(), email.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f;
  });
  size_t at = email.find('@');
  if (email.size() > kMaxEmailBytes || has_space_or_control || at == std::string::npos || at == 0 ||
      at + 1 == email.size()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"email\" must be an email address such as alice@example.com");
  }
  return {};
}

std::string sessionCookie(std::string_view token, bool tls) {
  std::string cookie = std::string(accounts::kSessionCookieName) + "=" + std::string(token) +
                       "; HttpOnly; SameSite=Strict; Path=/";
  return tls ? cookie + "; Secure" : cookie;
}

std::string clearedSessionCookie(bool tls) {
  std::string cookie =
      std::string(accounts::kSessionCookieName) + "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";
  return tls ? cookie + "; Secure" : cookie;
}

// The session token a request carries in Authorization (kss_…) or in the cookie, or "".
std::string presentedSessionToken(const ApiRequest& request, bool& via_cookie) {
  constexpr std::string_view kScheme = "Bearer ";
  std::string_view header = request.authorization;
  if (header.size() > kScheme.size() &&
      std::equal(kScheme.begin(), kScheme.end(), header.begin(),
                 [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    std::string_view token = header.substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') {
      token.remove_prefix(1);
    }
    via_cookie = false;
    return accounts::isSessionTokenShaped(token) ? std::string(token) : "";
  }
  via_cookie = true;
  return accounts::cookieValue(request.cookie, accounts::kSessionCookieName);
}

boost::json::object renderMember(const store::Membership& membership) {
  return {
      {"user_id", membership.user_id},
      {"email", membership.user_email},
      {"role", membership.role},
      {"organization_id", membership.organization_id},
      {"created_at", formatRfc3339(membership.created_at)},
  };
}

boost::json::object renderUser(const store::User& user) {
  return {
      {"id", user.id},
      {"email", user.email},
      {"is_operator", user.is_operator},
  };
}

ApiResponse rateLimitedResponse(int64_t retry_after_seconds, const std::string& request_id) {
  Error error{ErrorCode::kRateLimited, "too many failed sign-ins; try again in " +
                                           std::to_string(retry_after_seconds) + " s"};
  ApiResponse response = jsonResponse(429, renderError(error, request_id));
  response.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return response;
}

}  // namespace

Result<boost::json::object> AdminApi::sessionBody(const store::User& user,
                                                  const store::Session& session) {
  Result<std::vector<store::Membership>> memberships = store_.listUserMemberships(user.id);
  if (!memberships) {
    return std::unexpected(memberships.error());
  }
  boost::json::array items;
  for (const store::Membership& membership : *memberships) {
    items.push_back(boost::json::object{{"organization_id", membership.organization_id},
                                        {"organization_name", membership.organization_name},
                                        {"role", membership.role}});
  }
  return boost::json::object{
      {"user", renderUser(user)},
      {"memberships", std::move(items)},
      {"csrf_token", session.csrf_token},
      {"expires_at", formatRfc3339(session.expires_at)},
  };
}

Result<ApiResponse> AdminApi::login(const RequestContext& context) {
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"email", "password", "client"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> email = readRequiredString(*body, "email");
  if (!email) {
    return std::unexpected(email.error());
  }
  Result<std::optional<Secret>> password = takeSecretString(*body, "password");
  if (!password) {
    return std::unexpected(password.error());
  }
  if (!password->has_value()) {
    return fail(ErrorCode::kInvalidRequest, "\"password\" is required");
  }
  Result<OptionalField<std::string>> client = readString(*body, "client");
  if (!client) {
    return std::unexpected(client.error());
  }
  bool wants_bearer = client->value.value_or("browser") == "cli";
  if (client->value && *client->value != "cli" && *client->value != "browser") {
    return fail(ErrorCode::kInvalidRequest, "\"client\" must be \"cli\" or \"browser\"");
  }

  const std::string& address = context.request.remote_address;
  if (auto retry = login_throttle_->retryAfterSeconds(*email, address, context.now)) {
    return rateLimitedResponse(*retry, context.request.request_id);
  }

  Result<std::optional<store::User>> user = store_.findUserByEmail(*email);
  if (!user) {
    return std::unexpected(user.error());
  }
  bool valid = false;
  if (user->has_value()) {
    valid =
        accounts::verifyPassword((*user)->password_hash, **password) && (*user)->disabled_at == 0;
  } else {
    accounts::verifyDummyPassword(**password);
  }
  if (!valid) {
    login_throttle_->recordFailure(*email, address, context.now);
    // A failed attempt on an existing account is worth an owner's attention; one for an
    // unknown email belongs to no organization and is only counted by the throttle.
    if (user->has_value()) {
      if (auto recorded = appendSignInEntries(context, (*user)->id, "auth.login_failed", "");
          !recorded) {
        spdlog::error("admin API: cannot record a failed sign-in (request {}): {}",
                      context.request.request_id, recorded.error().message);
      }
    }
    return fail(ErrorCode::kInvalidCredentials, "invalid email or password");
  }
  login_throttle_->recordSuccess(*email);

  Secret token = accounts::generateSessionToken();
  store::Session session;
  session.token_hash = accounts::hashSessionToken(token.reveal());
  session.user_id = (*user)->id;
  session.csrf_token = accounts::generateCsrfToken();
  session.created_at = context.now;
  session.expires_at = context.now + options_.session_ttl_ms;
  session.last_seen_at = context.now;
  session.source_address = address;
  // The session exists only if its sign-in is on record.
  Result<store::Session> stored = fail(ErrorCode::kInternal, "the sign-in did not run");
  Result<void> recorded = store_.inTransaction([&]() -> Result<void> {
    stored = store_.createSession(session);
    if (!stored) {
      return std::unexpected(stored.error());
    }
    return appendSignInEntries(context, (*user)->id, "auth.login", stored->id);
  });
  if (!recorded) {
    return std::unexpected(recorded.error());
  }

  Result<boost::json::object> rendered = sessionBody(**user, *stored);
  if (!rendered) {
    return std::unexpected(rendered.error());
  }
  // Only the CLI, which keeps the token in a private file, sees it in the body. A browser
  // gets it in an HttpOnly cookie that page scripts cannot read.
  if (wants_bearer) {
    (*rendered)["session_token"] = token.reveal();
  }
  ApiResponse response = jsonResponse(200, *rendered);
  response.headers.emplace_back("Set-Cookie", sessionCookie(token.reveal(), context.request.tls));
  return response;
}

Result<ApiResponse> AdminApi::logout(const RequestContext& context) {
  bool via_cookie = false;
  std::string token = presentedSessionToken(context.request, via_cookie);
  if (accounts::isSessionTokenShaped(token)) {
    Result<std::optional<store::Session>> found =
        store_.findSessionByHash(accounts::hashSessionToken(token));
    if (!found) {
      return std::unexpected(found.error());
    }
    if (found->has_value() && (*found)->revoked_at == 0) {
      if (via_cookie &&
          !accounts::csrfTokenMatches((*found)->csrf_token, context.request.csrf_token)) {
        return fail(ErrorCode::kCsrfFailed,
                    "signing out with the session cookie needs the X-CSRF-Token header");
      }
      const store::Session& ended = **found;
      Result<void> revoked = store_.inTransaction([&]() -> Result<void> {
        if (auto done = store_.revokeSession(ended.id, context.now); !done) {
          return done;
        }
        return appendSignInEntries(context, ended.user_id, "auth.logout", ended.id);
      });
      if (!revoked) {
        return std::unexpected(revoked.error());
      }
    }
  }
  ApiResponse response;
  response.status = 204;
  response.content_type.clear();
  response.headers.emplace_back("Set-Cookie", clearedSessionCookie(context.request.tls));
  return response;
}

Result<ApiResponse> AdminApi::getSession(const RequestContext& context) {
  bool via_cookie = false;
  std::string token = presentedSessionToken(context.request, via_cookie);
  if (context.session_id.empty() || token.empty()) {
    return fail(ErrorCode::kUnauthenticated, "not signed in; an admin API key has no session");
  }
  Result<std::optional<store::Session>> session =
      store_.findSessionByHash(accounts::hashSessionToken(token));
  if (!session) {
    return std::unexpected(session.error());
  }
  if (!session->has_value()) {
    return fail(ErrorCode::kUnauthenticated, "not signed in");
  }
  Result<store::User> user = store_.getUser(context.user_id);
  if (!user) {
    return std::unexpected(user.error());
  }
  Result<boost::json::object> rendered = sessionBody(*user, **session);
  if (!rendered) {
    return std::unexpected(rendered.error());
  }
  return jsonResponse(200, *rendered);
}

Result<ApiResponse> AdminApi::changePassword(const RequestContext& context) {
  if (context.user_id.empty()) {
    return fail(ErrorCode::kForbidden,
                "admin API key " + context.admin_key.id +
                    " belongs to no user, so it has no password; sign in to change yours");
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"current_password", "new_password"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::optional<Secret>> current = takeSecretString(*body, "current_password");
  if (!current) {
    return std::unexpected(current.error());
  }
  Result<std::optional<Secret>> next = takeSecretString(*body, "new_password");
  if (!next) {
    return std::unexpected(next.error());
  }
  if (!current->has_value() || !next->has_value()) {
    return fail(ErrorCode::kInvalidRequest,
                "\"current_password\" and \"new_password\" are both required");
  }

  Result<store::User> user = store_.getUser(context.user_id);
  if (!user) {
    return std::unexpected(user.error());
  }
  const std::string& address = context.request.remote_address;
  if (auto retry = login_throttle_->retryAfterSeconds(user->email, address, context.now)) {
    return rateLimitedResponse(*retry, context.request.request_id);
  }
  if (!accounts::verifyPassword(user->password_hash, **current)) {
    login_throttle_->recordFailure(user->email, address, context.now);
    return fail(ErrorCode::kInvalidCredentials, "the current password is wrong");
  }
  if (auto valid = accounts::validateNewPassword(user->email, **next); !valid) {
    return std::unexpected(valid.error());
  }
  Result<std::string> hash = accounts::hashPassword(**next);
  if (!hash) {
    return std::unexpected(hash.error());
  }
  if (auto stored = store_.setUserPassword(user->id, *hash); !stored) {
    return std::unexpected(stored.error());
  }
  // Whoever else signed in with the old password is signed out.
  Result<size_t> revoked = store_.revokeUserSessions(user->id, context.session_id, context.now);
  if (!revoked) {
    return std::unexpected(revoked.error());
  }
  ApiResponse response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

Result<ApiResponse> AdminApi::listOrganizations(const RequestContext& context) {
  Result<std::vector<store::Organization>> organizations = store_.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  auto render = [&](const std::string& organization_id, const std::string& role) {
    boost::json::object item{{"id", organization_id}, {"name", ""}, {"role", role}};
    for (const store::Organization& organization : *organizations) {
      if (organization.id == organization_id) {
        item["name"] = organization.name;
        item["created_at"] = formatRfc3339(organization.created_at);
      }
    }
    return item;
  };

  boost::json::array items;
  if (!context.session_id.empty()) {
    Result<std::vector<store::Membership>> memberships =
        store_.listUserMemberships(context.user_id);
    if (!memberships) {
      return std::unexpected(memberships.error());
    }
    for (const store::Membership& membership : *memberships) {
      items.push_back(render(membership.organization_id, membership.role));
    }
  } else if (!context.admin_key.organization_id.empty()) {
    items.push_back(render(context.admin_key.organization_id, context.admin_key.role));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::createOrganization(const RequestContext& context) {
  if (context.user_id.empty()) {
    return fail(ErrorCode::kForbidden,
                "admin API key " + context.admin_key.id +
                    " belongs to no user, so it cannot own an organization; sign in instead");
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"name"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> name = readRequiredString(*body, "name");
  if (!name) {
    return std::unexpected(name.error());
  }
  if (auto valid = validateName("name", *name, "org"); !valid) {
    return std::unexpected(valid.error());
  }
  store::Organization organization;
  organization.name = *name;
  Result<store::Organization> created =
      store_.createOrganizationWithOwner(organization, context.user_id, context.now);
  if (!created) {
    return std::unexpected(created.error());
  }
  return jsonResponse(201, boost::json::object{{"id", created->id},
                                               {"name", created->name},
                                               {"role", "owner"},
                                               {"created_at", formatRfc3339(created->created_at)}});
}

Result<store::Organization> AdminApi::findCallerOrganization(const RequestContext& context,
                                                             const std::string& id_or_name) {
  Result<std::vector<store::Organization>> organizations = store_.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  for (const store::Organization& organization : *organizations) {
    bool named = organization.id == id_or_name || organization.name == id_or_name;
    if (named && organization.id == context.admin_key.organization_id) {
      return organization;
    }
  }
  return fail(ErrorCode::kNotFound, "organization " + id_or_name + " not found");
}

Result<ApiResponse> AdminApi::listMembers(const RequestContext& context) {
  Result<store::Organization> organization = findCallerOrganization(context, context.params[0]);
  if (!organization) {
    return std::unexpected(organization.error());
  }
  Result<std::vector<store::Membership>> members = store_.listMembers(organization->id);
  if (!members) {
    return std::unexpected(members.error());
  }
  boost::json::array items;
  for (const store::Membership& member : *members) {
    items.push_back(renderMember(member));
  }
  return listResponse(std::move(items));
}

Result<ApiResponse> AdminApi::addMember(const RequestContext& context) {
  Result<store::Organization> organization = findCallerOrganization(context, context.params[0]);
  if (!organization) {
    return std::unexpected(organization.error());
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"email", "role", "password"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::optional<Secret>> password = takeSecretString(*body, "password");
  if (!password) {
    return std::unexpected(password.error());
  }
  Result<std::string> email = readRequiredString(*body, "email");
  if (!email) {
    return std::unexpected(email.error());
  }
  if (auto valid = validateEmail(*email); !valid) {
    return std::unexpected(valid.error());
  }
  Result<std::string> role = readRequiredString(*body, "role");
  if (!role) {
    return std::unexpected(role.error());
  }
  if (auto valid = validateRole(*role); !valid) {
    return std::unexpected(valid.error());
  }
  if (*role == "owner" && context.admin_key.role != "owner") {
    return fail(ErrorCode::kForbidden, "only an owner can make someone an owner");
  }

  store::Membership membership;
  membership.organization_id = organization->id;
  membership.role = *role;
  membership.created_at = context.now;

  Result<std::optional<store::User>> existing = store_.findUserByEmail(*email);
  if (!existing) {
    return std::unexpected(existing.error());
  }
  Result<store::Membership> added = fail(ErrorCode::kInternal, "membership not stored");
  bool created_user = !existing->has_value();
  if (!created_user) {
    // An existing user keeps their password: an admin cannot set another person's password
    // by adding them to an organization, so a "password" sent here is ignored.
    membership.user_id = (*existing)->id;
    added = store_.addMembership(membership);
  } else {
    if (!password->has_value()) {
      return fail(ErrorCode::kInvalidRequest,
                  "\"password\" is required when the email has no account yet");
    }
    if (auto valid = accounts::validateNewPassword(*email, **password); !valid) {
      return std::unexpected(valid.error());
    }
    Result<std::string> hash = accounts::hashPassword(**password);
    if (!hash) {
      return std::unexpected(hash.error());
    }
    store::User user;
    user.email = *email;
    user.password_hash = *hash;
    user.created_at = context.now;
    added = store_.createUserWithMembership(user, membership);
  }
  if (!added) {
    return std::unexpected(added.error());
  }
  boost::json::object rendered = renderMember(*added);
  rendered["created_user"] = created_user;
  return jsonResponse(201, rendered);
}

Result<ApiResponse> AdminApi::updateMember(const RequestContext& context) {
  Result<store::Organization> organization = findCallerOrganization(context, context.params[0]);
  if (!organization) {
    return std::unexpected(organization.error());
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"role"}); !known) {
    return std::unexpected(known.error());
  }
  Result<std::string> role = readRequiredString(*body, "role");
  if (!role) {
    return std::unexpected(role.error());
  }
  if (auto valid = validateRole(*role); !valid) {
    return std::unexpected(valid.error());
  }

  const std::string& user_id = context.params[1];
  Result<std::vector<store::Membership>> members = store_.listMembers(organization->id);
  if (!members) {
    return std::unexpected(members.error());
  }
  auto current = std::find_if(members->begin(), members->end(),
                              [&](const store::Membership& m) { return m.user_id == user_id; });
  if (current == members->end()) {
    return fail(ErrorCode::kNotFound, "member " + user_id + " not found");
  }
  bool touches_owner = current->role == "owner" || *role == "owner";
  if (touches_owner && context.admin_key.role != "owner") {
    return fail(ErrorCode::kForbidden, "only an owner can grant or take away the owner role");
  }
  Result<store::Membership> updated = store_.updateMembershipRole(organization->id, user_id, *role);
  if (!updated) {
    return std::unexpected(updated.error());
  }
  return jsonResponse(200, renderMember(*updated));
}

Result<ApiResponse> AdminApi::removeMember(const RequestContext& context) {
  Result<store::Organization> organization = findCallerOrganization(context, context.params[0]);
  if (!organization) {
    return std::unexpected(organization.error());
  }
  const std::string& user_id = context.params[1];
  Result<std::vector<store::Membership>> members = store_.listMembers(organization->id);
  if (!members) {
    return std::unexpected(members.error());
  }
  auto current = std::find_if(members->begin(), members->end(),
                              [&](const store::Membership& m) { return m.user_id == user_id; });
  if (current == members->end()) {
    return fail(ErrorCode::kNotFound, "member " + user_id + " not found");
  }
  if (current->role == "owner" && context.admin_key.role != "owner") {
    return fail(ErrorCode::kForbidden, "only an owner can remove an owner");
  }
  if (auto removed = store_.removeMembership(organization->id, user_id); !removed) {
    return std::unexpected(removed.error());
  }
  ApiResponse response;
  response.status = 204;
  response.content_type.clear();
  return response;
}

Result<ApiResponse> AdminApi::setUserOperator(const RequestContext& context) {
  const std::string& user_id = context.params[0];
  if (Result<store::User> user = store_.getUser(user_id); !user) {
    return std::unexpected(user.error());
  }
  Result<boost::json::object> body = parseObjectBody(context.request.body);
  if (!body) {
    return std::unexpected(body.error());
  }
  if (auto known = rejectUnknownMembers(*body, {"operator"}); !known) {
    return std::unexpected(known.error());
  }
  const boost::json::value* value = body->if_contains("operator");
  if (value == nullptr || !value->is_bool()) {
    return fail(ErrorCode::kInvalidRequest, "\"operator\" must be true or false");
  }
  // Taking away one's own flag could leave the installation without an operator.
  if (user_id == context.user_id && !value->as_bool()) {
    return fail(ErrorCode::kConflict,
                "you cannot take away your own operator flag; ask another operator");
  }
  Result<store::User> user = store_.setUserOperator(user_id, value->as_bool());
  if (!user) {
    if (user.error().code == ErrorCode::kNotFound) {
      return fail(ErrorCode::kNotFound, "user " + user_id + " not found");
    }
    return std::unexpected(user.error());
  }
  boost::json::object rendered = renderUser(*user);
  rendered["created_at"] = formatRfc3339(user->created_at);
  return jsonResponse(200, rendered);
}

Result<void> AdminApi::appendSignInEntries(const RequestContext& context,
                                           const std::string& user_id, std::string_view action,
                                           const std::string& session_id) {
  Result<std::vector<store::Membership>> memberships = store_.listUserMemberships(user_id);
  if (!memberships) {
    return std::unexpected(memberships.error());
  }
  for (const store::Membership& membership : *memberships) {
    store::AuditEntry entry;
    entry.organization_id = membership.organization_id;
    entry.time = context.now;
    entry.actor = user_id;
    entry.actor_kind = "user";
    entry.action = std::string(action);
    entry.target = session_id.empty() ? user_id : session_id;
    entry.source_address = context.request.remote_address;
    entry.request_id = context.request.request_id;
    entry.details = "{}";
    if (auto appended = store_.appendAudit(entry); !appended) {
      return std::unexpected(appended.error());
    }
  }
  return {};
}

}  // namespace keystore::admin
