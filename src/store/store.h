// Store: the one interface through which Keystore persists state.
//
// SQLite is the embedded implementation; a PostgreSQL one implements the same interface so
// several stateless instances can share one database. Callers never see SQL.
//
// Thread-safety: every method may be called from any thread; implementations serialize
// internally. Methods are synchronous and may block on I/O, so the proxy's I/O threads never
// call them on the request path (they read in-memory snapshots and hand ledger rows to a
// background writer).
//
// Errors: kNotFound for a missing object, kConflict for a uniqueness violation, kInternal for
// storage failures. A failed write changes nothing (every method is one transaction).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/records.h"

namespace keystore::store {

class Store {
 public:
  virtual ~Store() = default;

  // Installation-wide key/value settings (e.g. the master-key check value). Absent: nullopt.
  virtual Result<std::optional<std::string>> getSetting(const std::string& key) = 0;
  virtual Result<void> putSetting(const std::string& key, const std::string& value) = 0;

  virtual Result<Organization> createOrganization(const Organization& organization) = 0;
  virtual Result<std::vector<Organization>> listOrganizations() = 0;

  // Creates the project together with its wrapped data key, atomically.
  virtual Result<Project> createProject(const Project& project, const DataKey& data_key) = 0;
  virtual Result<std::vector<Project>> listProjects(const std::string& organization_id) = 0;
  // Finds a project by id or, failing that, by name within the organization.
  virtual Result<Project> findProject(const std::string& organization_id,
                                      const std::string& id_or_name) = 0;
  // A project's rate-limit defaults and budget (every field nullopt until set); kNotFound for
  // an unknown project.
  virtual Result<ProjectLimits> getProjectLimits(const std::string& project_id) = 0;
  // Every project's limits, ordered by project id, for the proxy's snapshot.
  virtual Result<std::vector<ProjectLimits>> listProjectLimits() = 0;
  // Replaces every field of the project's limits. kInvalidRequest for a negative limit or
  // budget, or a warn percent outside 1-100; kNotFound for an unknown project.
  virtual Result<void> updateProjectLimits(const ProjectLimits& limits) = 0;
  // Every data key, the shared pool's included.
  virtual Result<std::vector<DataKey>> listDataKeys() = 0;
  // Stores the shared pool's data key (empty project_id) if there is none yet, and returns the
  // stored one, so concurrent first uses on several instances agree on one key.
  virtual Result<DataKey> ensurePoolDataKey(const DataKey& candidate) = 0;
  // Replaces the wrapped form of existing data keys (master-key rotation), atomically.
  virtual Result<void> updateDataKeys(const std::vector<DataKey>& data_keys) = 0;
  // Master-key rotation: applies each rewrap whose row is still wrapped by its
  // from_master_key_id and skips the others, in one transaction. Returns the rows changed.
  virtual Result<size_t> rewrapDataKeys(const std::vector<DataKeyRewrap>& rewraps) = 0;

  virtual Result<void> putProviderSetting(const ProviderSetting& setting) = 0;
  virtual Result<std::vector<ProviderSetting>> listProviderSettings(
      const std::string& project_id) = 0;
  virtual Result<std::vector<ProviderSetting>> listAllProviderSettings() = 0;

  // Stores a new BYOK credential and marks the previous active one of the same project and
  // provider "replaced", atomically.
  virtual Result<void> putByokCredential(const Credential& credential) = 0;
  // The project's BYOK credentials of every status, oldest first (pool credentials dedicated
  // to the project are listed by listPoolCredentials).
  virtual Result<std::vector<Credential>> listCredentials(const std::string& project_id) = 0;
  // Every credential with status "active", for the proxy's snapshot.
  virtual Result<std::vector<Credential>> listActiveCredentials() = 0;

  // Marketplace pools. addPoolCredential stores a "shared" or "dedicated" credential (status
  // active); listPoolCredentials returns those of `provider` (empty = every provider), any
  // status, oldest first. setCredentialStatus changes a pool credential's status to "active"
  // or "disabled"; kNotFound for an unknown id or a BYOK credential.
  virtual Result<void> addPoolCredential(const Credential& credential) = 0;
  virtual Result<std::vector<Credential>> listPoolCredentials(const std::string& provider) = 0;
  virtual Result<Credential> getCredential(const std::string& credential_id) = 0;
  virtual Result<Credential> setCredentialStatus(const std::string& credential_id,
                                                 const std::string& status) = 0;

