#include "store/sqlite/migrations.h"

#include <array>
#include <string>

#include "common/clock.h"

namespace keystore::store::sqlite {
namespace {

// Version 1: the initial schema. Times are Unix milliseconds, and NULL marks an unset
// optional time or reference. Tables are STRICT so a value of the wrong type is rejected, not
// coerced.
constexpr std::string_view kInitialSchema = R"sql(
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE organizations (
  id         TEXT PRIMARY KEY CHECK (id <> ''),
  name       TEXT NOT NULL UNIQUE CHECK (name <> ''),
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE projects (
  id              TEXT PRIMARY KEY CHECK (id <> ''),
  organization_id TEXT NOT NULL REFERENCES organizations (id),
  name            TEXT NOT NULL CHECK (name <> ''),
  created_at      INTEGER NOT NULL,
  UNIQUE (organization_id, name)
) STRICT;
CREATE INDEX projects_name ON projects (name);

-- A project's data key, wrapped by the master key named in master_key_id.
CREATE TABLE data_keys (
  key_id        TEXT PRIMARY KEY CHECK (key_id <> ''),
  project_id    TEXT NOT NULL REFERENCES projects (id),
  master_key_id TEXT NOT NULL,
  wrapped       BLOB NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX data_keys_project ON data_keys (project_id);

CREATE TABLE provider_settings (
  project_id TEXT NOT NULL REFERENCES projects (id),
  provider   TEXT NOT NULL CHECK (provider <> ''),
  mode       TEXT NOT NULL CHECK (mode IN ('byok', 'marketplace')),
  status     TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, provider)
) STRICT;

-- project_id is NULL only for a credential in a shared marketplace pool.
CREATE TABLE credentials (
  id          TEXT PRIMARY KEY CHECK (id <> ''),
  project_id  TEXT REFERENCES projects (id),
  provider    TEXT NOT NULL CHECK (provider <> ''),
  scope       TEXT NOT NULL CHECK (scope IN ('byok', 'shared', 'dedicated')),
  status      TEXT NOT NULL CHECK (status IN ('active', 'replaced', 'disabled')),
  label       TEXT NOT NULL,
  mask        TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  data_key_id TEXT NOT NULL REFERENCES data_keys (key_id),
  ciphertext  BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  CHECK (scope = 'shared' OR project_id IS NOT NULL)
) STRICT;
CREATE INDEX credentials_project ON credentials (project_id, provider);
-- At most one active BYOK credential per project and provider.
CREATE UNIQUE INDEX credentials_active_byok ON credentials (project_id, provider)
  WHERE scope = 'byok' AND status = 'active';

CREATE TABLE agents (
  id         TEXT PRIMARY KEY CHECK (id <> ''),
  project_id TEXT NOT NULL REFERENCES projects (id),
  name       TEXT NOT NULL CHECK (name <> ''),
  status     TEXT NOT NULL CHECK (status IN ('active', 'paused', 'revoked')),
  rpm_limit  INTEGER CHECK (rpm_limit >= 0),
  rpd_limit  INTEGER CHECK (rpd_limit >= 0),
  created_at INTEGER NOT NULL,
  UNIQUE (project_id, name),
  -- The target of agent_tokens' foreign key, which ties a token to its agent's project.
  UNIQUE (id, project_id)
) STRICT;
CREATE INDEX agents_name ON agents (name);

-- token_hash is the SHA-256 of the token in lowercase hex; the CHECK keeps a plaintext
-- token ("ks_" and 64 digits) from being stored by mistake. scopes is a JSON array of strings.
CREATE TABLE agent_tokens (
  id           TEXT PRIMARY KEY CHECK (id <> ''),
  agent_id     TEXT NOT NULL,
  project_id   TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE
                 CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
  scopes       TEXT NOT NULL,
  expires_at   INTEGER,
  revoked_at   INTEGER,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  FOREIGN KEY (agent_id, project_id) REFERENCES agents (id, project_id)
) STRICT;
CREATE INDEX agent_tokens_agent ON agent_tokens (agent_id);

CREATE TABLE admin_keys (
  id              TEXT PRIMARY KEY CHECK (id <> ''),
  key_hash        TEXT NOT NULL UNIQUE
                    CHECK (length(key_hash) = 64 AND key_hash NOT GLOB '*[^0-9a-f]*'),
  name            TEXT NOT NULL,
  role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  organization_id TEXT REFERENCES organizations (id),
  expires_at      INTEGER,
  revoked_at      INTEGER,
  created_at      INTEGER NOT NULL
) STRICT;

-- One row per proxied request. No foreign keys, so usage history outlives the objects it
-- names and a ledger write never fails on a concurrent deletion.
CREATE TABLE ledger (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  time            INTEGER NOT NULL,
  request_id      TEXT NOT NULL,
  project_id      TEXT NOT NULL,
  agent_id        TEXT NOT NULL,
  token_id        TEXT NOT NULL,
  provider        TEXT NOT NULL,
  mode            TEXT NOT NULL,
  method          TEXT NOT NULL,
  path            TEXT NOT NULL,
  upstream_status INTEGER NOT NULL CHECK (upstream_status BETWEEN 0 AND 999),
  outcome         TEXT NOT NULL,
  bytes_in        INTEGER NOT NULL CHECK (bytes_in >= 0),
  bytes_out       INTEGER NOT NULL CHECK (bytes_out >= 0),
  latency_ms      INTEGER NOT NULL CHECK (latency_ms >= 0)
) STRICT;
CREATE INDEX ledger_project_time ON ledger (project_id, time);

-- A single row whose value grows with every change to what the proxy's snapshot contains.
CREATE TABLE config_generation (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
) STRICT;
INSERT INTO config_generation (id, value) VALUES (1, 0);
)sql";

// Version 2: a token may be limited to certain models. models is a JSON array of strings,
// encoded like scopes, and the empty array lets the token use any model, as every token
// minted before this version does.
constexpr std::string_view kTokenModels = R"sql(
ALTER TABLE agent_tokens ADD COLUMN models TEXT NOT NULL DEFAULT '[]';
)sql";

// Version 3: marketplace pools and concierge requests. data_keys is rebuilt so that the
// shared pool's data key can exist without a project (project_id NULL, at most one such
// row); SQLite cannot relax a NOT NULL column in place. Pool credentials get their own
// request-rate limit, admin keys an installation-wide operator flag (the oldest owner key,
// which the first start created, is the operator), and ledger rows the credential they used.
constexpr std::string_view kMarketplace = R"sql(
CREATE TABLE data_keys_v3 (
  key_id        TEXT PRIMARY KEY CHECK (key_id <> ''),
  project_id    TEXT REFERENCES projects (id),
  master_key_id TEXT NOT NULL,
  wrapped       BLOB NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;
INSERT INTO data_keys_v3 (key_id, project_id, master_key_id, wrapped, created_at)
  SELECT key_id, project_id, master_key_id, wrapped, created_at FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_v3 RENAME TO data_keys;
CREATE INDEX data_keys_project ON data_keys (project_id);
CREATE UNIQUE INDEX data_keys_one_pool_key ON data_keys (coalesce(project_id, ''))
  WHERE project_id IS NULL;

ALTER TABLE credentials ADD COLUMN rpm_limit INTEGER NOT NULL DEFAULT 0
  CHECK (rpm_limit >= 0);
CREATE INDEX credentials_pool ON credentials (provider, scope) WHERE scope <> 'byok';

CREATE TABLE concierge_requests (
  id            TEXT PRIMARY KEY CHECK (id <> ''),
  project_id    TEXT NOT NULL REFERENCES projects (id),
  provider      TEXT NOT NULL CHECK (provider <> ''),
  note          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('open', 'fulfilled', 'rejected')),
  reason        TEXT NOT NULL,
  credential_id TEXT REFERENCES credentials (id),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  CHECK (status <> 'fulfilled' OR credential_id IS NOT NULL)
) STRICT;
CREATE INDEX concierge_requests_project ON concierge_requests (project_id, created_at);
-- One open request per project and provider.
CREATE UNIQUE INDEX concierge_requests_one_open ON concierge_requests (project_id, provider)
  WHERE status = 'open';

ALTER TABLE admin_keys ADD COLUMN operator INTEGER NOT NULL DEFAULT 0
  CHECK (operator IN (0, 1));
UPDATE admin_keys SET operator = 1 WHERE id = (
  SELECT id FROM admin_keys WHERE role = 'owner' ORDER BY created_at, id LIMIT 1);

ALTER TABLE ledger ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
)sql";

