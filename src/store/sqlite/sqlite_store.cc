// Opening the database, settings, organizations, projects, data keys, provider settings and
// credentials. Agents, tokens and admin keys are in sqlite_store_agents.cc, the ledger in
// sqlite_store_ledger.cc.
#include "store/sqlite/sqlite_store.h"

#include <utility>

#include "common/clock.h"
#include "common/random.h"
#include "store/sqlite/migrations.h"

namespace keystore::store {
namespace {

using sqlite::Blob;
using sqlite::collectRows;
using sqlite::Connection;
using sqlite::describeInvalid;
using sqlite::NullIfEmpty;
using sqlite::Statement;
using sqlite::violates;

// How long a statement waits for another process's write lock before failing. Writes are
// short, so only a stuck or very slow writer exceeds this.
constexpr int kBusyTimeoutMs = 5000;
// The page size of a new database. Almost every write is a ledger batch appended at the end of
// the table and its indexes. With 16 KiB pages the ledger writer used about 6 % less CPU per
// row than with SQLite's default of 4 KiB (2.03 against 2.16 µs, proxy at saturation).
constexpr int kPageSizeBytes = 16384;

Organization readOrganization(const Statement& row) {
  return Organization{.id = row.text(0), .name = row.text(1), .created_at = row.int64(2)};
}

Project readProject(const Statement& row) {
  return Project{.id = row.text(0),
                 .organization_id = row.text(1),
                 .name = row.text(2),
                 .created_at = row.int64(3)};
}

DataKey readDataKey(const Statement& row) {
  return DataKey{.project_id = row.text(0),
                 .key_id = row.text(1),
                 .master_key_id = row.text(2),
                 .wrapped = row.blob(3),
                 .created_at = row.int64(4)};
}

ProviderSetting readProviderSetting(const Statement& row) {
  return ProviderSetting{.project_id = row.text(0),
                         .provider = row.text(1),
                         .mode = row.text(2),
                         .status = row.text(3),
                         .updated_at = row.int64(4)};
}

Credential readCredential(const Statement& row) {
  return Credential{.id = row.text(0),
                    .project_id = row.text(1),
                    .provider = row.text(2),
                    .scope = row.text(3),
                    .status = row.text(4),
                    .label = row.text(5),
                    .mask = row.text(6),
                    .fingerprint = row.text(7),
                    .data_key_id = row.text(8),
                    .ciphertext = row.blob(9),
                    .created_at = row.int64(10),
                    .rpm_limit = row.int64(11)};
}

constexpr std::string_view kCredentialColumns =
    "id, project_id, provider, scope, status, label, mask, fingerprint, data_key_id, "
    "ciphertext, created_at, rpm_limit";

Result<void> configureConnection(Connection& connection, const std::string& path) {
  sqlite3_busy_timeout(connection.handle(), kBusyTimeoutMs);

  // Takes effect only on a database without tables yet, before WAL mode is on. An existing
  // database keeps the page size it was created with.
  auto page_size = connection.exec("PRAGMA page_size = " + std::to_string(kPageSizeBytes));
  if (!page_size) {
    return page_size;
  }

  // journal_mode returns the mode in effect, which stays "memory" for an in-memory database.
  auto journal = connection.query("PRAGMA journal_mode = WAL");
  if (!journal) {
    return std::unexpected(journal.error());
  }
  auto row = journal->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  std::string mode = *row ? journal->text(0) : "";
  bool in_memory = path == ":memory:" || path.empty();
  if (mode != "wal" && !(in_memory && mode == "memory")) {
    return fail(ErrorCode::kInternal, "cannot enable WAL journal mode (got '" + mode + "')");
  }

  return connection.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
}

}  // namespace

SqliteStore::SqliteStore(std::unique_ptr<Connection> connection)
    : connection_(std::move(connection)) {}

Result<std::unique_ptr<Store>> openSqliteStore(const std::string& path) {
  auto connection = Connection::open(path);
  if (!connection) {
    return std::unexpected(connection.error());
  }

  auto configured = configureConnection(**connection, path);
  if (!configured) {
    return fail(configured.error().code,
                "cannot open database '" + path + "': " + configured.error().message);
  }
  auto migrated = sqlite::applyMigrations(**connection, sqlite::sqliteMigrations());
  if (!migrated) {
    return fail(migrated.error().code,
                "cannot open database '" + path + "': " + migrated.error().message);
  }
  return std::make_unique<SqliteStore>(std::move(*connection));
}

Result<void> SqliteStore::bumpConfigGeneration() {
  return connection_->run("UPDATE config_generation SET value = value + 1 WHERE id = 1");
}

Result<bool> SqliteStore::exists(std::string_view sql, std::string_view key) {
  auto statement = connection_->query(sql, key);
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->step();
}

Result<void> SqliteStore::requireProject(const std::string& project_id) {
  auto found = exists("SELECT 1 FROM projects WHERE id = ?", project_id);
  if (!found) {
    return std::unexpected(found.error());
  }
  if (!*found) {
    return fail(ErrorCode::kNotFound, "project '" + project_id + "' not found");
  }
  return {};
}

Result<void> SqliteStore::requireOrganization(const std::string& organization_id) {
  auto found = exists("SELECT 1 FROM organizations WHERE id = ?", organization_id);
  if (!found) {
    return std::unexpected(found.error());
  }
  if (!*found) {
    return fail(ErrorCode::kNotFound, "organization '" + organization_id + "' not found");
  }
  return {};
}

Result<int64_t> SqliteStore::configGeneration() {
  return read([&]() -> Result<int64_t> {
    auto statement = connection_->query("SELECT value FROM config_generation WHERE id = 1");
    if (!statement) {
      return std::unexpected(statement.error());
    }
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return fail(ErrorCode::kInternal, "the config_generation row is missing");
    }
    return statement->int64(0);
  });
}

