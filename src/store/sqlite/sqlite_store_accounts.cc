// Users, memberships and sessions of SqliteStore.
#include <algorithm>
#include <cctype>

#include "common/clock.h"
#include "common/random.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::collectRows;
using sqlite::describeInvalid;
using sqlite::NullIfZero;
using sqlite::Statement;
using sqlite::violates;

constexpr std::string_view kUserColumns =
    "id, email, password_hash, operator, created_at, disabled_at";
constexpr std::string_view kSessionColumns =
    "id, token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at, revoked_at, "
    "source_address";
// Memberships joined with their organization's name and their user's email.
constexpr std::string_view kMembershipSelect =
    "SELECT m.organization_id, m.user_id, m.role, m.created_at, o.name, u.email "
    "FROM memberships m JOIN organizations o ON o.id = m.organization_id "
    "JOIN users u ON u.id = m.user_id ";

std::string lowerCase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

User readUser(const Statement& row) {
  return User{.id = row.text(0),
              .email = row.text(1),
              .password_hash = row.text(2),
              .is_operator = row.int64(3) != 0,
              .created_at = row.int64(4),
              .disabled_at = row.int64(5)};
}

Session readSession(const Statement& row) {
  return Session{.id = row.text(0),
                 .token_hash = row.text(1),
                 .user_id = row.text(2),
                 .csrf_token = row.text(3),
                 .created_at = row.int64(4),
                 .expires_at = row.int64(5),
                 .last_seen_at = row.int64(6),
                 .revoked_at = row.int64(7),
                 .source_address = row.text(8)};
}

Membership readMembership(const Statement& row) {
  return Membership{.organization_id = row.text(0),
                    .user_id = row.text(1),
                    .role = row.text(2),
                    .created_at = row.int64(3),
                    .organization_name = row.text(4),
                    .user_email = row.text(5)};
}

bool isRole(const std::string& role) {
  return role == "owner" || role == "admin" || role == "member" || role == "viewer";
}

// Reads one row of `statement` with `reader`, or kNotFound with `missing`.
template <typename Reader>
auto readOne(Result<Statement> statement, Reader reader, const std::string& missing)
    -> Result<decltype(reader(*statement))> {
  if (!statement) {
    return std::unexpected(statement.error());
  }
  auto row = statement->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  if (!*row) {
    return fail(ErrorCode::kNotFound, missing);
  }
  return reader(*statement);
}

}  // namespace

Result<User> SqliteStore::insertUserLocked(const User& user) {
  User stored = user;
  if (stored.id.empty()) {
    stored.id = newId("usr");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  stored.email = lowerCase(stored.email);

  auto inserted = connection_->run(
      "INSERT INTO users (" + std::string(kUserColumns) + ") VALUES (?, ?, ?, ?, ?, ?)", stored.id,
      stored.email, stored.password_hash, int64_t{stored.is_operator ? 1 : 0}, stored.created_at,
      NullIfZero{stored.disabled_at});
  if (!inserted) {
    const Error& error = inserted.error();
    if (error.code == ErrorCode::kConflict && violates(error, "users.email")) {
      return fail(ErrorCode::kConflict, "a user with that email already exists");
    }
    if (error.code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict, "a user with id '" + stored.id + "' already exists");
    }
    return std::unexpected(describeInvalid(error, "user"));
  }
  return stored;
}

Result<Membership> SqliteStore::insertMembershipLocked(const Membership& membership) {
  if (!isRole(membership.role)) {
    return fail(ErrorCode::kInvalidRequest,
                "role must be \"owner\", \"admin\", \"member\" or \"viewer\"");
  }
  KS_RETURN_IF_ERROR(requireOrganization(membership.organization_id));
  Membership stored = membership;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  auto inserted = connection_->run(
      "INSERT INTO memberships (organization_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
      stored.organization_id, stored.user_id, stored.role, stored.created_at);
  if (!inserted) {
    const Error& error = inserted.error();
    if (error.code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict, "user " + stored.user_id +
                                            " is already a member of organization " +
                                            stored.organization_id);
    }
    if (error.code == ErrorCode::kNotFound) {
      return fail(ErrorCode::kNotFound, "user " + stored.user_id + " not found");
    }
    return std::unexpected(describeInvalid(error, "membership"));
  }
  return getMembershipLocked(stored.organization_id, stored.user_id);
}

