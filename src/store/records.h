// Plain records that the store persists. Times are Unix milliseconds (UTC); 0 means "unset"
// where a field is optional. Ciphertexts are opaque bytes produced by the vault.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::store {

// The metered unit names, fixed by the product contract and shared by the ledger, the price
// table, reports and metrics, in the order of kUnitCountFields.
inline constexpr std::array<std::string_view, 8> kUsageUnits = {
    "input_tokens", "cached_input_tokens", "output_tokens", "requests", "emails",
    "messages",     "read_units",          "write_units",
};

// A count for each metered unit: one request's usage, or a sum of them in a report.
struct UnitCounts {
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t requests = 0;
  int64_t emails = 0;
  int64_t messages = 0;
  int64_t read_units = 0;
  int64_t write_units = 0;

  bool operator==(const UnitCounts&) const = default;
};

// UnitCounts' fields in the order of kUsageUnits: counts.*kUnitCountFields[i] is the count of
// kUsageUnits[i].
inline constexpr std::array<int64_t UnitCounts::*, 8> kUnitCountFields = {
    &UnitCounts::input_tokens,  &UnitCounts::cached_input_tokens,
    &UnitCounts::output_tokens, &UnitCounts::requests,
    &UnitCounts::emails,        &UnitCounts::messages,
    &UnitCounts::read_units,    &UnitCounts::write_units,
};

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

// A data key, wrapped (encrypted) by the master key identified by master_key_id. Each project
// has one; the operator's shared marketplace pool has one with an empty project_id.
struct DataKey {
  std::string project_id;  // empty for the shared pool's data key
  std::string key_id;
  std::string master_key_id;
  std::string wrapped;  // vault ciphertext
  int64_t created_at = 0;
};

// A project's rate-limit defaults and monthly budget, kept apart from Project so that code
// building a Project is unaffected. The defaults apply to each agent of the project that has
// no limit of its own. The budget caps the whole project's spend in a UTC calendar month.
// nullopt = no default, no budget, no warning.
struct ProjectLimits {
  std::string project_id;
  std::optional<int64_t> default_rpm;  // requests per minute per agent and provider
  std::optional<int64_t> default_rpd;  // requests per UTC day per agent and provider
  std::optional<int64_t> default_tpm;  // tokens per minute per agent and provider
  std::optional<int64_t> budget_cents;
  std::optional<int64_t> budget_warn_percent;  // 1-100: warn once spend reaches this share