// Version 4: metering, rate limits and budgets. The operator's price table is append-only,
// so a price change is a new row with a later effective_from. Agents get token-per-minute
// limits and monthly budgets, and projects get rate-limit defaults and budgets. Every ledger
// row gets the metered units, the prices applied and the cost. Rows written before this
// version read as unmetered: zero units and cost, no prices, not billable. ledger_time serves
// the start-up scan of the current month's spend across all projects.
constexpr std::string_view kMetering = R"sql(
CREATE TABLE prices (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  provider           TEXT NOT NULL CHECK (provider <> ''),
  model              TEXT NOT NULL,
  unit               TEXT NOT NULL CHECK (unit IN ('input_tokens', 'cached_input_tokens',
                       'output_tokens', 'requests', 'emails', 'messages', 'read_units',
                       'write_units')),
  micros_per_million INTEGER NOT NULL CHECK (micros_per_million >= 0),
  effective_from     INTEGER NOT NULL,
  created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX prices_effective ON prices (provider, model, unit, effective_from);

ALTER TABLE agents ADD COLUMN tpm_limit INTEGER CHECK (tpm_limit >= 0);
ALTER TABLE agents ADD COLUMN budget_cents INTEGER CHECK (budget_cents >= 0);
ALTER TABLE agents ADD COLUMN budget_warn_percent INTEGER
  CHECK (budget_warn_percent BETWEEN 1 AND 100);

ALTER TABLE projects ADD COLUMN default_rpm INTEGER CHECK (default_rpm >= 0);
ALTER TABLE projects ADD COLUMN default_rpd INTEGER CHECK (default_rpd >= 0);
ALTER TABLE projects ADD COLUMN default_tpm INTEGER CHECK (default_tpm >= 0);
ALTER TABLE projects ADD COLUMN budget_cents INTEGER CHECK (budget_cents >= 0);
ALTER TABLE projects ADD COLUMN budget_warn_percent INTEGER
  CHECK (budget_warn_percent BETWEEN 1 AND 100);

ALTER TABLE ledger ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0
  CHECK (input_tokens >= 0);
ALTER TABLE ledger ADD COLUMN cached_input_tokens INTEGER NOT NULL DEFAULT 0
  CHECK (cached_input_tokens >= 0);
ALTER TABLE ledger ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0
  CHECK (output_tokens >= 0);
ALTER TABLE ledger ADD COLUMN requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0);
ALTER TABLE ledger ADD COLUMN emails INTEGER NOT NULL DEFAULT 0 CHECK (emails >= 0);
ALTER TABLE ledger ADD COLUMN messages INTEGER NOT NULL DEFAULT 0 CHECK (messages >= 0);
ALTER TABLE ledger ADD COLUMN read_units INTEGER NOT NULL DEFAULT 0 CHECK (read_units >= 0);
ALTER TABLE ledger ADD COLUMN write_units INTEGER NOT NULL DEFAULT 0 CHECK (write_units >= 0);
ALTER TABLE ledger ADD COLUMN usage_reported INTEGER NOT NULL DEFAULT 0
  CHECK (usage_reported IN (0, 1));
