// Marketplace pools and concierge requests of SqliteStore.
#include <string>

#include "common/clock.h"
#include "common/random.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::Blob;
using sqlite::collectRows;
using sqlite::describeInvalid;
using sqlite::Statement;
using sqlite::violates;

constexpr std::string_view kConciergeColumns =
    "id, project_id, provider, note, status, reason, credential_id, created_at, updated_at";

ConciergeRequest readConciergeRequest(const Statement& row) {
  return ConciergeRequest{.id = row.text(0),
                          .project_id = row.text(1),
                          .provider = row.text(2),
                          .note = row.text(3),
                          .status = row.text(4),
                          .reason = row.text(5),
                          .credential_id = row.text(6),
                          .created_at = row.int64(7),
                          .updated_at = row.int64(8)};
}

DataKey readPoolDataKey(const Statement& row) {
  return DataKey{.project_id = "",
                 .key_id = row.text(0),
                 .master_key_id = row.text(1),
                 .wrapped = row.blob(2),
                 .created_at = row.int64(3)};
}

}  // namespace

Result<DataKey> SqliteStore::ensurePoolDataKey(const DataKey& candidate) {
  if (!candidate.project_id.empty()) {
    return fail(ErrorCode::kInvalidRequest, "the pool's data key must not belong to a project");
  }
  DataKey stored = candidate;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  return write([&]() -> Result<DataKey> {
    constexpr std::string_view kSelect =
        "SELECT key_id, master_key_id, wrapped, created_at FROM data_keys "
        "WHERE project_id IS NULL";
    auto existing = collectRows(connection_->query(std::string(kSelect)), readPoolDataKey);
    if (!existing) {
      return std::unexpected(existing.error());
    }
    if (!existing->empty()) {
      return existing->front();
    }
    auto inserted = connection_->run(
        "INSERT INTO data_keys (key_id, project_id, master_key_id, wrapped, created_at) "
        "VALUES (?, NULL, ?, ?, ?)",
        stored.key_id, stored.master_key_id, Blob{stored.wrapped}, stored.created_at);
    if (!inserted) {
      return std::unexpected(describeInvalid(inserted.error(), "data key"));
    }
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return stored;
  });
}

Result<void> SqliteStore::requirePoolReferences(const Credential& credential) {
  auto pool_key = exists("SELECT 1 FROM data_keys WHERE key_id = ? AND project_id IS NULL",
                         credential.data_key_id);
  if (!pool_key) {
    return std::unexpected(pool_key.error());
  }
  if (!*pool_key) {
    return fail(ErrorCode::kNotFound,
                "data key '" + credential.data_key_id + "' is not the marketplace pool's key");
  }
  if (credential.scope == "dedicated") {
    return requireProject(credential.project_id);
  }
  return {};
}

Result<void> SqliteStore::addPoolCredential(const Credential& credential) {
  if (credential.scope != "shared" && credential.scope != "dedicated") {
    return fail(ErrorCode::kInvalidRequest,
                "a pool credential has scope 'shared' or 'dedicated', "
                "not '" +
                    credential.scope + "'");
  }
  if ((credential.scope == "shared") != credential.project_id.empty()) {
    return fail(ErrorCode::kInvalidRequest,
                "a shared pool credential has no project and a dedicated one has one");
  }
  if (credential.status != "active") {
    return fail(ErrorCode::kInvalidRequest, "a new pool credential must have status 'active'");
  }
  Credential stored = credential;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  return write([&]() -> Result<void> {
    KS_RETURN_IF_ERROR(requirePoolReferences(stored));
    KS_RETURN_IF_ERROR(insertCredential(stored));
    return bumpConfigGeneration();
  });
}

Result<std::vector<Credential>> SqliteStore::listPoolCredentials(const std::string& provider) {
  return read([&] {
    if (provider.empty()) {
      return queryCredentials("WHERE scope <> 'byok'", "");
    }
    return queryCredentials("WHERE scope <> 'byok' AND provider = ?", provider);
  });
}

Result<Credential> SqliteStore::getCredential(const std::string& credential_id) {
  return read([&]() -> Result<Credential> {
    auto found = queryCredentials("WHERE id = ?", credential_id);
    if (!found) {
      return std::unexpected(found.error());
    }
    if (found->empty()) {
      return fail(ErrorCode::kNotFound, "credential '" + credential_id + "' not found");
    }
    return found->front();
  });
}

Result<Credential> SqliteStore::setCredentialStatus(const std::string& credential_id,
                                                    const std::string& status) {
  if (status != "active" && status != "disabled") {
    return fail(ErrorCode::kInvalidRequest,
                "a pool credential's status is 'active' or 'disabled', not '" + status + "'");
  }
  return write([&]() -> Result<Credential> {
    KS_RETURN_IF_ERROR(
        connection_->run("UPDATE credentials SET status = ? WHERE id = ? AND scope <> 'byok'",
                         status, credential_id));
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "pool credential '" + credential_id + "' not found");
    }
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    auto found = queryCredentials("WHERE id = ?", credential_id);
    if (!found) {
      return std::unexpected(found.error());
    }
    return found->front();
  });
}

