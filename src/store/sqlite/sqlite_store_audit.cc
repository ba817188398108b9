// The audit trail of SqliteStore, and inTransaction(), which lets the management API store a
// change and its audit entry atomically.
#include <string>

#include "audit/audit_chain.h"
#include "common/clock.h"
#include "common/random.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::collectRows;
using sqlite::NullIfEmpty;
using sqlite::Statement;

constexpr std::string_view kAuditColumns =
    "seq, id, time, organization_id, project_id, actor, actor_kind, action, target, "
    "source_address, request_id, details, prev_hash, hash";

AuditEntry readAuditEntry(const Statement& row) {
  return AuditEntry{.seq = row.int64(0),
                    .id = row.text(1),
                    .time = row.int64(2),
                    .organization_id = row.text(3),
                    .project_id = row.text(4),
                    .actor = row.text(5),
                    .actor_kind = row.text(6),
                    .action = row.text(7),
                    .target = row.text(8),
                    .source_address = row.text(9),
                    .request_id = row.text(10),
                    .details = row.text(11),
                    .prev_hash = row.text(12),
                    .hash = row.text(13)};
}

Result<void> validateAuditEntry(const AuditEntry& entry) {
  if (entry.organization_id.empty()) {
    return fail(ErrorCode::kInvalidRequest, "an audit entry needs an organization id");
  }
  if (entry.actor.empty() || entry.actor_kind.empty()) {
    return fail(ErrorCode::kInvalidRequest, "an audit entry needs an actor and an actor kind");
  }
  if (entry.action.empty()) {
    return fail(ErrorCode::kInvalidRequest, "an audit entry needs an action");
  }
  return {};
}

}  // namespace

Result<void> SqliteStore::inTransaction(const std::function<Result<void>()>& body) {
  return write(body);
}

Result<AuditEntry> SqliteStore::appendAudit(const AuditEntry& entry) {
  if (auto valid = validateAuditEntry(entry); !valid) {
    return std::unexpected(valid.error());
  }
  AuditEntry stored = entry;
  if (stored.id.empty()) {
    stored.id = newId("aud");
  }
  if (stored.time == 0) {
    stored.time = nowUnixMillis();
  }
  if (stored.details.empty()) {
    stored.details = "{}";
  }

  return write([&]() -> Result<AuditEntry> {
    // Read under the write lock, so no other writer, here or in another process, can append
    // between this read and the insert below.
    auto last = connection_->query("SELECT hash FROM audit_entries ORDER BY seq DESC LIMIT 1");
    if (!last) {
      return std::unexpected(last.error());
    }
    auto row = last->step();
    if (!row) {
      return std::unexpected(row.error());
    }
    stored.prev_hash = *row ? last->text(0) : std::string(audit::kGenesisHash);
    stored.hash = audit::entryHash(stored, stored.prev_hash);

    auto inserted = connection_->run(
        "INSERT INTO audit_entries (id, time, organization_id, project_id, actor, actor_kind, "
        "action, target, source_address, request_id, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        stored.id, stored.time, stored.organization_id, NullIfEmpty{stored.project_id},
        stored.actor, stored.actor_kind, stored.action, stored.target, stored.source_address,
        stored.request_id, stored.details, stored.prev_hash, stored.hash);
    if (!inserted) {
      return std::unexpected(sqlite::describeInvalid(inserted.error(), "audit entry"));
    }
    stored.seq = sqlite3_last_insert_rowid(connection_->handle());
    return stored;
  });
}

Result<std::vector<AuditEntry>> SqliteStore::listAudit(const AuditQuery& query) {
  if (query.limit < 1) {
    return fail(ErrorCode::kInvalidRequest, "the audit query limit must be at least 1");
  }
  return read([&]() -> Result<std::vector<AuditEntry>> {
    std::string sql = "SELECT " + std::string(kAuditColumns) +
                      " FROM audit_entries"
                      " WHERE (?1 = '' OR organization_id = ?1)"
                      " AND (?2 = '' OR project_id = ?2)"
                      " AND (?3 = '' OR action = ?3)"
                      " AND time >= ?4 AND (?5 = 0 OR time < ?5)"
                      " AND (?6 = 0 OR seq < ?6)"
                      " ORDER BY seq DESC LIMIT ?7";
    return collectRows(
        connection_->query(sql, query.organization_id, query.project_id, query.action, query.since,
                           query.until, query.before_seq, static_cast<int64_t>(query.limit)),
        readAuditEntry);
  });
}

Result<std::vector<AuditEntry>> SqliteStore::readAuditChain(int64_t after_seq, int limit) {
  if (limit < 1) {
    return fail(ErrorCode::kInvalidRequest, "the audit chain page size must be at least 1");
  }
  return read([&]() -> Result<std::vector<AuditEntry>> {
    std::string sql = "SELECT " + std::string(kAuditColumns) +
                      " FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?";
    return collectRows(connection_->query(sql, after_seq, static_cast<int64_t>(limit)),
                       readAuditEntry);
  });
}

}  // namespace keystore::store