ALTER TABLE ledger ADD COLUMN prices TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0);
ALTER TABLE ledger ADD COLUMN billable INTEGER NOT NULL DEFAULT 0 CHECK (billable IN (0, 1));
CREATE INDEX ledger_time ON ledger (time);
)sql";

// Version 5: accounts. Users sign in with an email (unique in any case, stored in lower case)
// and an Argon2id password hash; memberships give them a role per organization; sessions
// store the SHA-256 of their token. Admin keys may belong to a user and may be limited to
// one project.
constexpr std::string_view kAccounts = R"sql(
CREATE TABLE users (
  id            TEXT PRIMARY KEY CHECK (id <> ''),
  email         TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (email <> ''),
  password_hash TEXT NOT NULL CHECK (password_hash <> ''),
  operator      INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1)),
  created_at    INTEGER NOT NULL,
  disabled_at   INTEGER
) STRICT;

CREATE TABLE memberships (
  organization_id TEXT NOT NULL REFERENCES organizations (id),
  user_id         TEXT NOT NULL REFERENCES users (id),
  role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (organization_id, user_id)
) STRICT;
CREATE INDEX memberships_user ON memberships (user_id, created_at);

CREATE TABLE sessions (
  id             TEXT PRIMARY KEY CHECK (id <> ''),
  token_hash     TEXT NOT NULL UNIQUE
                   CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
  user_id        TEXT NOT NULL REFERENCES users (id),
  csrf_token     TEXT NOT NULL CHECK (csrf_token <> ''),
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  revoked_at     INTEGER,
  source_address TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

ALTER TABLE admin_keys ADD COLUMN user_id TEXT REFERENCES users (id);
ALTER TABLE admin_keys ADD COLUMN project_id TEXT REFERENCES projects (id);
)sql";