  bool operator==(const ProjectLimits&) const = default;
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
// per (project, provider) is the newest with status "active". A marketplace credential
// belongs to the operator's pool: scope "shared" (empty project_id, usable by every project in
// marketplace mode) or "dedicated" (reserved for project_id). The plaintext is a single key or,
// for providers whose credential has several fields, a JSON object of those fields.
struct Credential {
  std::string id;
  std::string project_id;  // empty for a shared pool credential
  std::string provider;
  std::string scope = "byok";     // "byok" | "shared" | "dedicated"
  std::string status = "active";  // "active" | "replaced" | "disabled"
  std::string label;
  std::string mask;         // e.g. "sk-…a1b2", safe to show
  std::string fingerprint;  // hex SHA-256 prefix of the plaintext, safe to show
  std::string data_key_id;
  std::string ciphertext;  // vault ciphertext, bound to project, provider and id
  int64_t created_at = 0;
  // Pool credentials only: requests per minute this credential may carry across the
  // installation; 0 = no limit of its own.
  int64_t rpm_limit = 0;
};

// A project's request for a concierge provider. The operator fulfils it by provisioning a
// dedicated credential (credential_id) or rejects it with a reason.
struct ConciergeRequest {
  std::string id;
  std::string project_id;
  std::string provider;
  std::string note;
  std::string status = "open";  // "open" | "fulfilled" | "rejected"
  std::string reason;           // set when rejected
  std::string credential_id;    // set when fulfilled
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

struct Agent {
  std::string id;
  std::string project_id;
  std::string name;
  std::string status = "active";  // "active" | "paused" | "revoked"
  std::optional<int64_t> rpm_limit;
  std::optional<int64_t> rpd_limit;
  int64_t created_at = 0;
  // Tokens per minute per provider; nullopt = the project's default_tpm.
  std::optional<int64_t> tpm_limit;
  // Monthly (UTC calendar month) spending cap; nullopt = no cap of the agent's own.
  std::optional<int64_t> budget_cents;
  std::optional<int64_t> budget_warn_percent;  // 1-100: warn once spend reaches this share
};

struct AgentToken {
  std::string id;
  std::string agent_id;
  std::string project_id;
  std::string token_hash;           // 64 hex digits, SHA-256 of the token
  std::vector<std::string> scopes;  // "provider:<id>:read|write|*"
  std::vector<std::string> models;  // model names the token may request; empty = any model
  int64_t expires_at = 0;           // 0 = never
  int64_t revoked_at = 0;           // 0 = not revoked
  int64_t created_at = 0;
  int64_t last_used_at = 0;
  // Rotation links: the token this one replaced, and the token that replaced it ("" = none).
  std::string rotated_from;
  std::string rotated_to;
};

// The outcome of a token rotation: the old token with its new expiry or revocation, and the
// token that replaces it.
struct TokenRotation {
  AgentToken previous;
  AgentToken replacement;
};

// One data key's new wrapped form, applied only while the row is still wrapped by
// from_master_key_id, so a rotation that runs twice never overwrites newer work.
struct DataKeyRewrap {
  DataKey data_key;
  std::string from_master_key_id;
};

struct AdminKey {
  std::string id;
  std::string key_hash;  // 64 hex digits, SHA-256 of the key
  std::string name;
  std::string role = "owner";  // "owner" | "admin" | "member" | "viewer"
  std::string organization_id;
  // Installation-wide: may manage the marketplace pools, prices and the concierge queue.
  bool is_operator = false;
  int64_t expires_at = 0;
  int64_t revoked_at = 0;
  int64_t created_at = 0;
  std::string user_id;     // the user the key belongs to; empty for an installation key
  std::string project_id;  // the one project the key may reach; empty = every project
};

// A person who signs in to the management API. The email is unique regardless of case and
// stored in lower case.
struct User {
  std::string id;  // "usr_…"
  std::string email;
  std::string password_hash;  // Argon2id in libsodium's crypto_pwhash_str format
  bool is_operator = false;
  int64_t created_at = 0;
  int64_t disabled_at = 0;
};

// A user's role in one organization. The name and email are read-only copies joined in by
// the store's list methods.
struct Membership {
  std::string organization_id;
  std::string user_id;
  std::string role;  // "owner" | "admin" | "member" | "viewer"
  int64_t created_at = 0;
  std::string organization_name;
  std::string user_email;
};

// A signed-in session. Only the SHA-256 of its token is stored. The CSRF token is stored
// as is, because the session endpoint returns it again to the browser that holds the cookie.
struct Session {
  std::string id;  // "ses_…"
  std::string token_hash;
  std::string user_id;
  std::string csrf_token;
  int64_t created_at = 0;
  int64_t expires_at = 0;  // absolute end, whatever the activity
  int64_t last_seen_at = 0;
  int64_t revoked_at = 0;
  std::string source_address;
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
  std::string credential_id;  // the credential injected; empty when none was
  std::string method;
  std::string path;
  int upstream_status = 0;  // 0 when no upstream response was received
  std::string outcome;      // "ok" | "upstream_error" | "client_aborted" | an error code
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  int64_t latency_ms = 0;
  // The model the response (or else the request) named; empty for non-LLM providers.
  std::string model;
  UnitCounts units;
  // False when the response carried no usage figure, so units other than requests are 0
  // and not a measurement.
  bool usage_reported = false;
  // The prices that were applied, as a compact JSON object from unit name to micro-dollars per
  // million units, e.g. {"input_tokens":150000,"output_tokens":600000}. Empty when no price
  // was applied; rows written before metering have "".
  std::string prices;
  int64_t cost_micros = 0;  // at the prices above, in micro-dollars
  // True when Keystore bills the cost (marketplace). BYOK rows are billed by the provider, so
  // their cost is list price for display and budgets only.
  bool billable = false;

