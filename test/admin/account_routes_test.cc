// Sign-in, sessions, CSRF, organizations, members, the permission table and the role matrix.
#include <algorithm>

#include "accounts/password.h"
#include "accounts/session_token.h"
#include "admin/permissions.h"
#include "admin_fixture.h"

namespace keystore::admin {
namespace {

constexpr std::string_view kPassword = "correct horse battery";

class AccountRoutesTest : public AdminApiTest {
 protected:
  // Creates a user with kPassword and a membership, and returns the user id.
  std::string createUser(const std::string& email, const std::string& organization_id,
                         const std::string& role, bool is_operator = false) {
    static const std::string hash = *accounts::hashPassword(Secret(std::string(kPassword)));
    store::User user;
    user.email = email;
    user.password_hash = hash;
    user.is_operator = is_operator;
    store::Membership membership;
    membership.organization_id = organization_id;
    membership.role = role;
    auto created = store_->createUserWithMembership(user, membership);
    EXPECT_TRUE(created.has_value()) << (created ? "" : created.error().message);
    return created ? created->user_id : "";
  }

  // Stores a session for the user and returns its token, without a password check.
  std::string createSession(const std::string& user_id, int64_t created_at = 0,
                            int64_t expires_at = 0, std::string csrf = "csrf-test") {
    int64_t now = nowUnixMillis();
    std::string token(accounts::generateSessionToken().reveal());
    store::Session session;
    session.token_hash = accounts::hashSessionToken(token);
    session.user_id = user_id;
    session.csrf_token = std::move(csrf);
    session.created_at = created_at != 0 ? created_at : now;
    session.last_seen_at = session.created_at;
    session.expires_at = expires_at != 0 ? expires_at : now + 3600'000;
    session.source_address = "127.0.0.1";
    EXPECT_TRUE(store_->createSession(session).has_value());
    return token;
  }

  CallResult send(ApiRequest request) {
    if (request.request_id.empty()) {
      request.request_id = "req_test";
    }
    if (request.remote_address.empty()) {
      request.remote_address = "127.0.0.1";
    }
    CallResult result{api_->handle(request), nullptr};
    boost::system::error_code error;
    boost::json::value parsed = boost::json::parse(result.response.body, error);
    if (!error) {
      result.json = std::move(parsed);
    }
    return result;
  }

  CallResult login(const std::string& email, std::string_view password,
                   const std::string& client = "", const std::string& address = "127.0.0.1") {
    boost::json::object body{{"email", email}, {"password", password}};
    if (!client.empty()) {
      body["client"] = client;
    }
    ApiRequest request;
    request.method = "POST";
    request.target = "/api/v1/auth/login";
    request.body = boost::json::serialize(body);
    request.remote_address = address;
    return send(request);
  }