// Version 6: the audit trail, an installation-wide hash chain of changes. seq is
// AUTOINCREMENT so a number is never reused, even after the newest entry is deleted, and the
// triggers reject UPDATE and DELETE so that only someone editing the file directly can change
// an entry (which the chain then reveals).
constexpr std::string_view kAuditTrail = R"sql(
CREATE TABLE audit_entries (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE CHECK (id <> ''),
  time            INTEGER NOT NULL,
  organization_id TEXT NOT NULL CHECK (organization_id <> ''),
  project_id      TEXT,
  actor           TEXT NOT NULL CHECK (actor <> ''),
  actor_kind      TEXT NOT NULL CHECK (actor_kind <> ''),
  action          TEXT NOT NULL CHECK (action <> ''),
  target          TEXT NOT NULL,
  source_address  TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  details         TEXT NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object'),
  prev_hash       TEXT NOT NULL CHECK (length(prev_hash) = 64),
  hash            TEXT NOT NULL CHECK (length(hash) = 64)
) STRICT;
CREATE INDEX audit_entries_organization ON audit_entries (organization_id, seq);
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
  SELECT RAISE(ABORT, 'audit entries are append-only');
END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
  SELECT RAISE(ABORT, 'audit entries are append-only');
END;
)sql";

// Version 7: webhooks. An endpoint's signing secret is a vault ciphertext under the project's
// data key. events is a comma-separated list of event types ('' = every type). Deliveries
// are the durable outbox: any instance claims a due one by setting lease_until, so a
// delivery pending at a crash is sent after the restart, and two instances never send the
// same attempt.
constexpr std::string_view kWebhooks = R"sql(
CREATE TABLE webhook_endpoints (
  id          TEXT PRIMARY KEY CHECK (id <> ''),
  project_id  TEXT NOT NULL REFERENCES projects (id),
  url         TEXT NOT NULL CHECK (url <> ''),
  description TEXT NOT NULL,
  events      TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  data_key_id TEXT NOT NULL CHECK (data_key_id <> ''),
  secret      BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_project ON webhook_endpoints (project_id, created_at);

CREATE TABLE webhook_deliveries (
  id               TEXT PRIMARY KEY CHECK (id <> ''),
  endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  project_id       TEXT NOT NULL REFERENCES projects (id),
  event_id         TEXT NOT NULL CHECK (event_id <> ''),
  event_type       TEXT NOT NULL CHECK (event_type <> ''),
  payload          TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL CHECK (attempts >= 0),
  next_attempt_at  INTEGER NOT NULL,
  lease_until      INTEGER NOT NULL,
  last_status_code INTEGER NOT NULL,
  last_error       TEXT NOT NULL,
  last_attempt_at  INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  delivered_at     INTEGER NOT NULL,
  UNIQUE (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
)sql";

// Version 8: token rotation links a token to the one that replaced it and back. '' = none.
constexpr std::string_view kTokenRotation = R"sql(
ALTER TABLE agent_tokens ADD COLUMN rotated_from TEXT NOT NULL DEFAULT '';
ALTER TABLE agent_tokens ADD COLUMN rotated_to TEXT NOT NULL DEFAULT '';
)sql";

// Version 9: the month-spend refresh reads only rows that cost something. Most rows cost
// nothing (BYOK without prices), and without this index the refresh read every one of them.
// The index has no entry for them, so their inserts do not pay for it either.
constexpr std::string_view kCostedLedgerRows = R"sql(
CREATE INDEX ledger_costed ON ledger (id) WHERE cost_micros > 0;
)sql";

