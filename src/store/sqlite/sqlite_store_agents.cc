// Agents, agent tokens and admin keys of SqliteStore.
#include <boost/json.hpp>
#include <utility>

#include "common/clock.h"
#include "common/random.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::collectRows;
using sqlite::describeInvalid;
using sqlite::NullIfEmpty;
using sqlite::NullIfZero;
using sqlite::Statement;
using sqlite::violates;

constexpr std::string_view kAgentColumns =
    "id, project_id, name, status, rpm_limit, rpd_limit, created_at, tpm_limit, budget_cents, "
    "budget_warn_percent";
constexpr std::string_view kTokenColumns =
    "id, agent_id, project_id, token_hash, scopes, expires_at, revoked_at, created_at, "
    "last_used_at, models, rotated_from, rotated_to";
constexpr std::string_view kAdminKeyColumns =
    "id, key_hash, name, role, organization_id, expires_at, revoked_at, created_at, operator, "
    "user_id, project_id";

std::string selectFrom(std::string_view columns, std::string_view rest) {
  return "SELECT " + std::string(columns) + " " + std::string(rest);
}

Agent readAgent(const Statement& row) {
  return Agent{.id = row.text(0),
               .project_id = row.text(1),
               .name = row.text(2),
               .status = row.text(3),
               .rpm_limit = row.optionalInt64(4),
               .rpd_limit = row.optionalInt64(5),
               .created_at = row.int64(6),
               .tpm_limit = row.optionalInt64(7),
               .budget_cents = row.optionalInt64(8),
               .budget_warn_percent = row.optionalInt64(9)};
}

// Scopes and models are stored as a JSON array of strings, which represents any text exactly.
std::string encodeStrings(const std::vector<std::string>& strings) {
  boost::json::array array;
  for (const std::string& text : strings) {
    array.emplace_back(text);
  }
  return boost::json::serialize(array);
}

// Returns nullopt when the stored text is not a JSON array of strings.
std::optional<std::vector<std::string>> decodeStrings(const std::string& text) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_array()) {
    return std::nullopt;
  }
  std::vector<std::string> strings;
  for (const boost::json::value& item : value.get_array()) {
    if (!item.is_string()) {
      return std::nullopt;
    }
    strings.emplace_back(item.get_string());
  }
  return strings;
}

Result<AgentToken> readToken(const Statement& row) {
  AgentToken token{.id = row.text(0),
                   .agent_id = row.text(1),
                   .project_id = row.text(2),
                   .token_hash = row.text(3),
                   .scopes = {},
                   .models = {},
                   .expires_at = row.int64(5),
                   .revoked_at = row.int64(6),
                   .created_at = row.int64(7),
                   .last_used_at = row.int64(8),
                   .rotated_from = row.text(10),
                   .rotated_to = row.text(11)};
  auto scopes = decodeStrings(row.text(4));
  if (!scopes) {
    return fail(ErrorCode::kInternal,
                "token '" + token.id + "' has malformed scopes in the database");
  }
  token.scopes = std::move(*scopes);
  auto models = decodeStrings(row.text(9));
  if (!models) {
    return fail(ErrorCode::kInternal,
                "token '" + token.id + "' has malformed models in the database");
  }
  token.models = std::move(*models);
  return token;
}

// Like collectRows, for readers that can fail.
Result<std::vector<AgentToken>> collectTokens(Result<Statement> statement) {
  auto rows = collectRows(std::move(statement), readToken);
  if (!rows) {
    return std::unexpected(rows.error());
  }
  std::vector<AgentToken> tokens;
  tokens.reserve(rows->size());
  for (Result<AgentToken>& token : *rows) {
    if (!token) {
      return std::unexpected(token.error());
    }
    tokens.push_back(std::move(*token));
  }
  return tokens;
}

AdminKey readAdminKey(const Statement& row) {
  return AdminKey{.id = row.text(0),
                  .key_hash = row.text(1),
                  .name = row.text(2),
                  .role = row.text(3),
                  .organization_id = row.text(4),
                  .is_operator = row.int64(8) != 0,
                  .expires_at = row.int64(5),
                  .revoked_at = row.int64(6),
                  .created_at = row.int64(7),
                  .user_id = row.text(9),
                  .project_id = row.text(10)};
}

// The message for a uniqueness violation on an agent's name or id.
Error agentConflict(const Error& error, const Agent& agent) {
  if (violates(error, "agents.name") && agent.project_id.empty()) {
    return Error{ErrorCode::kConflict,
                 "another agent named '" + agent.name + "' already exists in its project"};
  }
  if (violates(error, "agents.name")) {
    return Error{
        ErrorCode::kConflict,
        "an agent named '" + agent.name + "' already exists in project '" + agent.project_id + "'"};
  }
  return Error{ErrorCode::kConflict, "an agent with id '" + agent.id + "' already exists"};
}

}  // namespace