// Settings.

Result<std::optional<std::string>> SqliteStore::getSetting(const std::string& key) {
  return read([&]() -> Result<std::optional<std::string>> {
    auto statement = connection_->query("SELECT value FROM settings WHERE key = ?", key);
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
    return statement->text(0);
  });
}

Result<void> SqliteStore::putSetting(const std::string& key, const std::string& value) {
  return write([&]() -> Result<void> {
    return connection_->run(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key, value);
  });
}

// Organizations.

Result<Organization> SqliteStore::createOrganization(const Organization& organization) {
  Organization stored = organization;
  if (stored.id.empty()) {
    stored.id = newId("org");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }

  return write([&]() -> Result<Organization> {
    auto inserted =
        connection_->run("INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
                         stored.id, stored.name, stored.created_at);
    if (inserted) {
      return stored;
    }
    const Error& error = inserted.error();
    if (error.code == ErrorCode::kConflict && violates(error, "organizations.name")) {
      return fail(ErrorCode::kConflict,
                  "an organization named '" + stored.name + "' already exists");
    }
    if (error.code == ErrorCode::kConflict) {
      return fail(ErrorCode::kConflict,
                  "an organization with id '" + stored.id + "' already exists");
    }
    return std::unexpected(describeInvalid(error, "organization"));
  });
}

Result<std::vector<Organization>> SqliteStore::listOrganizations() {
  return read([&] {
    return collectRows(
        connection_->query(
            "SELECT id, name, created_at FROM organizations ORDER BY created_at, id"),
        readOrganization);
  });
}

// Projects and data keys.

Result<Project> SqliteStore::createProject(const Project& project, const DataKey& data_key) {
  Project stored = project;
  if (stored.id.empty()) {
    stored.id = newId("prj");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  DataKey key = data_key;
  if (key.project_id.empty()) {
    key.project_id = stored.id;
  }
  if (key.project_id != stored.id) {
    return fail(ErrorCode::kInvalidRequest, "data key '" + key.key_id + "' belongs to project '" +
                                                key.project_id + "', not to the new project '" +
                                                stored.id + "'");
  }
  if (key.created_at == 0) {
    key.created_at = stored.created_at;
  }

  return write([&]() -> Result<Project> {
    if (auto found = requireOrganization(stored.organization_id); !found) {
      return std::unexpected(found.error());
    }

    auto project_inserted = connection_->run(
        "INSERT INTO projects (id, organization_id, name, created_at) VALUES (?, ?, ?, ?)",
        stored.id, stored.organization_id, stored.name, stored.created_at);
    if (!project_inserted) {
      const Error& error = project_inserted.error();
      if (error.code == ErrorCode::kConflict && violates(error, "projects.name")) {
        return fail(ErrorCode::kConflict, "a project named '" + stored.name +
                                              "' already exists in organization '" +
                                              stored.organization_id + "'");
      }
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, "a project with id '" + stored.id + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "project"));
    }

    auto key_inserted = connection_->run(
        "INSERT INTO data_keys (key_id, project_id, master_key_id, wrapped, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        key.key_id, key.project_id, key.master_key_id, Blob{key.wrapped}, key.created_at);
    if (!key_inserted) {
      const Error& error = key_inserted.error();
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict, "a data key with id '" + key.key_id + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "data key"));
    }

    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return stored;
  });
}