Result<Membership> SqliteStore::getMembershipLocked(const std::string& organization_id,
                                                    const std::string& user_id) {
  return readOne(connection_->query(std::string(kMembershipSelect) +
                                        "WHERE m.organization_id = ? AND m.user_id = ?",
                                    organization_id, user_id),
                 readMembership,
                 "user " + user_id + " is not a member of organization " + organization_id);
}

Result<int64_t> SqliteStore::countOwnersLocked(const std::string& organization_id) {
  auto statement = connection_->query(
      "SELECT count(*) FROM memberships WHERE organization_id = ? AND role = 'owner'",
      organization_id);
  if (!statement) {
    return std::unexpected(statement.error());
  }
  auto row = statement->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  return statement->int64(0);
}

Result<User> SqliteStore::createUser(const User& user) {
  return write([&] { return insertUserLocked(user); });
}

Result<User> SqliteStore::getUser(const std::string& user_id) {
  return read([&] {
    return readOne(connection_->query(
                       "SELECT " + std::string(kUserColumns) + " FROM users WHERE id = ?", user_id),
                   readUser, "user " + user_id + " not found");
  });
}

Result<std::optional<User>> SqliteStore::findUserByEmail(const std::string& email) {
  return read([&]() -> Result<std::optional<User>> {
    Result<User> user = readOne(
        connection_->query("SELECT " + std::string(kUserColumns) + " FROM users WHERE email = ?",
                           lowerCase(email)),
        readUser, "");
    if (!user && user.error().code == ErrorCode::kNotFound) {
      return std::nullopt;
    }
    if (!user) {
      return std::unexpected(user.error());
    }
    return std::move(*user);
  });
}

Result<void> SqliteStore::setUserPassword(const std::string& user_id,
                                          const std::string& password_hash) {
  return write([&]() -> Result<void> {
    KS_RETURN_IF_ERROR(connection_->run("UPDATE users SET password_hash = ? WHERE id = ?",
                                        password_hash, user_id));
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "user " + user_id + " not found");
    }
    return {};
  });
}

Result<User> SqliteStore::setUserOperator(const std::string& user_id, bool is_operator) {
  return write([&]() -> Result<User> {
    KS_RETURN_IF_ERROR(connection_->run("UPDATE users SET operator = ? WHERE id = ?",
                                        int64_t{is_operator ? 1 : 0}, user_id));
    return readOne(connection_->query(
                       "SELECT " + std::string(kUserColumns) + " FROM users WHERE id = ?", user_id),
                   readUser, "user " + user_id + " not found");
  });
}

Result<Organization> SqliteStore::createOrganizationWithOwner(const Organization& organization,
                                                              const std::string& owner_user_id,
                                                              int64_t now) {
  Organization stored = organization;
  if (stored.id.empty()) {
    stored.id = newId("org");
  }
  if (stored.created_at == 0) {
    stored.created_at = now;
  }
  return write([&]() -> Result<Organization> {
    auto inserted =
        connection_->run("INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
                         stored.id, stored.name, stored.created_at);
    if (!inserted) {
      const Error& error = inserted.error();
      if (error.code == ErrorCode::kConflict && violates(error, "organizations.name")) {
        return fail(ErrorCode::kConflict,
                    "an organization named '" + stored.name + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "organization"));
    }
    Membership owner;
    owner.organization_id = stored.id;
    owner.user_id = owner_user_id;
    owner.role = "owner";
    owner.created_at = now;
    KS_RETURN_IF_ERROR(insertMembershipLocked(owner));
    return stored;
  });
}

Result<Membership> SqliteStore::addMembership(const Membership& membership) {
  return write([&] { return insertMembershipLocked(membership); });
}

Result<Membership> SqliteStore::createUserWithMembership(const User& user,
                                                         const Membership& membership) {
  return write([&]() -> Result<Membership> {
    Result<User> created = insertUserLocked(user);
    if (!created) {
      return std::unexpected(created.error());
    }
    Membership first = membership;
    first.user_id = created->id;
    return insertMembershipLocked(first);
  });
}

Result<std::vector<Membership>> SqliteStore::listUserMemberships(const std::string& user_id) {
  return read([&] {
    return collectRows(
        connection_->query(std::string(kMembershipSelect) +
                               "WHERE m.user_id = ? ORDER BY m.created_at, m.rowid",
                           user_id),
        readMembership);
  });
}