  bool operator==(const LedgerRow&) const = default;
};

// A LedgerRow whose text is borrowed: the ledger writer decodes its batches into views of its
// own buffers, so a batch reaches the database without a string copy per field. The members
// are those of LedgerRow, in the same order.
struct LedgerRowView {
  int64_t time = 0;
  std::string_view request_id;
  std::string_view project_id;
  std::string_view agent_id;
  std::string_view token_id;
  std::string_view provider;
  std::string_view mode;
  std::string_view credential_id;
  std::string_view method;
  std::string_view path;
  int upstream_status = 0;
  std::string_view outcome;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  int64_t latency_ms = 0;
  std::string_view model;
  UnitCounts units;
  bool usage_reported = false;
  std::string_view prices;
  int64_t cost_micros = 0;
  bool billable = false;
};

// The view of `row`, valid while `row` is alive and unchanged.
inline LedgerRowView viewOf(const LedgerRow& row) {
  return LedgerRowView{.time = row.time,
                       .request_id = row.request_id,
                       .project_id = row.project_id,
                       .agent_id = row.agent_id,
                       .token_id = row.token_id,
                       .provider = row.provider,
                       .mode = row.mode,
                       .credential_id = row.credential_id,
                       .method = row.method,
                       .path = row.path,
                       .upstream_status = row.upstream_status,
                       .outcome = row.outcome,
                       .bytes_in = row.bytes_in,
                       .bytes_out = row.bytes_out,
                       .latency_ms = row.latency_ms,
                       .model = row.model,
                       .units = row.units,
                       .usage_reported = row.usage_reported,
                       .prices = row.prices,
                       .cost_micros = row.cost_micros,
                       .billable = row.billable};
}

struct LedgerQuery {
  std::string project_id;
  std::string agent_id;  // empty = all agents
  int64_t since = 0;
  int64_t until = 0;  // 0 = open-ended
  int limit = 1000;
};

// One row of the operator's price table. Rows are only ever appended: a price change is a new
// row with a later effective_from, so the price of any past request can be recomputed.
struct Price {
  int64_t id = 0;  // assigned by the store; orders rows appended with equal effective_from
  std::string provider;
  std::string model;               // empty = the provider's default for this unit
  std::string unit;                // one of kUsageUnits
  int64_t micros_per_million = 0;  // micro-dollars per million units
  int64_t effective_from = 0;
  int64_t created_at = 0;
};

// Month-to-date cost in micro-dollars of every agent and project that has ledger rows in a
// window, keyed by id.
struct SpendTotals {
  std::map<std::string, int64_t> by_agent;
  std::map<std::string, int64_t> by_project;
};

// Spend of the ledger rows after a cursor, and the cursor that includes them.
struct SpendDelta {
  SpendTotals spend;
  int64_t cursor = 0;  // the highest ledger id read; pass it as after_id next time
};

struct UsageQuery {
  std::string project_id;  // empty = all projects
  std::string agent_id;    // empty = all agents
  int64_t since = 0;
  int64_t until = 0;             // 0 = open-ended
  std::string group_by = "day";  // "day" | "provider" | "agent" | "model"
};

// One group of a usage report.
struct UsageReportRow {
  // The UTC date ("2026-05-01") for "day", else the provider, agent id or model (possibly
  // empty for requests that named no model).
  std::string key;
  int64_t request_count = 0;  // ledger rows, whatever their outcome
  UnitCounts units;
  int64_t billable_cost_micros = 0;  // marketplace rows
  int64_t byok_cost_micros = 0;      // rows not billed by Keystore, at list price