  CallResult withCookie(const std::string& token, const std::string& method,
                        const std::string& target, const std::string& body = "",
                        const std::string& csrf = "", const std::string& organization = "") {
    ApiRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    request.cookie = "theme=dark; ks_session=" + token;
    request.csrf_token = csrf;
    request.organization = organization;
    return send(request);
  }
};

TEST(PermissionTableTest, EveryRouteHasOneEntry) {
  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    const RoutePermission* permission = findRoutePermission(route.method, route.path);
    ASSERT_NE(permission, nullptr) << route.method << " " << route.path;
    EXPECT_EQ(permission->access == Access::kPublic,
              !route.needs_key || route.path == "/api/v1/auth/logout")
        << route.method << " " << route.path;
  }
  EXPECT_EQ(routePermissions().size(), AdminApi::routeTable().size());
}

TEST(PermissionTableTest, ViewerCannotWrite) {
  store::AdminKey viewer;
  viewer.id = "ksak_v";
  viewer.role = "viewer";
  viewer.organization_id = "org_a";
  for (const RoutePermission& permission : routePermissions()) {
    if (permission.method != "GET" && permission.access >= Access::kViewer) {
      EXPECT_FALSE(checkAccess(permission, viewer).has_value()) << permission.path;
    }
  }
}

TEST_F(AccountRoutesTest, LoginSetsCookieAndReturnsSession) {
  std::string user_id = createUser("Alice@Example.test", org_a_, "admin");
  CallResult result = login("alice@example.TEST", kPassword);
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/user/id"), user_id);
  EXPECT_EQ(result.str("/user/email"), "alice@example.test");
  EXPECT_EQ(result.str("/memberships/0/organization_id"), org_a_);
  EXPECT_EQ(result.str("/memberships/0/organization_name"), "org-a");
  EXPECT_EQ(result.str("/memberships/0/role"), "admin");
  EXPECT_EQ(result.str("/csrf_token").size(), 64u);
  EXPECT_FALSE(result.str("/expires_at").empty());
  EXPECT_EQ(result.json.as_object().count("session_token"), 0u);

  std::string cookie = result.header("Set-Cookie");
  ASSERT_TRUE(cookie.starts_with("ks_session=kss_")) << cookie;
  EXPECT_TRUE(cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/")) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);

  CallResult cli = login("alice@example.test", kPassword, "cli");
  ASSERT_EQ(cli.response.status, 200);
  EXPECT_TRUE(accounts::isSessionTokenShaped(cli.str("/session_token")));
}

TEST_F(AccountRoutesTest, SignInsAreAudited) {
  std::string user_id = createUser("alice@example.test", org_a_, "admin");
  ASSERT_EQ(login("alice@example.test", "not the password at all").response.status, 401);
  ASSERT_EQ(login("nobody@example.test", kPassword).response.status, 401);
  CallResult signed_in = login("alice@example.test", kPassword, "cli");
  ASSERT_EQ(signed_in.response.status, 200);
  std::string token = signed_in.str("/session_token");
  ASSERT_EQ(callWithKey(token, "POST", "/api/v1/auth/logout").response.status, 204);

  store::AuditQuery query;
  query.organization_id = org_a_;
  auto entries = store_->listAudit(query);
  ASSERT_TRUE(entries);
  std::vector<std::string> actions;
  for (const store::AuditEntry& entry : *entries) {
    if (entry.action.starts_with("auth.")) {
      actions.push_back(entry.action);
      EXPECT_EQ(entry.actor, user_id);
      EXPECT_EQ(entry.actor_kind, "user");
      EXPECT_EQ(entry.details.find(kPassword), std::string::npos);
      EXPECT_EQ(entry.details.find(token), std::string::npos);
    }
  }
  // Newest first; the unknown email belongs to no organization and leaves no entry.
  EXPECT_EQ(actions, (std::vector<std::string>{"auth.logout", "auth.login", "auth.login_failed"}));
}

TEST_F(AccountRoutesTest, UnknownEmailAnswersLikeWrongPassword) {
  createUser("alice@example.test", org_a_, "owner");
  CallResult wrong = login("alice@example.test", "not the password at all");
  CallResult unknown = login("nobody@example.test", "not the password at all");
  EXPECT_EQ(wrong.response.status, 401);
  EXPECT_EQ(wrong.errorCode(), "invalid_credentials");
  EXPECT_EQ(wrong.response.body, unknown.response.body);
  EXPECT_EQ(wrong.response.headers, unknown.response.headers);
}

TEST_F(AccountRoutesTest, FailedLoginsThrottled) {
  createUser("alice@example.test", org_a_, "owner");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(login("alice@example.test", "wrong password " + std::to_string(i)).response.status,
              401);
  }
  CallResult blocked = login("alice@example.test", kPassword, "", "10.0.0.7");
  EXPECT_EQ(blocked.response.status, 429);
  EXPECT_EQ(blocked.errorCode(), "rate_limited");
  EXPECT_EQ(blocked.header("Retry-After"), "900");
  EXPECT_EQ(login("bob@example.test", kPassword, "", "10.0.0.7").response.status, 401);
}

TEST_F(AccountRoutesTest, CookieChangesNeedCsrfHeader) {
  std::string user_id = createUser("alice@example.test", org_a_, "admin");
  std::string token = createSession(user_id, 0, 0, std::string(64, 'c'));
  CallResult read = withCookie(token, "GET", "/api/v1/projects");
  EXPECT_EQ(read.response.status, 200);

  CallResult missing = withCookie(token, "POST", "/api/v1/projects", R"({"name":"demo"})");
  EXPECT_EQ(missing.response.status, 403);
  EXPECT_EQ(missing.errorCode(), "csrf_failed");
  CallResult wrong =
      withCookie(token, "POST", "/api/v1/projects", R"({"name":"demo"})", std::string(64, 'd'));
  EXPECT_EQ(wrong.errorCode(), "csrf_failed");
  CallResult ok =
      withCookie(token, "POST", "/api/v1/projects", R"({"name":"demo"})", std::string(64, 'c'));
  EXPECT_EQ(ok.response.status, 201) << ok.response.body;

  // A bearer session is not sent by browsers on their own, so it needs no CSRF header.
  CallResult bearer = callWithKey(token, "POST", "/api/v1/projects", R"({"name":"demo2"})");
  EXPECT_EQ(bearer.response.status, 201) << bearer.response.body;
}

TEST_F(AccountRoutesTest, SessionEndsWhenIdleOrExpired) {
  std::string user_id = createUser("alice@example.test", org_a_, "viewer");
  int64_t now = nowUnixMillis();
  std::string idle = createSession(user_id, now - 3 * 3600'000, now + 3600'000);
  std::string expired = createSession(user_id, now - 60'000, now - 1);
  std::string live = createSession(user_id);
  for (const std::string& token : {idle, expired}) {
    CallResult result = withCookie(token, "GET", "/api/v1/auth/session");
    EXPECT_EQ(result.response.status, 401);
    EXPECT_EQ(result.errorCode(), "unauthenticated");
  }
  CallResult session = withCookie(live, "GET", "/api/v1/auth/session");
  EXPECT_EQ(session.response.status, 200);
  EXPECT_EQ(session.str("/user/id"), user_id);
  EXPECT_EQ(session.str("/csrf_token"), "csrf-test");
}

TEST_F(AccountRoutesTest, LogoutRevokesSession) {
  std::string user_id = createUser("alice@example.test", org_a_, "viewer");
  std::string token = createSession(user_id);
  EXPECT_EQ(withCookie(token, "POST", "/api/v1/auth/logout").errorCode(), "csrf_failed");
  CallResult out = withCookie(token, "POST", "/api/v1/auth/logout", "", "csrf-test");
  EXPECT_EQ(out.response.status, 204);
  EXPECT_EQ(out.header("Set-Cookie"), "ks_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
  EXPECT_EQ(withCookie(token, "GET", "/api/v1/projects").response.status, 401);
  EXPECT_EQ(callWithKey("", "GET", "/api/v1/auth/session").response.status, 401);
}

TEST_F(AccountRoutesTest, OrganizationHeaderSelectsMembership) {
  std::string user_id = createUser("alice@example.test", org_a_, "viewer");
  ASSERT_TRUE(store_->addMembership(store::Membership{org_b_, user_id, "admin", 0, "", ""}));
  std::string token = createSession(user_id);

  CallResult in_a = withCookie(token, "POST", "/api/v1/projects", R"({"name":"p"})", "csrf-test");
  EXPECT_EQ(in_a.response.status, 403);
  CallResult in_b =
      withCookie(token, "POST", "/api/v1/projects", R"({"name":"p"})", "csrf-test", org_b_);
  ASSERT_EQ(in_b.response.status, 201) << in_b.response.body;
  EXPECT_EQ(in_b.str("/organization_id"), org_b_);

  std::string stranger = createOrganization("org-c");
  CallResult other = withCookie(token, "GET", "/api/v1/projects", "", "", stranger);
  EXPECT_EQ(other.response.status, 403);
  EXPECT_EQ(other.errorCode(), "forbidden");
}

TEST_F(AccountRoutesTest, LastOwnerKept) {
  std::string owner = createUser("owner@example.test", org_a_, "owner");
  std::string admin = createUser("admin@example.test", org_a_, "admin");
  std::string owner_token = createSession(owner);
  std::string admin_token = createSession(admin);
  std::string members = "/api/v1/organizations/" + org_a_ + "/members/";

  CallResult demote = callWithKey(owner_token, "PATCH", members + owner, R"({"role":"admin"})");
  EXPECT_EQ(demote.response.status, 409);
  EXPECT_EQ(demote.errorCode(), "conflict");
  EXPECT_EQ(callWithKey(owner_token, "DELETE", members + owner).response.status, 409);

  CallResult grant = callWithKey(admin_token, "PATCH", members + admin, R"({"role":"owner"})");
  EXPECT_EQ(grant.response.status, 403);
  CallResult remove_owner = callWithKey(admin_token, "DELETE", members + owner);
  EXPECT_EQ(remove_owner.response.status, 403);

  CallResult promote = callWithKey(owner_token, "PATCH", members + admin, R"({"role":"owner"})");
  EXPECT_EQ(promote.response.status, 200);
  EXPECT_EQ(promote.str("/role"), "owner");
  EXPECT_EQ(callWithKey(owner_token, "DELETE", members + owner).response.status, 204);
  auto left = store_->listMembers(org_a_);
  ASSERT_TRUE(left.has_value());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().user_id, admin);
}

TEST_F(AccountRoutesTest, AddMemberCreatesOrLinksUser) {
  std::string owner = createUser("owner@example.test", org_a_, "owner");
  std::string token = createSession(owner);
  std::string path = "/api/v1/organizations/" + org_a_ + "/members";
  CallResult no_password =
      callWithKey(token, "POST", path, R"({"email":"new@x.test","role":"member"})");
  EXPECT_EQ(no_password.response.status, 400);
  CallResult added = callWithKey(
      token, "POST", path, R"({"email":"new@x.test","role":"member","password":"long enough pw"})");
  ASSERT_EQ(added.response.status, 201) << added.response.body;
  EXPECT_EQ(added.json.at("created_user").as_bool(), true);
  EXPECT_EQ(login("new@x.test", "long enough pw").response.status, 200);

  CallResult again = callWithKey(token, "POST", path, R"({"email":"NEW@x.test","role":"viewer"})");
  EXPECT_EQ(again.response.status, 409);
  CallResult into_b = callWithKey(token, "POST", "/api/v1/organizations/" + org_b_ + "/members",
                                  R"({"email":"new@x.test","role":"viewer"})");
  EXPECT_EQ(into_b.response.status, 404);
}

TEST_F(AccountRoutesTest, CreateOrganizationMakesOwner) {
  std::string user_id = createUser("alice@example.test", org_a_, "viewer");
  std::string token = createSession(user_id);
  CallResult created = callWithKey(token, "POST", "/api/v1/organizations", R"({"name":"acme"})");
  ASSERT_EQ(created.response.status, 201) << created.response.body;
  EXPECT_EQ(created.str("/role"), "owner");
  CallResult list = callWithKey(token, "GET", "/api/v1/organizations");
  ASSERT_EQ(list.json.at("data").as_array().size(), 2u);
  EXPECT_EQ(list.str("/data/1/name"), "acme");
  EXPECT_EQ(callWithKey(key_a_, "POST", "/api/v1/organizations", R"({"name":"x"})").response.status,
            403);
}

TEST_F(AccountRoutesTest, PasswordChangeRevokesOtherSessions) {
  std::string user_id = createUser("alice@example.test", org_a_, "viewer");
  std::string current = createSession(user_id);
  std::string other = createSession(user_id);
  CallResult wrong =
      callWithKey(current, "POST", "/api/v1/auth/password",
                  R"({"current_password":"nope nope nope","new_password":"a new long password"})");
  EXPECT_EQ(wrong.errorCode(), "invalid_credentials");
  CallResult changed = callWithKey(
      current, "POST", "/api/v1/auth/password",
      R"({"current_password":"correct horse battery","new_password":"a new long password"})");
  EXPECT_EQ(changed.response.status, 204) << changed.response.body;
  EXPECT_EQ(callWithKey(other, "GET", "/api/v1/projects").response.status, 401);
  EXPECT_EQ(callWithKey(current, "GET", "/api/v1/projects").response.status, 200);
  EXPECT_EQ(login("alice@example.test", "a new long password").response.status, 200);
}

TEST_F(AccountRoutesTest, OperatorFlagNeedsOperator) {
  std::string op = createUser("op@example.test", org_a_, "owner", true);
  std::string plain = createUser("plain@example.test", org_a_, "owner");
  std::string plain_token = createSession(plain);
  std::string op_token = createSession(op);
  EXPECT_EQ(callWithKey(plain_token, "POST", "/api/v1/users/" + plain + "/operator",
                        R"({"operator":true})")
                .response.status,
            403);
  CallResult granted =
      callWithKey(op_token, "POST", "/api/v1/users/" + plain + "/operator", R"({"operator":true})");
  EXPECT_EQ(granted.response.status, 200);
  EXPECT_EQ(granted.json.at("is_operator").as_bool(), true);
  EXPECT_EQ(callWithKey(plain_token, "GET", "/api/v1/pools").response.status, 200);
}

// Every route, called by each kind of caller: the permission table decides 403 or not.
TEST_F(AccountRoutesTest, RoleMatrixFollowsPermissionTable) {
  std::string project_a = createProject("alpha");
  createProject("beta");
  auto authorityOf = [this](const std::string& role, bool is_operator) {
    store::AdminKey authority;
    authority.role = role;
    authority.organization_id = org_a_;
    authority.is_operator = is_operator;
    return authority;
  };
  std::map<std::string, store::AdminKey> callers;
  std::map<std::string, std::string> tokens;
  for (const std::string role : {"viewer", "member", "admin", "owner"}) {
    std::string user_id = createUser(role + "@example.test", org_a_, role);
    tokens[role] = createSession(user_id);
    callers[role] = authorityOf(role, false);
  }
  std::string op_user = createUser("operator@example.test", org_a_, "owner", true);
  tokens["operator"] = createSession(op_user);
  callers["operator"] = authorityOf("owner", true);

  // An owner key limited to project alpha.
  Secret limited = tokens::generateAdminKey();
  store::AdminKey record;
  record.key_hash = tokens::hashToken(limited.reveal());
  record.name = "limited";
  record.role = "owner";
  record.organization_id = org_a_;
  record.project_id = project_a;
  ASSERT_TRUE(store_->createAdminKey(record));
  tokens["project_key"] = std::string(limited.reveal());
  callers["project_key"] = record;

  for (const AdminApi::RouteInfo& route : AdminApi::routeTable()) {
    if (!route.needs_key) {
      continue;
    }
    std::string target(route.path);
    for (size_t at = target.find("{}"); at != std::string::npos; at = target.find("{}")) {
      target.replace(at, 2, "none");
    }
    const RoutePermission* permission = findRoutePermission(route.method, route.path);
    ASSERT_NE(permission, nullptr);
    for (const auto& [name, authority] : callers) {
      bool allowed = checkAccess(*permission, authority).has_value();
      CallResult result = callWithKey(tokens[name], std::string(route.method), target, "{}");
      EXPECT_NE(result.response.status, 401) << name << " " << route.method << " " << target;
      if (allowed) {
        EXPECT_NE(result.response.status, 403)
            << name << " " << route.method << " " << target << ": " << result.response.body;
      } else {
        EXPECT_EQ(result.response.status, 403) << name << " " << route.method << " " << target;
        EXPECT_EQ(result.errorCode(), "forbidden") << name << " " << route.method << " " << target;
      }
    }
  }
}

// Objects of another organization, or of another project for a limited key, read as missing.
TEST_F(AccountRoutesTest, ForeignObjectsNotFound) {
  std::string project_a = createProject("alpha");
  std::string agent_a = createAgent("alpha", "bot");
  CallResult token = call("POST", "/api/v1/agents/" + agent_a + "/tokens", "{}");
  ASSERT_EQ(token.response.status, 201) << token.response.body;
  std::string token_a = token.str("/id");
  CallResult concierge =
      call("POST", "/api/v1/projects/alpha/concierge", R"({"provider":"openai"})");

  std::string owner_b = createUser("owner-b@example.test", org_b_, "owner");
  std::string session_b = createSession(owner_b);
  createProject("gamma");
  Secret limited = tokens::generateAdminKey();
  store::AdminKey record;
  record.key_hash = tokens::hashToken(limited.reveal());
  record.name = "limited";
  record.role = "owner";
  record.organization_id = org_a_;
  record.project_id = store_->findProject(org_a_, "gamma")->id;
  ASSERT_TRUE(store_->createAdminKey(record));

  const std::vector<std::pair<std::string, std::string>> targets = {
      {"GET", "/api/v1/projects/" + project_a},
      {"PATCH", "/api/v1/projects/" + project_a},
      {"GET", "/api/v1/projects/" + project_a + "/ledger"},
      {"GET", "/api/v1/projects/" + project_a + "/usage"},
      {"GET", "/api/v1/projects/" + project_a + "/invoices/2026-01"},
      {"GET", "/api/v1/projects/" + project_a + "/providers"},
      {"GET", "/api/v1/projects/" + project_a + "/providers/openai"},
      {"PATCH", "/api/v1/projects/" + project_a + "/providers/openai"},
      {"PUT", "/api/v1/projects/" + project_a + "/providers/openai/key"},
      {"GET", "/api/v1/projects/" + project_a + "/agents"},
      {"POST", "/api/v1/projects/" + project_a + "/agents"},
      {"GET", "/api/v1/agents/" + agent_a},
      {"PATCH", "/api/v1/agents/" + agent_a},
      {"GET", "/api/v1/agents/" + agent_a + "/tokens"},
      {"POST", "/api/v1/agents/" + agent_a + "/tokens"},
      {"GET", "/api/v1/tokens/" + token_a},
      {"PATCH", "/api/v1/tokens/" + token_a},
      {"DELETE", "/api/v1/tokens/" + token_a},
      {"POST", "/api/v1/tokens/" + token_a + "/revoke"},
      {"GET", "/api/v1/projects/" + project_a + "/concierge"},
      {"POST", "/api/v1/projects/" + project_a + "/concierge"},
      {"GET", "/api/v1/organizations/" + org_a_ + "/members"},
      {"POST", "/api/v1/organizations/" + org_a_ + "/members"},
  };
  for (const auto& [method, target] : targets) {
    CallResult other_org = callWithKey(session_b, method, target, "{}");
    EXPECT_EQ(other_org.response.status, 404)
        << method << " " << target << " " << other_org.response.body;
    if (target.find("/organizations/") != std::string::npos) {
      continue;  // organization routes are closed to project-limited keys altogether
    }
    CallResult other_project = callWithKey(std::string(limited.reveal()), method, target, "{}");
    EXPECT_EQ(other_project.response.status, 404)
        << method << " " << target << " " << other_project.response.body;
  }
  CallResult listed = callWithKey(std::string(limited.reveal()), "GET", "/api/v1/projects");
  ASSERT_EQ(listed.json.at("data").as_array().size(), 1u);
  EXPECT_EQ(listed.str("/data/0/name"), "gamma");
}

}  // namespace
}  // namespace keystore::admin
