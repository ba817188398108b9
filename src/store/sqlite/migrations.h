// The SQLite schema as an ordered list of migration scripts, and the code that applies them
// when a store opens.
//
// Every database records the versions applied to it in schema_migrations(version,
// applied_at). Not thread-safe: call with exclusive use of the Connection.
#pragma once

#include <span>
#include <string_view>

#include "common/error.h"
#include "store/sqlite/connection.h"

namespace keystore::store::sqlite {

struct Migration {
  int version = 0;
  std::string_view script;  // one or more SQL statements
  // Drops or renames a table that others reference, so it runs with foreign-key enforcement
  // off and is checked with foreign_key_check before it commits.
  bool rebuilds_tables = false;
};

// The schema history, oldest first, numbered 1, 2, 3, ... without gaps. A shipped entry is
// never edited: a schema change appends a new migration.
std::span<const Migration> sqliteMigrations();

// Applies the entries of `migrations` newer than the database's version, in order and each
// in its own transaction, and returns the resulting version. Concurrent openers are safe
// because each migration re-reads the version under the write lock. Fails with kInternal,
// applying nothing, when the database already has a version newer than the last entry
// (written by a newer binary), or when the list is not numbered 1, 2, 3, ...
Result<int> applyMigrations(Connection& connection, std::span<const Migration> migrations);

}  // namespace keystore::store::sqlite