  bool operator==(const UsageReportRow&) const = default;
};

// One line of a monthly invoice: the units of one provider, model and unit at one price.
struct InvoiceLine {
  std::string provider;
  std::string model;
  std::string unit;
  int64_t units = 0;
  int64_t micros_per_million = 0;
  // units at the line's price, rounded half up once per line.
  int64_t cost_micros = 0;
  bool billable = false;
  // What Keystore charges: cost_micros for a billable line, 0 for a BYOK line.
  int64_t billed_micros = 0;

  bool operator==(const InvoiceLine&) const = default;
};

struct Invoice {
  std::string project_id;
  int64_t month_start = 0;
  int64_t month_end = 0;
  std::vector<InvoiceLine> lines;  // billable lines first, then by provider, model, unit, price
  int64_t billed_micros = 0;       // sum of the lines' billed_micros
  int64_t byok_list_micros = 0;    // sum of the BYOK lines' cost_micros, not charged
};

// One entry of the audit trail: a change made through the management API or by an operator
// command. Entries form one installation-wide hash chain in seq order: each hash covers the
// entry's fields and the previous entry's hash (see audit/audit_chain.h). Entries are only ever
// appended.
struct AuditEntry {
  int64_t seq = 0;  // assigned by the store, strictly increasing
  std::string id;   // "aud_…"
  int64_t time = 0;
  std::string organization_id;
  std::string project_id;  // empty when the change concerns no project
  std::string actor;       // the admin key id ("ksak_…") or user id that made the change
  std::string actor_kind;  // "admin_key" | "user" | "operator_cli"
  std::string action;      // e.g. "credential.write", "token.revoke"
  std::string target;      // the id of the object changed
  std::string source_address;
  std::string request_id;
  std::string details;    // a compact JSON object without secrets
  std::string prev_hash;  // 64 hex digits; 64 zeros for the first entry
  std::string hash;       // 64 hex digits
};

struct AuditQuery {
  std::string organization_id;  // empty = every organization
  std::string project_id;       // empty = every project
  std::string action;           // empty = every action
  int64_t since = 0;
  int64_t until = 0;       // 0 = open-ended
  int64_t before_seq = 0;  // 0 = from the newest entry; else only entries with seq below it
  int limit = 100;
};

// A project's webhook endpoint. The signing secret is stored only as a vault ciphertext under
// the project's data key, bound to the project and endpoint id.
struct WebhookEndpoint {
  std::string id;  // "whk_…"; given by the caller, because the ciphertext is bound to it
  std::string project_id;
  std::string url;
  std::string description;
  std::vector<std::string> events;  // event types to deliver; empty = every type
  std::string status = "active";    // "active" | "disabled"
  std::string data_key_id;
  std::string secret_ciphertext;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

// One event to deliver to one endpoint, with its retry state. A pending delivery is due when
// next_attempt_at has passed and no instance holds its lease (lease_until in the past).
struct WebhookDelivery {
  std::string id;  // "whd_…"
  std::string endpoint_id;
  std::string project_id;
  std::string event_id;  // "evt_…"; one event fans out to one delivery per endpoint
  std::string event_type;
  std::string payload;             // the JSON body sent, signed as is
  std::string status = "pending";  // "pending" | "delivered" | "failed"
  int64_t attempts = 0;            // attempts started, counted when claimed
  int64_t next_attempt_at = 0;
  int64_t lease_until = 0;
  int64_t last_status_code = 0;  // HTTP status of the last attempt; 0 = no response
  std::string last_error;        // why the last attempt failed; never a body or a secret
  int64_t last_attempt_at = 0;
  int64_t created_at = 0;
  int64_t delivered_at = 0;
};

// The outcome of one claimed attempt. It applies only while the delivery still counts
// `attempt` attempts, so a sender whose lease expired cannot overwrite a newer attempt.
struct WebhookAttemptResult {
  std::string delivery_id;
  int64_t attempt = 0;
  std::string status;  // "delivered" | "pending" (retry at next_attempt_at) | "failed"
  int64_t status_code = 0;
  std::string error;
  int64_t next_attempt_at = 0;
  int64_t finished_at = 0;
};

}  // namespace keystore::store
