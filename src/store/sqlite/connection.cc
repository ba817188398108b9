#include "store/sqlite/connection.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace keystore::store::sqlite {
namespace {

// Creates a missing database file with mode 0600 before SQLite opens it. SQLite gives the
// -wal and -shm files the permissions of the database file, so all three stay private.
Result<void> createPrivateFileIfMissing(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.starts_with("file:")) {
    return {};
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno == EEXIST) {
    return {};
  }
  return fail(ErrorCode::kInternal,
              "cannot create database file '" + path + "': " + std::strerror(errno));
}

// Applies the process-wide settings, which SQLite accepts only before its first use.
void configureSqliteOnce() {
  static std::once_flag configured;
  std::call_once(configured, [] {
    // A statement in a transaction copies each page it changes to a statement journal. SQLite
    // moves that journal to a file past 64 KiB, four 16 KiB pages, which each ledger batch passed.
    // SQLITE_MISUSE means SQLite was initialized before, and then its default stays.
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, kStatementJournalSpillBytes);
  });
}

}  // namespace

Error sqliteError(sqlite3* db, int result_code) {
  std::string message = sqlite3_errmsg(db);
  switch (result_code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return Error{ErrorCode::kConflict, std::move(message)};
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Error{ErrorCode::kNotFound, std::move(message)};
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_DATATYPE:
      return Error{ErrorCode::kInvalidRequest, std::move(message)};
    default:
      return Error{ErrorCode::kInternal, "database error: " + message};
  }
}

bool violates(const Error& error, std::string_view column) {
  return error.message.find(column) != std::string::npos;
}

Error describeInvalid(Error error, std::string_view object) {
  if (error.code == ErrorCode::kInvalidRequest) {
    error.message = "invalid " + std::string(object) + ": " + error.message;
  }
  return error;
}

Statement::Statement(sqlite3_stmt* stmt, bool* in_use, bool owned)
    : stmt_(stmt), in_use_(in_use), owned_(owned) {
  if (in_use_ != nullptr) {
    *in_use_ = true;
  }
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)),
      owned_(other.owned_),
      next_index_(other.next_index_),
      bind_result_(other.bind_result_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) {
    return;
  }
  if (owned_) {
    sqlite3_finalize(stmt_);
    return;
  }
  // A reset statement can be reused and keeps no read transaction open between calls.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (in_use_ != nullptr) {
    *in_use_ = false;
  }
}

Statement& Statement::bind(std::string_view text) {
  // SQLite binds NULL for a null pointer, which a default-constructed string_view has.
  const char* data = text.data() != nullptr ? text.data() : "";
  int rc =
      sqlite3_bind_text64(stmt_, next_index_++, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_result_ == SQLITE_OK) {
    bind_result_ = rc;
  }
  return *this;
}

Statement& Statement::bind(int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, next_index_++, value);
  if (bind_result_ == SQLITE_OK) {
    bind_result_ = rc;
  }
  return *this;
}

Statement& Statement::bind(std::optional<int64_t> value) {
  if (value.has_value()) {
    return bind(*value);
  }
  int rc = sqlite3_bind_null(stmt_, next_index_++);
  if (bind_result_ == SQLITE_OK) {
    bind_result_ = rc;
  }
  return *this;
}

Statement& Statement::bind(Blob blob) {
  // A zero-length blob still binds as a BLOB, never NULL, because the data pointer is valid.
  static const char kEmpty = 0;
  const char* data = blob.bytes.empty() ? &kEmpty : blob.bytes.data();
  int rc = sqlite3_bind_blob64(stmt_, next_index_++, data, blob.bytes.size(), SQLITE_TRANSIENT);
  if (bind_result_ == SQLITE_OK) {
    bind_result_ = rc;
  }
  return *this;
}

Statement& Statement::bind(NullIfEmpty text) {
  if (!text.text.empty()) {
    return bind(text.text);
  }
  return bind(std::optional<int64_t>());
}