Result<std::vector<Membership>> SqliteStore::listMembers(const std::string& organization_id) {
  return read([&] {
    return collectRows(
        connection_->query(std::string(kMembershipSelect) +
                               "WHERE m.organization_id = ? ORDER BY m.created_at, m.rowid",
                           organization_id),
        readMembership);
  });
}

Result<Membership> SqliteStore::updateMembershipRole(const std::string& organization_id,
                                                     const std::string& user_id,
                                                     const std::string& role) {
  if (!isRole(role)) {
    return fail(ErrorCode::kInvalidRequest,
                "role must be \"owner\", \"admin\", \"member\" or \"viewer\"");
  }
  return write([&]() -> Result<Membership> {
    Result<Membership> current = getMembershipLocked(organization_id, user_id);
    if (!current) {
      return current;
    }
    if (current->role == "owner" && role != "owner") {
      Result<int64_t> owners = countOwnersLocked(organization_id);
      if (!owners) {
        return std::unexpected(owners.error());
      }
      if (*owners <= 1) {
        return fail(ErrorCode::kConflict,
                    "user " + user_id + " is the last owner of organization " + organization_id +
                        "; make another member owner first");
      }
    }
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE memberships SET role = ? WHERE organization_id = ? AND user_id = ?", role,
        organization_id, user_id));
    return getMembershipLocked(organization_id, user_id);
  });
}

Result<void> SqliteStore::removeMembership(const std::string& organization_id,
                                           const std::string& user_id) {
  return write([&]() -> Result<void> {
    Result<Membership> current = getMembershipLocked(organization_id, user_id);
    if (!current) {
      return std::unexpected(current.error());
    }
    if (current->role == "owner") {
      Result<int64_t> owners = countOwnersLocked(organization_id);
      if (!owners) {
        return std::unexpected(owners.error());
      }
      if (*owners <= 1) {
        return fail(ErrorCode::kConflict,
                    "user " + user_id + " is the last owner of organization " + organization_id +
                        "; make another member owner first");
      }
    }
    return connection_->run("DELETE FROM memberships WHERE organization_id = ? AND user_id = ?",
                            organization_id, user_id);
  });
}

Result<Session> SqliteStore::createSession(const Session& session) {
  Session stored = session;
  if (stored.id.empty()) {
    stored.id = newId("ses");
  }
  return write([&]() -> Result<Session> {
    auto inserted =
        connection_->run("INSERT INTO sessions (" + std::string(kSessionColumns) +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         stored.id, stored.token_hash, stored.user_id, stored.csrf_token,
                         stored.created_at, stored.expires_at, stored.last_seen_at,
                         NullIfZero{stored.revoked_at}, stored.source_address);
    if (!inserted) {
      const Error& error = inserted.error();
      if (error.code == ErrorCode::kNotFound) {
        return fail(ErrorCode::kNotFound, "user " + stored.user_id + " not found");
      }
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, "a session with the same id or token hash exists");
      }
      return std::unexpected(describeInvalid(error, "session"));
    }
    return stored;
  });
}

Result<std::optional<Session>> SqliteStore::findSessionByHash(const std::string& token_hash) {
  return read([&]() -> Result<std::optional<Session>> {
    Result<Session> session = readOne(connection_->query("SELECT " + std::string(kSessionColumns) +
                                                             " FROM sessions WHERE token_hash = ?",
                                                         token_hash),
                                      readSession, "");
    if (!session && session.error().code == ErrorCode::kNotFound) {
      return std::nullopt;
    }
    if (!session) {
      return std::unexpected(session.error());
    }
    return std::move(*session);
  });
}

Result<void> SqliteStore::touchSession(const std::string& session_id, int64_t now) {
  return write([&] {
    return connection_->run(
        "UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1", now,
        session_id);
  });
}

Result<void> SqliteStore::revokeSession(const std::string& session_id, int64_t now) {
  return write([&]() -> Result<void> {
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, session_id));
    auto found = exists("SELECT 1 FROM sessions WHERE id = ?", session_id);
    if (!found) {
      return std::unexpected(found.error());
    }
    if (!*found) {
      return fail(ErrorCode::kNotFound, "session " + session_id + " not found");
    }
    return {};
  });
}

Result<size_t> SqliteStore::revokeUserSessions(const std::string& user_id,
                                               const std::string& keep_session_id, int64_t now) {
  return write([&]() -> Result<size_t> {
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND id <> ? AND revoked_at IS NULL",
        now, user_id, keep_session_id));
    return static_cast<size_t>(connection_->changes());
  });
}

}  // namespace keystore::store