  // Concierge requests. create fills a missing id ("cnc_…") and times; list filters by
  // project (empty = all) and status (empty = any), newest first. fulfill stores `credential`
  // (scope "dedicated", the request's project and provider) and marks the request fulfilled,
  // atomically; fulfill and reject fail with kConflict unless the request is open.
  virtual Result<ConciergeRequest> createConciergeRequest(const ConciergeRequest& request) = 0;
  virtual Result<std::vector<ConciergeRequest>> listConciergeRequests(
      const std::string& project_id, const std::string& status) = 0;
  virtual Result<ConciergeRequest> getConciergeRequest(const std::string& request_id) = 0;
  virtual Result<ConciergeRequest> fulfillConciergeRequest(const std::string& request_id,
                                                           const Credential& credential,
                                                           int64_t now) = 0;
  virtual Result<ConciergeRequest> rejectConciergeRequest(const std::string& request_id,
                                                          const std::string& reason,
                                                          int64_t now) = 0;

  virtual Result<Agent> createAgent(const Agent& agent) = 0;
  virtual Result<std::vector<Agent>> listAgents(const std::string& project_id) = 0;
  virtual Result<std::vector<Agent>> listAllAgents() = 0;
  // Finds an agent by id or, failing that, by name within the project (project may be empty
  // when an id is given).
  virtual Result<Agent> findAgent(const std::string& project_id, const std::string& id_or_name) = 0;
  // Replaces name, status, limits and budget. kInvalidRequest for a negative limit or budget,
  // or a warn percent outside 1-100.
  virtual Result<void> updateAgent(const Agent& agent) = 0;

  virtual Result<AgentToken> createToken(const AgentToken& token) = 0;
  virtual Result<std::vector<AgentToken>> listTokens(const std::string& agent_id) = 0;
  // Tokens that are neither revoked nor expired at `now`, for the proxy's snapshot.
  virtual Result<std::vector<AgentToken>> listLiveTokens(int64_t now) = 0;
  // Every token including revoked and expired ones, so the proxy can return token_revoked
  // and token_expired precisely.
  virtual Result<std::vector<AgentToken>> listAllTokens() = 0;
  virtual Result<AgentToken> getToken(const std::string& token_id) = 0;
  // Sets expires_at (0 = never); kNotFound for an unknown id.
  virtual Result<AgentToken> setTokenExpiry(const std::string& token_id, int64_t expires_at) = 0;
  // Sets revoked_at if the token is not already revoked; kNotFound for an unknown id.
  virtual Result<AgentToken> revokeToken(const std::string& token_id, int64_t now) = 0;
  // Stores `replacement` (same agent; rotated_from set to token_id) and links the old token
  // to it, atomically. The old token is revoked at `now` when grace_ms is 0; otherwise it
  // expires at now + grace_ms, or at its own expiry when that comes first. kNotFound for an
  // unknown id; kConflict when the old token is revoked, expired at `now` or already rotated.
  virtual Result<TokenRotation> rotateToken(const std::string& token_id,
                                            const AgentToken& replacement, int64_t now,
                                            int64_t grace_ms) = 0;
  virtual Result<void> touchTokens(const std::vector<std::pair<std::string, int64_t>>& used) = 0;

  virtual Result<AdminKey> createAdminKey(const AdminKey& key) = 0;
  virtual Result<std::optional<AdminKey>> findAdminKeyByHash(const std::string& key_hash) = 0;
  virtual Result<size_t> countAdminKeys() = 0;
  virtual Result<std::vector<AdminKey>> listAdminKeys(const std::string& organization_id) = 0;
  // Sets revoked_at if the key is not already revoked; kNotFound for an unknown id.
  virtual Result<AdminKey> revokeAdminKey(const std::string& key_id, int64_t now) = 0;

  // Appends rows in one transaction: either all are stored or none. A negative unit count or
  // cost is kInvalidRequest.
  virtual Result<void> appendLedger(std::span<const LedgerRowView> rows) = 0;
  Result<void> appendLedger(std::span<const LedgerRow> rows) {
    std::vector<LedgerRowView> views;
    views.reserve(rows.size());
    for (const LedgerRow& row : rows) {
      views.push_back(viewOf(row));
    }
    return appendLedger(std::span<const LedgerRowView>(views));
  }
  Result<void> appendLedger(const std::vector<LedgerRow>& rows) {
    return appendLedger(std::span<const LedgerRow>(rows));
  }
  virtual Result<std::vector<LedgerRow>> queryLedger(const LedgerQuery& query) = 0;