Result<std::vector<Project>> SqliteStore::listProjects(const std::string& organization_id) {
  return read([&] {
    return collectRows(connection_->query("SELECT id, organization_id, name, created_at "
                                          "FROM projects WHERE organization_id = ? "
                                          "ORDER BY created_at, id",
                                          organization_id),
                       readProject);
  });
}

Result<Project> SqliteStore::findProject(const std::string& organization_id,
                                         const std::string& id_or_name) {
  return read([&] { return findProjectLocked(organization_id, id_or_name); });
}

Result<Project> SqliteStore::findProjectLocked(const std::string& organization_id,
                                               const std::string& id_or_name) {
  // An id wins over a name, so a project whose name equals another's id stays reachable by id.
  for (std::string_view column : {"id", "name"}) {
    auto statement =
        connection_->query(std::string("SELECT id, organization_id, name, created_at FROM projects "
                                       "WHERE organization_id = ? AND ") +
                               std::string(column) + " = ?",
                           organization_id, id_or_name);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (*row) {
      return readProject(*statement);
    }
  }
  return fail(ErrorCode::kNotFound,
              "project '" + id_or_name + "' not found in organization '" + organization_id + "'");
}

Result<std::vector<DataKey>> SqliteStore::listDataKeys() {
  return read([&] {
    return collectRows(
        connection_->query("SELECT project_id, key_id, master_key_id, wrapped, created_at "
                           "FROM data_keys ORDER BY created_at, key_id"),
        readDataKey);
  });
}

Result<void> SqliteStore::updateDataKeys(const std::vector<DataKey>& data_keys) {
  if (data_keys.empty()) {
    return {};
  }
  return write([&]() -> Result<void> {
    for (const DataKey& key : data_keys) {
      KS_RETURN_IF_ERROR(
          connection_->run("UPDATE data_keys SET master_key_id = ?, wrapped = ? WHERE key_id = ?",
                           key.master_key_id, Blob{key.wrapped}, key.key_id));
      if (connection_->changes() == 0) {
        return fail(ErrorCode::kNotFound, "data key '" + key.key_id + "' not found");
      }
    }
    return bumpConfigGeneration();
  });
}

Result<size_t> SqliteStore::rewrapDataKeys(const std::vector<DataKeyRewrap>& rewraps) {
  if (rewraps.empty()) {
    return size_t{0};
  }
  return write([&]() -> Result<size_t> {
    size_t changed = 0;
    for (const DataKeyRewrap& rewrap : rewraps) {
      const DataKey& key = rewrap.data_key;
      KS_RETURN_IF_ERROR(connection_->run(
          "UPDATE data_keys SET master_key_id = ?, wrapped = ? "
          "WHERE key_id = ? AND master_key_id = ?",
          key.master_key_id, Blob{key.wrapped}, key.key_id, rewrap.from_master_key_id));
      changed += static_cast<size_t>(connection_->changes());
    }
    if (changed > 0) {
      KS_RETURN_IF_ERROR(bumpConfigGeneration());
    }
    return changed;
  });
}

// Provider settings.

Result<void> SqliteStore::putProviderSetting(const ProviderSetting& setting) {
  ProviderSetting stored = setting;
  if (stored.updated_at == 0) {
    stored.updated_at = nowUnixMillis();
  }

  return write([&]() -> Result<void> {
    if (auto found = requireProject(stored.project_id); !found) {
      return std::unexpected(found.error());
    }

    auto upserted = connection_->run(
        "INSERT INTO provider_settings (project_id, provider, mode, status, updated_at) "
        "VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (project_id, provider) DO UPDATE SET "
        "mode = excluded.mode, status = excluded.status, updated_at = excluded.updated_at",
        stored.project_id, stored.provider, stored.mode, stored.status, stored.updated_at);
    if (!upserted) {
      return std::unexpected(describeInvalid(upserted.error(), "provider setting"));
    }
    return bumpConfigGeneration();
  });
}

