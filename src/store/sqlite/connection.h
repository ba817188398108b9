// Connection: one open SQLite database handle with a cache of prepared statements, and
// Statement, a borrowed prepared statement that binds parameters and reads columns.
//
// A Connection owns its sqlite3 handle and every statement it prepared, and finalizes them
// when it is destroyed. Not thread-safe: the owner serializes all use
// of a Connection and of the Statements it hands out.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace keystore::store::sqlite {

// Bytes bound as a BLOB rather than TEXT.
struct Blob {
  std::string_view bytes;
};

// Text bound as NULL when empty, for optional references such as a pooled credential's
// missing project.
struct NullIfEmpty {
  std::string_view text;
};

// A time bound as NULL when 0, because records use 0 for "unset".
struct NullIfZero {
  int64_t value = 0;
};

// Text bound without a copy (SQLITE_STATIC), so SQLite reads the caller's bytes in step().
// REQUIRES: the bytes stay valid and unchanged until the last step() that uses the binding.
struct BorrowedText {
  std::string_view text;
};

// Maps an SQLite result code to an Error: uniqueness violations become kConflict, foreign
// key violations kNotFound, CHECK and NOT NULL violations kInvalidRequest, anything else
// kInternal. The message is SQLite's, which names tables and columns but never bound values.
Error sqliteError(sqlite3* db, int result_code);

// Whether SQLite's message for a constraint violation names `column`, as in "UNIQUE
// constraint failed: projects.organization_id, projects.name".
bool violates(const Error& error, std::string_view column);

// Prefixes the message of a CHECK or NOT NULL violation (kInvalidRequest) with the kind of
// object that was rejected; other errors pass unchanged.
Error describeInvalid(Error error, std::string_view object);

// Returns the error of `expr`, a Result, from the enclosing function when it failed.
#define KS_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    if (auto ks_result_ = (expr); !ks_result_) {  \
      return std::unexpected(ks_result_.error()); \
    }                                             \
  } while (false)

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, bool* in_use, bool owned);
  ~Statement();

  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Bind the next parameter, left to right. A bind error is reported by the next step().
  Statement& bind(std::string_view text);
  Statement& bind(const char* text) { return bind(std::string_view(text)); }
  Statement& bind(int64_t value);
  Statement& bind(int value) { return bind(static_cast<int64_t>(value)); }
  Statement& bind(std::optional<int64_t> value);
  Statement& bind(Blob blob);
  Statement& bind(NullIfEmpty text);
  Statement& bind(NullIfZero time);
  Statement& bind(BorrowedText text);

  // Resets the statement for another run with new bindings, starting again at the first
  // parameter. Bindings not bound again keep their old values.
  void reset();

  // Advances the statement: true when a row is available, false when it has finished.
  Result<bool> step();
  // Runs a statement that returns no rows to completion.
  Result<void> run();

  // Column readers for the current row. NULL reads as "" or 0, matching the records'
  // convention for unset fields.
  int64_t int64(int column) const;
  std::optional<int64_t> optionalInt64(int column) const;
  std::string text(int column) const;
  std::string blob(int column) const;

 private:
  sqlite3_stmt* stmt_;
  bool* in_use_;  // the cache's flag for this statement; null for an uncached statement
  bool owned_;    // finalize on destruction rather than reset for reuse
  int next_index_ = 1;
  int bind_result_ = SQLITE_OK;
};

// BEGIN IMMEDIATE takes the write lock up front, so busy_timeout applies at BEGIN and the
// transaction cannot fail with SQLITE_BUSY at its first write. BEGIN (deferred) gives a
// consistent snapshot for several SELECTs.
enum class TransactionKind {
  kRead,
  kWrite,
};

// Size up to which a statement journal stays in memory before SQLite moves it to a temporary
// file (SQLITE_CONFIG_STMTJRNL_SPILL; SQLite's default is 64 KiB). Set for the whole process
// when the first connection opens, unless something else initialized SQLite before.
inline constexpr int kStatementJournalSpillBytes = 4 << 20;

class Connection {
 public:
  // Opens or creates the database file at `path`, with extended result codes enabled.
  static Result<std::unique_ptr<Connection>> open(const std::string& path);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Returns the cached statement for `sql`, preparing it on first use. If the cached one is
  // still in use (a nested query with the same text), a one-off statement is prepared.
  Result<Statement> prepare(std::string_view sql);

  // Prepares `sql` and binds `args` to its parameters, left to right.
  template <typename... Args>
  Result<Statement> query(std::string_view sql, const Args&... args) {
    auto statement = prepare(sql);
    if (statement) {
      (statement->bind(args), ...);
    }
    return statement;
  }

  // Prepares `sql`, binds `args` and runs it to completion.
  template <typename... Args>
  Result<void> run(std::string_view sql, const Args&... args) {
    auto statement = query(sql, args...);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    return statement->run();
  }

  // Runs one or more statements without parameters, such as a migration script or PRAGMA.
  Result<void> exec(const std::string& sql);

  // Runs `body` (returning a Result) inside one transaction, committing when it succeeds and
  // rolling back when it fails, so a failed body changes nothing. Inside an open transaction
  // it runs as a savepoint instead: a failed body undoes only its own writes, and the
  // enclosing transaction decides whether the rest commits.
  template <typename Body>
  auto transaction(TransactionKind kind, Body&& body) -> decltype(body()) {
    if (depth_ > 0) {
      return nestedTransaction(body);
    }
    if (auto begun = begin(kind); !begun) {
      return std::unexpected(begun.error());
    }
    ++depth_;
    auto result = body();
    --depth_;
    if (!result) {
      rollback();
      return result;
    }
    if (auto committed = commit(); !committed) {
      rollback();
      return std::unexpected(committed.error());
    }
    return result;
  }

  Result<void> begin(TransactionKind kind);
  Result<void> commit();
  // Rolls back the open transaction, if SQLite has not already done so after an error.
  void rollback();

  // SAVEPOINT, RELEASE and ROLLBACK TO for a transaction nested in an open one. Starting one
  // fails with kInternal when SQLite has already rolled the enclosing transaction back (after
  // an I/O or full-disk error), because its writes would otherwise commit on their own.
  Result<void> beginNested();
  Result<void> releaseNested();
  void rollbackNested();

  // Rows changed by the most recent INSERT, UPDATE or DELETE.
  int64_t changes() const;

  sqlite3* handle() const { return db_; }

 private:
  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    std::unique_ptr<bool> in_use = std::make_unique<bool>(false);
  };

  explicit Connection(sqlite3* db) : db_(db) {}

  template <typename Body>
  auto nestedTransaction(Body& body) -> decltype(body()) {
    if (auto begun = beginNested(); !begun) {
      return std::unexpected(begun.error());
    }
    ++depth_;
    auto result = body();
    --depth_;
    if (!result) {
      rollbackNested();
      return result;
    }
    if (auto released = releaseNested(); !released) {
      rollbackNested();
      return std::unexpected(released.error());
    }
    return result;
  }

  sqlite3* db_;
  int depth_ = 0;  // transactions open on this connection, the outermost included
  std::map<std::string, CachedStatement, std::less<>> statements_;
};

// Reads every remaining row of `statement` with `read_row`.
template <typename ReadRow>
auto collectRows(Result<Statement> statement, ReadRow read_row)
    -> Result<std::vector<decltype(read_row(*statement))>> {
  if (!statement) {
    return std::unexpected(statement.error());
  }
  std::vector<decltype(read_row(*statement))> records;
  for (;;) {
    auto row = statement->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return records;
    }
    records.push_back(read_row(*statement));
  }
}

}  // namespace keystore::store::sqlite
