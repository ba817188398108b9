// Plain records that the store persists. Times are Unix milliseconds (UTC); 0 means "unset"
// where a field is optional. Ciphertexts are opaque bytes produced by the vault.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace keystore::store {

struct Organization {
  std::string id;
  std::string name;
  int64_t created_at = 0;
};

struct Project {
  std::string id;
  std::string organization_id;
  std::string name;
  int64_t created_at = 0;
};

// A project's data key, wrapped (encrypted) by the master key identified by master_key_id.
struct DataKey {
  std::string project_id;
  std::string key_id;
  std::string master_key_id;
  std::string wrapped;  // vault ciphertext
  int64_t created_at = 0;
};

// A project's choice of credential source for one provider.
struct ProviderSetting {
  std::string project_id;
  std::string provider;
  std::string mode = "byok";       // "byok" | "marketplace"
  std::string status = "enabled";  // "enabled" | "disabled"
  int64_t updated_at = 0;
};

// An encrypted credential. A BYOK credential has a project_id and scope "byok"; the active one
// per (project, provider) is the newest with status "active".
struct Credential {
  std::string id;
  std::string project_id;
  std::string provider;
  std::string scope = "byok";  // "byok" | "shared" | "dedicated"
  std::string status = "active";  // "active" | "replaced" | "disabled"
  std::string label;
  std::string mask;         // e.g. "sk-…a1b2", safe to show
  std::string fingerprint;  // hex SHA-256 prefix of the plaintext, safe to show
  std::string data_key_id;
  std::string ciphertext;   // vault ciphertext, bound to project, provider and id
  int64_t created_at = 0;
};

struct Agent {
  std::string id;
  std::string project_id;
  std::string name;
  std::string status = "active";  // "active" | "paused" | "revoked"
  std::optional<int64_t> rpm_limit;
  std::optional<int64_t> rpd_limit;
  int64_t created_at = 0;
};

struct AgentToken {
  std::string id;
  std::string agent_id;
  std::string project_id;
  std::string token_hash;        // 64 hex digits, SHA-256 of the token
  std::vector<std::string> scopes;  // "provider:<id>:read|write|*"
  std::vector<std::string> models;  // model names the token may request; empty = any model
  int64_t expires_at = 0;        // 0 = never
  int64_t revoked_at = 0;        // 0 = not revoked
  int64_t created_at = 0;
  int64_t last_used_at = 0;
};

struct AdminKey {
  std::string id;
  std::string key_hash;  // 64 hex digits, SHA-256 of the key
  std::string name;
  std::string role = "owner";  // "owner" | "admin" | "member" | "viewer"
  std::string organization_id;
  int64_t expires_at = 0;
  int64_t revoked_at = 0;
  int64_t created_at = 0;
};

// One proxied request, written once whatever its outcome.
struct LedgerRow {
  int64_t time = 0;
  std::string request_id;
  std::string project_id;
  std::string agent_id;
  std::string token_id;
  std::string provider;
  std::string mode;
  std::string method;
  std::string path;
  int upstream_status = 0;  // 0 when no upstream response was received
  std::string outcome;      // "ok" | "upstream_error" | "client_aborted" | an error code
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  int64_t latency_ms = 0;
};

struct LedgerQuery {
  std::string project_id;
  std::string agent_id;  // empty = all agents
  int64_t since = 0;
  int64_t until = 0;  // 0 = open-ended
  int limit = 1000;
};

}  // namespace keystore::store