// Agents.

Result<Agent> SqliteStore::createAgent(const Agent& agent) {
  Agent stored = agent;
  if (stored.id.empty()) {
    stored.id = newId("agt");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }

  return write([&]() -> Result<Agent> {
    if (auto found = requireProject(stored.project_id); !found) {
      return std::unexpected(found.error());
    }

    auto inserted =
        connection_->run("INSERT INTO agents (" + std::string(kAgentColumns) +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         stored.id, stored.project_id, stored.name, stored.status, stored.rpm_limit,
                         stored.rpd_limit, stored.created_at, stored.tpm_limit, stored.budget_cents,
                         stored.budget_warn_percent);
    if (!inserted && inserted.error().code == ErrorCode::kConflict) {
      return std::unexpected(agentConflict(inserted.error(), stored));
    }
    if (!inserted) {
      return std::unexpected(describeInvalid(inserted.error(), "agent"));
    }

    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return stored;
  });
}

Result<std::vector<Agent>> SqliteStore::listAgents(const std::string& project_id) {
  return read([&] {
    return collectRows(
        connection_->query(
            selectFrom(kAgentColumns, "FROM agents WHERE project_id = ? ORDER BY created_at, id"),
            project_id),
        readAgent);
  });
}

Result<std::vector<Agent>> SqliteStore::listAllAgents() {
  return read([&] {
    return collectRows(
        connection_->query(selectFrom(kAgentColumns, "FROM agents ORDER BY created_at, id")),
        readAgent);
  });
}

Result<Agent> SqliteStore::findAgent(const std::string& project_id, const std::string& id_or_name) {
  return read([&] { return findAgentLocked(project_id, id_or_name); });
}

Result<Agent> SqliteStore::findAgentLocked(const std::string& project_id,
                                           const std::string& id_or_name) {
  // By id first, within the project when one is given.
  auto by_id = connection_->query(
      selectFrom(kAgentColumns, "FROM agents WHERE id = ?1 AND (?2 = '' OR project_id = ?2)"),
      id_or_name, project_id);
  if (!by_id) {
    return std::unexpected(by_id.error());
  }
  auto row = by_id->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  if (*row) {
    return readAgent(*by_id);
  }

  // Then by name, which is unique only within a project.
  auto by_name = collectRows(
      connection_->query(
          selectFrom(kAgentColumns,
                     "FROM agents WHERE name = ?1 AND (?2 = '' OR project_id = ?2) LIMIT 2"),
          id_or_name, project_id),
      readAgent);
  if (!by_name) {
    return std::unexpected(by_name.error());
  }
  if (by_name->size() > 1) {
    return fail(ErrorCode::kConflict, "agents named '" + id_or_name +
                                          "' exist in several projects; pass --project to "
                                          "choose one");
  }
  if (by_name->empty() && project_id.empty()) {
    return fail(ErrorCode::kNotFound, "agent '" + id_or_name + "' not found");
  }
  if (by_name->empty()) {
    return fail(ErrorCode::kNotFound,
                "agent '" + id_or_name + "' not found in project '" + project_id + "'");
  }
  return std::move(by_name->front());
}

Result<void> SqliteStore::updateAgent(const Agent& agent) {
  return write([&]() -> Result<void> {
    // An agent cannot move to another project, so a non-empty project_id must match.
    auto updated = connection_->run(
        "UPDATE agents SET name = ?1, status = ?2, rpm_limit = ?3, rpd_limit = ?4, "
        "tpm_limit = ?7, budget_cents = ?8, budget_warn_percent = ?9 "
        "WHERE id = ?5 AND (?6 = '' OR project_id = ?6)",
        agent.name, agent.status, agent.rpm_limit, agent.rpd_limit, agent.id, agent.project_id,
        agent.tpm_limit, agent.budget_cents, agent.budget_warn_percent);
    if (!updated && updated.error().code == ErrorCode::kConflict) {
      return std::unexpected(agentConflict(updated.error(), agent));
    }
    if (!updated) {
      return std::unexpected(describeInvalid(updated.error(), "agent"));
    }
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "agent '" + agent.id + "' not found");
    }
    return bumpConfigGeneration();
  });
}

// Agent tokens.

Result<AgentToken> SqliteStore::createToken(const AgentToken& token) {
  AgentToken stored = token;
  if (stored.id.empty()) {
    stored.id = newId("tok");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }

  return write([&]() -> Result<AgentToken> {
    KS_RETURN_IF_ERROR(insertTokenLocked(stored));
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return stored;
  });
}