  // The price table. putPrice appends a row and returns it with its id (and created_at, and
  // effective_from when 0, set to now); rows are never changed or deleted. kInvalidRequest for
  // an empty provider, a unit outside kUsageUnits or a negative price. listPrices returns every
  // row, newest effective_from first (ties: last appended first). pricesAt returns, for each
  // (provider, model, unit), the row in effect at `time`: the newest effective_from <= time,
  // the last appended among equals. Ordered by provider, model, unit.
  virtual Result<Price> putPrice(const Price& price) = 0;
  virtual Result<std::vector<Price>> listPrices() = 0;
  virtual Result<std::vector<Price>> pricesAt(int64_t time) = 0;

  // The sum of cost_micros per agent and per project over ledger rows with
  // month_start <= time < month_end, so budget counters can be seeded at start-up. Billable and
  // BYOK rows both count, because a budget caps what an agent costs whether Keystore or the
  // provider bills it. Rows without an agent or project id are left out, and so are rows
  // that cost nothing: an id whose rows all cost nothing has no entry.
  virtual Result<SpendTotals> monthSpend(int64_t month_start_ms, int64_t month_end_ms) = 0;

  // The sum of cost_micros per agent and per project, as in monthSpend, over ledger rows with
  // id > after_id and month_start <= time < month_end, plus the next cursor: the highest
  // ledger id visible to this read, rows outside the window included (after_id when none is
  // higher). Adding successive deltas keeps a month total without rescanning the month.
  // kInvalidRequest when month_end <= month_start or after_id < 0.
  //
  // The cursor is only safe when no row with a lower id can commit after a higher one. SQLite
  // serializes writers, so its ids follow commit order. PostgreSQL does not: a sequence hands
  // out ids at insert time, and transactions commit in any order. A store with concurrent
  // writers must therefore keep the cursor below the ids of transactions still open, for
  // example by numbering rows from a commit-ordered sequence, or by rescanning a lag window.
  virtual Result<SpendDelta> spendSince(int64_t after_id, int64_t month_start_ms,
                                        int64_t month_end_ms) = 0;

  // Ledger rows with since <= time < until (until 0 = open-ended) of the project (and agent),
  // grouped by query.group_by and ordered by key; exact integer sums. kInvalidRequest for an
  // unknown group_by.
  virtual Result<std::vector<UsageReportRow>> usageReport(const UsageQuery& query) = 0;

  // The project's invoice for rows with month_start <= time < month_end: one line per
  // provider, model, unit, price and billable flag, pricing the units of each row at the
  // prices that row recorded. kInvalidRequest for an empty project id or month_end <=
  // month_start.
  virtual Result<Invoice> invoice(const std::string& project_id, int64_t month_start,
                                  int64_t month_end) = 0;

  // Users, memberships and sessions of the management API.
  //
  // createUser fills a missing id ("usr_…") and created_at, stores the email in lower case,
  // and fails with kConflict when another user has the same email in any case.
  // findUserByEmail compares case-insensitively and returns nullopt for an unknown email.
  // getUser, setUserPassword and setUserOperator fail with kNotFound for an unknown id.
  virtual Result<User> createUser(const User& user) = 0;
  virtual Result<User> getUser(const std::string& user_id) = 0;
  virtual Result<std::optional<User>> findUserByEmail(const std::string& email) = 0;
  virtual Result<void> setUserPassword(const std::string& user_id,
                                       const std::string& password_hash) = 0;
  virtual Result<User> setUserOperator(const std::string& user_id, bool is_operator) = 0;

  // Creates the organization and makes `owner_user_id` its owner, atomically. kConflict when
  // the name is taken, kNotFound for an unknown user.
  virtual Result<Organization> createOrganizationWithOwner(const Organization& organization,
                                                           const std::string& owner_user_id,
                                                           int64_t now) = 0;
  // Adds a membership; kConflict when the user already belongs to the organization,
  // kNotFound for an unknown organization or user, kInvalidRequest for an unknown role.
  virtual Result<Membership> addMembership(const Membership& membership) = 0;
  // Creates the user and its first membership atomically (membership.user_id is ignored).
  virtual Result<Membership> createUserWithMembership(const User& user,
                                                      const Membership& membership) = 0;
  // The user's memberships, oldest first, with organization_name filled in.
  virtual Result<std::vector<Membership>> listUserMemberships(const std::string& user_id) = 0;
  // The organization's members, oldest first, with user_email filled in.
  virtual Result<std::vector<Membership>> listMembers(const std::string& organization_id) = 0;
  // Changes a member's role, or removes the member. Both fail with kNotFound when the user is
  // not a member, and with kConflict when the organization would be left without an owner.
  // The check and the change are one transaction, so two concurrent demotions cannot both
  // succeed.
  virtual Result<Membership> updateMembershipRole(const std::string& organization_id,
                                                  const std::string& user_id,
                                                  const std::string& role) = 0;
  virtual Result<void> removeMembership(const std::string& organization_id,
                                        const std::string& user_id) = 0;