Result<ConciergeRequest> SqliteStore::createConciergeRequest(const ConciergeRequest& request) {
  ConciergeRequest stored = request;
  if (stored.id.empty()) {
    stored.id = newId("cnc");
  }
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  stored.updated_at = stored.created_at;
  stored.status = "open";
  stored.reason.clear();
  stored.credential_id.clear();
  return write([&]() -> Result<ConciergeRequest> {
    KS_RETURN_IF_ERROR(requireProject(stored.project_id));
    auto inserted =
        connection_->run("INSERT INTO concierge_requests (" + std::string(kConciergeColumns) +
                             ") VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                         stored.id, stored.project_id, stored.provider, stored.note, stored.status,
                         stored.reason, stored.created_at, stored.updated_at);
    if (!inserted) {
      const Error& error = inserted.error();
      if (error.code == ErrorCode::kConflict && violates(error, "concierge_requests.provider")) {
        return fail(ErrorCode::kConflict, "project '" + stored.project_id +
                                              "' already has an open request for provider '" +
                                              stored.provider + "'");
      }
      if (error.code == ErrorCode::kConflict) {
        return fail(ErrorCode::kConflict,
                    "a concierge request with id '" + stored.id + "' already exists");
      }
      return std::unexpected(describeInvalid(error, "concierge request"));
    }
    return stored;
  });
}

Result<std::vector<ConciergeRequest>> SqliteStore::listConciergeRequests(
    const std::string& project_id, const std::string& status) {
  return read([&]() -> Result<std::vector<ConciergeRequest>> {
    std::string sql = "SELECT " + std::string(kConciergeColumns) +
                      " FROM concierge_requests WHERE (? = '' OR project_id = ?) "
                      "AND (? = '' OR status = ?) ORDER BY created_at DESC, id DESC";
    return collectRows(connection_->query(sql, project_id, project_id, status, status),
                       readConciergeRequest);
  });
}

Result<ConciergeRequest> SqliteStore::getConciergeRequestLocked(const std::string& request_id) {
  auto found = collectRows(connection_->query("SELECT " + std::string(kConciergeColumns) +
                                                  " FROM concierge_requests WHERE id = ?",
                                              request_id),
                           readConciergeRequest);
  if (!found) {
    return std::unexpected(found.error());
  }
  if (found->empty()) {
    return fail(ErrorCode::kNotFound, "concierge request '" + request_id + "' not found");
  }
  return found->front();
}

Result<ConciergeRequest> SqliteStore::getConciergeRequest(const std::string& request_id) {
  return read([&] { return getConciergeRequestLocked(request_id); });
}

Result<ConciergeRequest> SqliteStore::fulfillConciergeRequest(const std::string& request_id,
                                                              const Credential& credential,
                                                              int64_t now) {
  return write([&]() -> Result<ConciergeRequest> {
    auto request = getConciergeRequestLocked(request_id);
    if (!request) {
      return std::unexpected(request.error());
    }
    if (request->status != "open") {
      return fail(ErrorCode::kConflict,
                  "concierge request '" + request_id + "' is already " + request->status);
    }
    if (credential.scope != "dedicated" || credential.project_id != request->project_id ||
        credential.provider != request->provider || credential.status != "active") {
      return fail(ErrorCode::kInvalidRequest,
                  "the credential for concierge request '" + request_id +
                      "' must be an active dedicated credential of its project and provider");
    }
    Credential stored = credential;
    if (stored.created_at == 0) {
      stored.created_at = now;
    }
    KS_RETURN_IF_ERROR(requirePoolReferences(stored));
    KS_RETURN_IF_ERROR(insertCredential(stored));
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE concierge_requests SET status = 'fulfilled', credential_id = ?, updated_at = ? "
        "WHERE id = ?",
        stored.id, now, request_id));
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return getConciergeRequestLocked(request_id);
  });
}

Result<ConciergeRequest> SqliteStore::rejectConciergeRequest(const std::string& request_id,
                                                             const std::string& reason,
                                                             int64_t now) {
  return write([&]() -> Result<ConciergeRequest> {
    auto request = getConciergeRequestLocked(request_id);
    if (!request) {
      return std::unexpected(request.error());
    }
    if (request->status != "open") {
      return fail(ErrorCode::kConflict,
                  "concierge request '" + request_id + "' is already " + request->status);
    }
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE concierge_requests SET status = 'rejected', reason = ?, updated_at = ? "
        "WHERE id = ?",
        reason, now, request_id));
    return getConciergeRequestLocked(request_id);
  });
}

}  // namespace keystore::store