Result<void> SqliteStore::insertTokenLocked(AgentToken& stored) {
  {
    auto agent = connection_->query("SELECT project_id FROM agents WHERE id = ?", stored.agent_id);
    if (!agent) {
      return std::unexpected(agent.error());
    }
    auto row = agent->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return fail(ErrorCode::kNotFound, "agent '" + stored.agent_id + "' not found");
    }
    std::string agent_project = agent->text(0);
    if (!stored.project_id.empty() && stored.project_id != agent_project) {
      return fail(ErrorCode::kInvalidRequest, "agent '" + stored.agent_id +
                                                  "' belongs to project '" + agent_project +
                                                  "', not '" + stored.project_id + "'");
    }
    stored.project_id = agent_project;

    auto inserted = connection_->run(
        "INSERT INTO agent_tokens (" + std::string(kTokenColumns) +
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        stored.id, stored.agent_id, stored.project_id, stored.token_hash,
        encodeStrings(stored.scopes), NullIfZero{stored.expires_at}, NullIfZero{stored.revoked_at},
        stored.created_at, NullIfZero{stored.last_used_at}, encodeStrings(stored.models),
        stored.rotated_from, stored.rotated_to);
    if (!inserted) {
      const Error& error = inserted.error();
      // The message leaves out the hash because it identifies the token.
      if (error.code == ErrorCode::kConflict && violates(error, "agent_tokens.token_hash")) {
        return fail(ErrorCode::kConflict, "a token with the same hash already exists");
      }
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, "a token with id '" + stored.id + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "agent token"));
    }
    return {};
  }
}

Result<std::vector<AgentToken>> SqliteStore::listTokens(const std::string& agent_id) {
  return read([&] {
    return collectTokens(connection_->query(
        selectFrom(kTokenColumns, "FROM agent_tokens WHERE agent_id = ? ORDER BY created_at, id"),
        agent_id));
  });
}

Result<std::vector<AgentToken>> SqliteStore::listLiveTokens(int64_t now) {
  return read([&] {
    return collectTokens(connection_->query(
        selectFrom(kTokenColumns,
                   "FROM agent_tokens WHERE revoked_at IS NULL "
                   "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at, id"),
        now));
  });
}

Result<std::vector<AgentToken>> SqliteStore::listAllTokens() {
  return read([&] {
    return collectTokens(
        connection_->query(selectFrom(kTokenColumns, "FROM agent_tokens ORDER BY created_at, id")));
  });
}

Result<AgentToken> SqliteStore::getToken(const std::string& token_id) {
  return read([&] { return getTokenLocked(token_id); });
}

Result<AgentToken> SqliteStore::getTokenLocked(const std::string& token_id) {
  auto statement =
      connection_->query(selectFrom(kTokenColumns, "FROM agent_tokens WHERE id = ?"), token_id);
  if (!statement) {
    return std::unexpected(statement.error());
  }
  auto row = statement->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  if (!*row) {
    return fail(ErrorCode::kNotFound, "token '" + token_id + "' not found");
  }
  return readToken(*statement);
}

Result<AgentToken> SqliteStore::setTokenExpiry(const std::string& token_id, int64_t expires_at) {
  return write([&]() -> Result<AgentToken> {
    auto token = getTokenLocked(token_id);
    if (!token || token->expires_at == expires_at) {
      return token;
    }

    KS_RETURN_IF_ERROR(connection_->run("UPDATE agent_tokens SET expires_at = ? WHERE id = ?",
                                        NullIfZero{expires_at}, token_id));
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    token->expires_at = expires_at;
    return token;
  });
}

Result<AgentToken> SqliteStore::revokeToken(const std::string& token_id, int64_t now) {
  return write([&]() -> Result<AgentToken> {
    auto token = getTokenLocked(token_id);
    if (!token || token->revoked_at != 0) {
      return token;
    }

    KS_RETURN_IF_ERROR(
        connection_->run("UPDATE agent_tokens SET revoked_at = ? WHERE id = ?", now, token_id));
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    token->revoked_at = now;
    return token;
  });
}