Result<std::vector<ProviderSetting>> SqliteStore::listProviderSettings(
    const std::string& project_id) {
  return read([&] {
    return collectRows(
        connection_->query("SELECT project_id, provider, mode, status, updated_at "
                           "FROM provider_settings WHERE project_id = ? ORDER BY provider",
                           project_id),
        readProviderSetting);
  });
}

Result<std::vector<ProviderSetting>> SqliteStore::listAllProviderSettings() {
  return read([&] {
    return collectRows(connection_->query("SELECT project_id, provider, mode, status, updated_at "
                                          "FROM provider_settings ORDER BY project_id, provider"),
                       readProviderSetting);
  });
}

// Credentials.

Result<void> SqliteStore::putByokCredential(const Credential& credential) {
  if (credential.scope != "byok") {
    return fail(ErrorCode::kInvalidRequest, "credential '" + credential.id + "' has scope '" +
                                                credential.scope + "', expected 'byok'");
  }
  if (credential.status != "active") {
    return fail(ErrorCode::kInvalidRequest,
                "a new BYOK credential must have status 'active', "
                "not '" +
                    credential.status + "'");
  }
  if (credential.project_id.empty()) {
    return fail(ErrorCode::kInvalidRequest,
                "BYOK credential '" + credential.id + "' has no project");
  }
  Credential stored = credential;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }

  return write([&]() -> Result<void> {
    if (auto found = requireProject(stored.project_id); !found) {
      return std::unexpected(found.error());
    }

    auto key_exists =
        connection_->query("SELECT 1 FROM data_keys WHERE key_id = ? AND project_id = ?",
                           stored.data_key_id, stored.project_id);
    if (!key_exists) {
      return std::unexpected(key_exists.error());
    }
    auto found = key_exists->step();
    if (!found) {
      return std::unexpected(found.error());
    }
    if (!*found) {
      return fail(ErrorCode::kNotFound, "data key '" + stored.data_key_id +
                                            "' not found in project '" + stored.project_id + "'");
    }

    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE credentials SET status = 'replaced' "
        "WHERE project_id = ? AND provider = ? AND scope = 'byok' AND status = 'active'",
        stored.project_id, stored.provider));

    KS_RETURN_IF_ERROR(insertCredential(stored));
    return bumpConfigGeneration();
  });
}

Result<void> SqliteStore::insertCredential(const Credential& credential) {
  auto inserted =
      connection_->run("INSERT INTO credentials (" + std::string(kCredentialColumns) +
                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       credential.id, NullIfEmpty{credential.project_id}, credential.provider,
                       credential.scope, credential.status, credential.label, credential.mask,
                       credential.fingerprint, credential.data_key_id, Blob{credential.ciphertext},
                       credential.created_at, credential.rpm_limit);
  if (!inserted) {
    const Error& error = inserted.error();
    if (error.code == ErrorCode::kConflict && violates(error, "credentials.id")) {
      return fail(ErrorCode::kConflict,
                  "a credential with id '" + credential.id + "' already exists");
    }
    return std::unexpected(describeInvalid(error, "credential"));
  }
  return {};
}

Result<std::vector<Credential>> SqliteStore::queryCredentials(std::string_view where,
                                                              const std::string& key) {
  std::string sql = "SELECT " + std::string(kCredentialColumns) + " FROM credentials " +
                    std::string(where) + " ORDER BY created_at, id";
  if (key.empty() && where.find('?') == std::string_view::npos) {
    return collectRows(connection_->query(sql), readCredential);
  }
  return collectRows(connection_->query(sql, key), readCredential);
}

Result<std::vector<Credential>> SqliteStore::listCredentials(const std::string& project_id) {
  return read([&] {
    return collectRows(connection_->query("SELECT " + std::string(kCredentialColumns) +
                                              " FROM credentials WHERE project_id = ? "
                                              "AND scope = 'byok' ORDER BY created_at, id",
                                          project_id),
                       readCredential);
  });
}

Result<std::vector<Credential>> SqliteStore::listActiveCredentials() {
  return read([&] {
    return collectRows(connection_->query("SELECT " + std::string(kCredentialColumns) +
                                          " FROM credentials WHERE status = 'active' "
                                          "ORDER BY project_id, provider, created_at, id"),
                       readCredential);
  });
}

}  // namespace keystore::store
