// Webhook endpoints and deliveries of SqliteStore.
#include <string>

#include "common/clock.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::Blob;
using sqlite::collectRows;
using sqlite::describeInvalid;
using sqlite::Statement;

constexpr std::string_view kEndpointColumns =
    "id, project_id, url, description, events, status, data_key_id, secret, created_at, "
    "updated_at";

constexpr std::string_view kDeliveryColumns =
    "id, endpoint_id, project_id, event_id, event_type, payload, status, attempts, "
    "next_attempt_at, lease_until, last_status_code, last_error, last_attempt_at, created_at, "
    "delivered_at";

// Event types never contain a comma, so a comma-separated list is unambiguous.
std::string joinEvents(const std::vector<std::string>& events) {
  std::string joined;
  for (const std::string& event : events) {
    if (!joined.empty()) {
      joined.push_back(',');
    }
    joined += event;
  }
  return joined;
}

std::vector<std::string> splitEvents(const std::string& joined) {
  std::vector<std::string> events;
  size_t start = 0;
  while (start < joined.size()) {
    size_t comma = joined.find(',', start);
    size_t end = comma == std::string::npos ? joined.size() : comma;
    if (end > start) {
      events.push_back(joined.substr(start, end - start));
    }
    start = end + 1;
  }
  return events;
}

WebhookEndpoint readEndpoint(const Statement& row) {
  return WebhookEndpoint{.id = row.text(0),
                         .project_id = row.text(1),
                         .url = row.text(2),
                         .description = row.text(3),
                         .events = splitEvents(row.text(4)),
                         .status = row.text(5),
                         .data_key_id = row.text(6),
                         .secret_ciphertext = row.blob(7),
                         .created_at = row.int64(8),
                         .updated_at = row.int64(9)};
}

WebhookDelivery readDelivery(const Statement& row) {
  return WebhookDelivery{.id = row.text(0),
                         .endpoint_id = row.text(1),
                         .project_id = row.text(2),
                         .event_id = row.text(3),
                         .event_type = row.text(4),
                         .payload = row.text(5),
                         .status = row.text(6),
                         .attempts = row.int64(7),
                         .next_attempt_at = row.int64(8),
                         .lease_until = row.int64(9),
                         .last_status_code = row.int64(10),
                         .last_error = row.text(11),
                         .last_attempt_at = row.int64(12),
                         .created_at = row.int64(13),
                         .delivered_at = row.int64(14)};
}

}  // namespace

Result<WebhookEndpoint> SqliteStore::createWebhookEndpoint(const WebhookEndpoint& endpoint) {
  if (endpoint.id.empty()) {
    return fail(ErrorCode::kInvalidRequest, "a webhook endpoint needs an id");
  }
  WebhookEndpoint stored = endpoint;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  if (stored.updated_at == 0) {
    stored.updated_at = stored.created_at;
  }
  return write([&]() -> Result<WebhookEndpoint> {
    KS_RETURN_IF_ERROR(requireProject(stored.project_id));
    auto inserted =
        connection_->run("INSERT INTO webhook_endpoints (" + std::string(kEndpointColumns) +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         stored.id, stored.project_id, stored.url, stored.description,
                         joinEvents(stored.events), stored.status, stored.data_key_id,
                         Blob{stored.secret_ciphertext}, stored.created_at, stored.updated_at);
    if (!inserted) {
      return std::unexpected(describeInvalid(inserted.error(), "webhook endpoint"));
    }
    return stored;
  });
}

Result<WebhookEndpoint> SqliteStore::getWebhookEndpoint(const std::string& endpoint_id) {
  return read([&]() -> Result<WebhookEndpoint> {
    auto rows = collectRows(connection_->query("SELECT " + std::string(kEndpointColumns) +
                                                   " FROM webhook_endpoints WHERE id = ?",
                                               endpoint_id),
                            readEndpoint);
    if (!rows) {
      return std::unexpected(rows.error());
    }
    if (rows->empty()) {
      return fail(ErrorCode::kNotFound, "webhook endpoint " + endpoint_id + " not found");
    }
    return std::move(rows->front());
  });
}

Result<std::vector<WebhookEndpoint>> SqliteStore::listWebhookEndpoints(
    const std::string& project_id) {
  return read([&]() -> Result<std::vector<WebhookEndpoint>> {
    return collectRows(connection_->query("SELECT " + std::string(kEndpointColumns) +
                                              " FROM webhook_endpoints WHERE ? = '' OR "
                                              "project_id = ? ORDER BY created_at, id",
                                          project_id, project_id),
                       readEndpoint);
  });
}

Result<void> SqliteStore::updateWebhookEndpoint(const WebhookEndpoint& endpoint) {
  return write([&]() -> Result<void> {
    auto updated = connection_->run(
        "UPDATE webhook_endpoints SET url = ?, description = ?, events = ?, status = ?, "
        "data_key_id = ?, secret = ?, updated_at = ? WHERE id = ?",
        endpoint.url, endpoint.description, joinEvents(endpoint.events), endpoint.status,
        endpoint.data_key_id, Blob{endpoint.secret_ciphertext}, endpoint.updated_at, endpoint.id);
    if (!updated) {
      return std::unexpected(describeInvalid(updated.error(), "webhook endpoint"));
    }
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "webhook endpoint " + endpoint.id + " not found");
    }
    return {};
  });
}