Result<TokenRotation> SqliteStore::rotateToken(const std::string& token_id,
                                               const AgentToken& replacement, int64_t now,
                                               int64_t grace_ms) {
  return write([&]() -> Result<TokenRotation> {
    auto previous = getTokenLocked(token_id);
    if (!previous) {
      return std::unexpected(previous.error());
    }
    if (previous->revoked_at != 0) {
      return fail(ErrorCode::kConflict, "token " + token_id + " is revoked and cannot be rotated");
    }
    if (previous->expires_at != 0 && previous->expires_at <= now) {
      return fail(ErrorCode::kConflict, "token " + token_id + " has expired and cannot be rotated");
    }
    if (!previous->rotated_to.empty()) {
      return fail(ErrorCode::kConflict, "token " + token_id + " was already rotated to " +
                                            previous->rotated_to + "; rotate that token instead");
    }

    AgentToken next = replacement;
    next.agent_id = previous->agent_id;
    next.project_id = previous->project_id;
    next.rotated_from = previous->id;
    if (next.id.empty()) {
      next.id = newId("tok");
    }
    if (next.created_at == 0) {
      next.created_at = now;
    }
    KS_RETURN_IF_ERROR(insertTokenLocked(next));

    if (grace_ms <= 0) {
      previous->revoked_at = now;
    } else if (previous->expires_at == 0 || now + grace_ms < previous->expires_at) {
      previous->expires_at = now + grace_ms;
    }
    previous->rotated_to = next.id;
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE agent_tokens SET expires_at = ?, revoked_at = ?, rotated_to = ? WHERE id = ?",
        NullIfZero{previous->expires_at}, NullIfZero{previous->revoked_at}, previous->rotated_to,
        previous->id));
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return TokenRotation{std::move(*previous), std::move(next)};
  });
}

Result<void> SqliteStore::touchTokens(const std::vector<std::pair<std::string, int64_t>>& used) {
  if (used.empty()) {
    return {};
  }
  // last_used_at is shown to people and not used by the proxy, so the config generation stays
  // put. Bumping it would reload every instance's snapshot after each flush.
  return write([&]() -> Result<void> {
    for (const auto& [token_id, used_at] : used) {
      KS_RETURN_IF_ERROR(
          connection_->run("UPDATE agent_tokens SET last_used_at = ?1 "
                           "WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
                           used_at, token_id));
    }
    return {};
  });
}

// Admin keys.

Result<AdminKey> SqliteStore::createAdminKey(const AdminKey& key) {
  AdminKey stored = key;
  if (stored.id.empty()) {
    stored.id = newId("adm");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }

  return write([&]() -> Result<AdminKey> {
    if (!stored.organization_id.empty()) {
      if (auto found = requireOrganization(stored.organization_id); !found) {
        return std::unexpected(found.error());
      }
    }

    auto inserted = connection_->run("INSERT INTO admin_keys (" + std::string(kAdminKeyColumns) +
                                         ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                     stored.id, stored.key_hash, stored.name, stored.role,
                                     NullIfEmpty{stored.organization_id},
                                     NullIfZero{stored.expires_at}, NullIfZero{stored.revoked_at},
                                     stored.created_at, int64_t{stored.is_operator ? 1 : 0},
                                     NullIfEmpty{stored.user_id}, NullIfEmpty{stored.project_id});
    if (!inserted) {
      const Error& error = inserted.error();
      if (error.code == ErrorCode::kConflict && violates(error, "admin_keys.key_hash")) {
        return fail(ErrorCode::kConflict, "an admin key with the same hash already exists");
      }
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict,
                    "an admin key with id '" + stored.id + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "admin key"));
    }
    return stored;
  });
}

Result<std::optional<AdminKey>> SqliteStore::findAdminKeyByHash(const std::string& key_hash) {
  return read([&]() -> Result<std::optional<AdminKey>> {
    auto statement = connection_->query(
        selectFrom(kAdminKeyColumns, "FROM admin_keys WHERE key_hash = ?"), key_hash);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return std::nullopt;
    }
    return readAdminKey(*statement);
  });
}

Result<size_t> SqliteStore::countAdminKeys() {
  return read([&]() -> Result<size_t> {
    auto statement = connection_->query("SELECT count(*) FROM admin_keys");
    if (!statement) {
      return std::unexpected(statement.error());
    }
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    return static_cast<size_t>(statement->int64(0));
  });
}

Result<std::vector<AdminKey>> SqliteStore::listAdminKeys(const std::string& organization_id) {
  return read([&] {
    return collectRows(connection_->query(selectFrom(kAdminKeyColumns,
                                                     "FROM admin_keys WHERE organization_id = ? "
                                                     "ORDER BY created_at, id"),
                                          organization_id),
                       readAdminKey);
  });
}

Result<AdminKey> SqliteStore::revokeAdminKey(const std::string& key_id, int64_t now) {
  return write([&]() -> Result<AdminKey> {
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE admin_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, key_id));
    auto statement =
        connection_->query(selectFrom(kAdminKeyColumns, "FROM admin_keys WHERE id = ?"), key_id);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return fail(ErrorCode::kNotFound, "admin key '" + key_id + "' not found");
    }
    return readAdminKey(*statement);
  });
}

}  // namespace keystore::store