constexpr std::array kMigrations = {
    Migration{1, kInitialSchema},
    Migration{2, kTokenModels},
    Migration{3, kMarketplace, true},
    Migration{4, kMetering},
    Migration{5, kAccounts},
    Migration{6, kAuditTrail},
    Migration{7, kWebhooks},
    Migration{8, kTokenRotation},
    Migration{9, kCostedLedgerRows},
};

Result<int> readVersion(Connection& connection) {
  auto statement = connection.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  auto row = statement->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  return static_cast<int>(statement->int64(0));
}

Result<void> recordVersion(Connection& connection, int version) {
  auto statement =
      connection.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->bind(version).bind(nowUnixMillis()).run();
}

// Applies one migration unless another process applied it first.
Result<void> applyOne(Connection& connection, const Migration& migration) {
  if (migration.rebuilds_tables) {
    // A rebuilt table is dropped while other tables still reference it, which foreign-key
    // enforcement would refuse. The pragma has no effect inside a transaction, so it is
    // switched around it, and foreign_key_check below proves the result consistent.
    KS_RETURN_IF_ERROR(connection.exec("PRAGMA foreign_keys = OFF"));
  }
  auto result = connection.transaction(TransactionKind::kWrite, [&]() -> Result<void> {
    auto version = readVersion(connection);
    if (!version) {
      return std::unexpected(version.error());
    }
    if (*version >= migration.version) {
      return {};
    }
    if (auto applied = connection.exec(std::string(migration.script)); !applied) {
      return fail(ErrorCode::kInternal, "schema migration " + std::to_string(migration.version) +
                                            " failed: " + applied.error().message);
    }
    if (migration.rebuilds_tables) {
      auto check = connection.prepare("PRAGMA foreign_key_check");
      if (!check) {
        return std::unexpected(check.error());
      }
      auto violation = check->step();
      if (!violation) {
        return std::unexpected(violation.error());
      }
      if (*violation) {
        return fail(ErrorCode::kInternal, "schema migration " + std::to_string(migration.version) +
                                              " left a dangling reference in table " +
                                              check->text(0));
      }
    }
    return recordVersion(connection, migration.version);
  });
  if (migration.rebuilds_tables) {
    auto restored = connection.exec("PRAGMA foreign_keys = ON");
    if (result && !restored) {
      return restored;
    }
  }
  return result;
}

}  // namespace

std::span<const Migration> sqliteMigrations() {
  return kMigrations;
}

Result<int> applyMigrations(Connection& connection, std::span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return fail(ErrorCode::kInternal, "schema migrations are not numbered 1, 2, 3, ...: entry " +
                                            std::to_string(i + 1) + " has version " +
                                            std::to_string(migrations[i].version));
    }
  }
  const int latest = static_cast<int>(migrations.size());

  auto created = connection.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
  if (!created) {
    return std::unexpected(created.error());
  }

  auto current = readVersion(connection);
  if (!current) {
    return std::unexpected(current.error());
  }
  if (*current > latest) {
    return fail(ErrorCode::kInternal,
                "database schema version " + std::to_string(*current) +
                    " is newer than the latest this keystore binary supports (" +
                    std::to_string(latest) + "); run a newer keystore release on this database");
  }

  for (const Migration& migration : migrations.subspan(static_cast<size_t>(*current))) {
    if (auto applied = applyOne(connection, migration); !applied) {
      return std::unexpected(applied.error());
    }
  }
  return latest;
}

}  // namespace keystore::store::sqlite