Result<void> SqliteStore::deleteWebhookEndpoint(const std::string& endpoint_id) {
  return write([&]() -> Result<void> {
    KS_RETURN_IF_ERROR(
        connection_->run("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", endpoint_id));
    KS_RETURN_IF_ERROR(connection_->run("DELETE FROM webhook_endpoints WHERE id = ?", endpoint_id));
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "webhook endpoint " + endpoint_id + " not found");
    }
    return {};
  });
}

Result<void> SqliteStore::enqueueWebhookDeliveries(const std::vector<WebhookDelivery>& deliveries) {
  if (deliveries.empty()) {
    return {};
  }
  return write([&]() -> Result<void> {
    for (const WebhookDelivery& delivery : deliveries) {
      auto inserted =
          connection_->run("INSERT INTO webhook_deliveries (" + std::string(kDeliveryColumns) +
                               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           delivery.id, delivery.endpoint_id, delivery.project_id,
                           delivery.event_id, delivery.event_type, delivery.payload,
                           delivery.status, delivery.attempts, delivery.next_attempt_at,
                           delivery.lease_until, delivery.last_status_code, delivery.last_error,
                           delivery.last_attempt_at, delivery.created_at, delivery.delivered_at);
      if (!inserted) {
        return std::unexpected(describeInvalid(inserted.error(), "webhook delivery"));
      }
    }
    return {};
  });
}

Result<std::optional<WebhookDelivery>> SqliteStore::claimWebhookDelivery(int64_t now,
                                                                         int64_t lease_ms) {
  // Idle dispatchers poll often, so a read first spares them the write lock when nothing
  // is due. The claim itself is decided again inside the write transaction.
  auto any_due = read([&]() -> Result<bool> {
    auto statement = connection_->query(
        "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
        "AND lease_until <= ? LIMIT 1",
        now, now);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    return statement->step();
  });
  if (!any_due) {
    return std::unexpected(any_due.error());
  }
  if (!*any_due) {
    return std::optional<WebhookDelivery>();
  }

  // The write transaction holds SQLite's write lock from BEGIN IMMEDIATE to COMMIT, so the
  // SELECT and the UPDATE cannot interleave with another process's claim.
  return write([&]() -> Result<std::optional<WebhookDelivery>> {
    auto due =
        collectRows(connection_->query("SELECT " + std::string(kDeliveryColumns) +
                                           " FROM webhook_deliveries WHERE status = 'pending' AND "
                                           "next_attempt_at <= ? AND lease_until <= ? "
                                           "ORDER BY next_attempt_at, id LIMIT 1",
                                       now, now),
                    readDelivery);
    if (!due) {
      return std::unexpected(due.error());
    }
    if (due->empty()) {
      return std::optional<WebhookDelivery>();
    }
    WebhookDelivery claimed = std::move(due->front());
    claimed.attempts += 1;
    claimed.lease_until = now + lease_ms;
    claimed.last_attempt_at = now;
    KS_RETURN_IF_ERROR(connection_->run(
        "UPDATE webhook_deliveries SET attempts = ?, lease_until = ?, last_attempt_at = ? "
        "WHERE id = ?",
        claimed.attempts, claimed.lease_until, claimed.last_attempt_at, claimed.id));
    return std::optional<WebhookDelivery>(std::move(claimed));
  });
}

Result<void> SqliteStore::finishWebhookAttempt(const WebhookAttemptResult& result) {
  int64_t delivered_at = result.status == "delivered" ? result.finished_at : 0;
  return write([&]() -> Result<void> {
    auto updated = connection_->run(
        "UPDATE webhook_deliveries SET status = ?, last_status_code = ?, last_error = ?, "
        "next_attempt_at = ?, lease_until = 0, delivered_at = ? "
        "WHERE id = ? AND attempts = ? AND status = 'pending'",
        result.status, result.status_code, result.error, result.next_attempt_at, delivered_at,
        result.delivery_id, result.attempt);
    if (!updated) {
      return std::unexpected(describeInvalid(updated.error(), "webhook delivery"));
    }
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kConflict, "webhook delivery " + result.delivery_id +
                                            " is no longer at attempt " +
                                            std::to_string(result.attempt));
    }
    return {};
  });
}

Result<std::vector<WebhookDelivery>> SqliteStore::listWebhookDeliveries(
    const std::string& endpoint_id, const std::string& before_id, int limit) {
  if (limit < 1) {
    return fail(ErrorCode::kInvalidRequest, "the delivery list limit must be at least 1");
  }
  return read([&]() -> Result<std::vector<WebhookDelivery>> {
    if (before_id.empty()) {
      return collectRows(connection_->query("SELECT " + std::string(kDeliveryColumns) +
                                                " FROM webhook_deliveries WHERE endpoint_id = ? "
                                                "ORDER BY created_at DESC, id DESC LIMIT ?",
                                            endpoint_id, limit),
                         readDelivery);
    }
    return collectRows(
        connection_->query(
            "SELECT " + std::string(kDeliveryColumns) +
                " FROM webhook_deliveries WHERE endpoint_id = ? AND (created_at, id) < "
                "(SELECT created_at, id FROM webhook_deliveries WHERE id = ?) "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
            endpoint_id, before_id, limit),
        readDelivery);
  });
}

}  // namespace keystore::store