  // createSession fills a missing id ("ses_…"). findSessionByHash returns the session with
  // that token hash, revoked and expired ones included, or nullopt. touchSession moves
  // last_seen_at forward only. revokeSession sets revoked_at once (kNotFound for an unknown
  // id). revokeUserSessions revokes every live session of the user except `keep_session_id`
  // and returns how many it revoked.
  virtual Result<Session> createSession(const Session& session) = 0;
  virtual Result<std::optional<Session>> findSessionByHash(const std::string& token_hash) = 0;
  virtual Result<void> touchSession(const std::string& session_id, int64_t now) = 0;
  virtual Result<void> revokeSession(const std::string& session_id, int64_t now) = 0;
  virtual Result<size_t> revokeUserSessions(const std::string& user_id,
                                            const std::string& keep_session_id, int64_t now) = 0;

  // A number that grows on every change that affects the proxy's snapshot (tokens, agents,
  // project limits, provider settings, credentials, data keys, pool credentials, prices).
  // Instances poll it to learn of changes made by other instances.
  virtual Result<int64_t> configGeneration() = 0;

  // Runs `body` as one transaction: every Store method that `body` calls on the calling thread
  // joins it, and a failed body, or a failed commit, undoes all of their writes. Other threads'
  // calls wait until it ends. REQUIRES: `body` starts no thread that calls this store and
  // waits for it, because that call would wait for this transaction to end.
  virtual Result<void> inTransaction(const std::function<Result<void>()>& body) = 0;

  // The audit trail, append-only. appendAudit fills a missing id ("aud_…") and time, assigns
  // seq, prev_hash and hash in the same write transaction that stores the entry, so the chain
  // stays linear under concurrent writers, and returns the stored entry. kInvalidRequest for an
  // empty organization, actor or action, or details that are not a JSON object.
  // listAudit returns entries matching `query`, newest first; kInvalidRequest for a limit
  // below 1. readAuditChain returns up to `limit` entries with seq > after_seq in seq order,
  // for verifying the chain page by page.
  virtual Result<AuditEntry> appendAudit(const AuditEntry& entry) = 0;
  virtual Result<std::vector<AuditEntry>> listAudit(const AuditQuery& query) = 0;
  virtual Result<std::vector<AuditEntry>> readAuditChain(int64_t after_seq, int limit) = 0;
  // Webhook endpoints. create fails with kNotFound for an unknown project; update replaces
  // url, description, events, status, secret and updated_at; delete removes the endpoint and
  // its deliveries. list returns a project's endpoints (empty project = every project), oldest
  // first.
  virtual Result<WebhookEndpoint> createWebhookEndpoint(const WebhookEndpoint& endpoint) = 0;
  virtual Result<WebhookEndpoint> getWebhookEndpoint(const std::string& endpoint_id) = 0;
  virtual Result<std::vector<WebhookEndpoint>> listWebhookEndpoints(
      const std::string& project_id) = 0;
  virtual Result<void> updateWebhookEndpoint(const WebhookEndpoint& endpoint) = 0;
  virtual Result<void> deleteWebhookEndpoint(const std::string& endpoint_id) = 0;

  // Webhook deliveries. enqueue stores pending deliveries, all or none. claim picks the
  // pending delivery that has been due longest and whose lease has expired, counts an attempt
  // and leases it until now + lease_ms, atomically, so two instances never start the same
  // attempt; nullopt when none is due. finish records an attempt's outcome and releases the
  // lease; kConflict when the delivery has since been claimed again. list returns an
  // endpoint's deliveries newest first, those older than `before_id` when it is set.
  virtual Result<void> enqueueWebhookDeliveries(const std::vector<WebhookDelivery>& deliveries) = 0;
  virtual Result<std::optional<WebhookDelivery>> claimWebhookDelivery(int64_t now,
                                                                      int64_t lease_ms) = 0;
  virtual Result<void> finishWebhookAttempt(const WebhookAttemptResult& result) = 0;
  virtual Result<std::vector<WebhookDelivery>> listWebhookDeliveries(const std::string& endpoint_id,
                                                                     const std::string& before_id,
                                                                     int limit) = 0;
};

}  // namespace keystore::store