Statement& Statement::bind(NullIfZero time) {
  if (time.value != 0) {
    return bind(time.value);
  }
  return bind(std::optional<int64_t>());
}

Statement& Statement::bind(BorrowedText text) {
  const char* data = text.text.data() != nullptr ? text.text.data() : "";
  int rc =
      sqlite3_bind_text64(stmt_, next_index_++, data, text.text.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (bind_result_ == SQLITE_OK) {
    bind_result_ = rc;
  }
  return *this;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  next_index_ = 1;
  bind_result_ = SQLITE_OK;
}

Result<bool> Statement::step() {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_result_ != SQLITE_OK) {
    return std::unexpected(sqliteError(db, bind_result_));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return std::unexpected(sqliteError(db, rc));
}

Result<void> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return {};
    }
  }
}

int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::optional<int64_t> Statement::optionalInt64(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) {
    return std::nullopt;
  }
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
  const unsigned char* data = sqlite3_column_text(stmt_, column);
  if (data == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(data), sqlite3_column_bytes(stmt_, column));
}

std::string Statement::blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  if (data == nullptr) {
    return {};
  }
  return std::string(static_cast<const char*>(data), sqlite3_column_bytes(stmt_, column));
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path) {
  configureSqliteOnce();
  if (auto created = createPrivateFileIfMissing(path); !created) {
    return std::unexpected(created.error());
  }

  sqlite3* db = nullptr;
  // The owner serializes every call, so SQLite's own per-connection mutex is not needed.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return fail(ErrorCode::kInternal, "cannot open database '" + path + "': " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() {
  for (auto& [sql, cached] : statements_) {
    sqlite3_finalize(cached.stmt);
  }
  sqlite3_close(db_);
}

Result<Statement> Connection::prepare(std::string_view sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end() && !*found->second.in_use) {
    return Statement(found->second.stmt, found->second.in_use.get(), false);
  }

  bool cache = found == statements_.end();
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              cache ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return std::unexpected(sqliteError(db_, rc));
  }
  if (!cache) {
    return Statement(stmt, nullptr, true);
  }

  auto inserted = statements_.emplace(std::string(sql), CachedStatement{stmt}).first;
  return Statement(stmt, inserted->second.in_use.get(), false);
}

Result<void> Connection::exec(const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) {
    return {};
  }
  std::string text = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return fail(ErrorCode::kInternal, "database error: " + text);
}

Result<void> Connection::begin(TransactionKind kind) {
  auto statement = prepare(kind == TransactionKind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->run();
}

Result<void> Connection::commit() {
  auto statement = prepare("COMMIT");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->run();
}

void Connection::rollback() {
  if (sqlite3_get_autocommit(db_) != 0) {
    return;
  }
  // The error of a failing ROLLBACK is dropped because the caller is already reporting the
  // error that caused the rollback.
  if (auto statement = prepare("ROLLBACK")) {
    (void)statement->run();
  }
}

Result<void> Connection::beginNested() {
  if (sqlite3_get_autocommit(db_) != 0) {
    return fail(ErrorCode::kInternal,
                "the enclosing database transaction was rolled back after an earlier error");
  }
  auto statement = prepare("SAVEPOINT ks_nested");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->run();
}

Result<void> Connection::releaseNested() {
  auto statement = prepare("RELEASE ks_nested");
  if (!statement) {
    return std::unexpected(statement.error());
  }
  return statement->run();
}

void Connection::rollbackNested() {
  if (sqlite3_get_autocommit(db_) != 0) {
    return;
  }
  // Errors are dropped for the same reason as in rollback(). RELEASE after ROLLBACK TO removes
  // the savepoint, which ROLLBACK TO alone leaves open.
  if (auto statement = prepare("ROLLBACK TO ks_nested")) {
    (void)statement->run();
  }
  if (auto statement = prepare("RELEASE ks_nested")) {
    (void)statement->run();
  }
}

int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

}  // namespace keystore::store::sqlite
