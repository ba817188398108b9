// SqliteStore: the Store on one SQLite database file, the embedded default for a single
// Keystore instance.
//
// Owns one connection, opened in WAL mode with synchronous=NORMAL, foreign keys on and a busy
// timeout, so other processes (a backup, the sqlite3 shell) can read while Keystore writes.
// Opening applies the schema migrations that the file lacks.
//
// Thread-safety: every public method may be called from any thread. A mutex serializes all
// use of the connection, and each method runs as one transaction, so a failed write changes
// nothing. inTransaction() holds the mutex for its whole body, so other threads wait for it.
//
// Behaviour beyond the Store contract:
// - create* methods fill in a missing id (a new random id with the prefix org, prj, agt, tok
//   or adm) and a zero created_at (the current time), and return the stored record.
//   Credential and data key ids must be given, because the vault binds ciphertexts to them.
//   createConciergeRequest likewise fills a missing id (prefix cnc) and times.
// - Invalid values fail with kInvalidRequest and store nothing. These are a mode, status,
//   scope or role outside its documented set, and an empty organization, project or agent
//   name. So is a token or admin key hash that is not 64 lowercase hex digits, and a ledger
//   row with a negative byte count, unit count, cost or latency or an upstream_status outside
//   0-999, which rejects its whole batch.
// - queryLedger returns rows with since <= time < until, newest first. An empty project_id
//   matches every project. A limit below 1 fails with kInvalidRequest.
// - touchTokens only moves last_used_at forward and skips unknown token ids.
// - Sums in monthSpend, usageReport and invoice are SQLite integer sums, which fail with
//   kInternal rather than lose precision when they overflow int64.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "store/sqlite/connection.h"
#include "store/store.h"

namespace keystore::store {

class SqliteStore final : public Store {
 public:
  // Use openSqliteStore(), which applies the migrations before handing the store out.
  explicit SqliteStore(std::unique_ptr<sqlite::Connection> connection);

  Result<std::optional<std::string>> getSetting(const std::string& key) override;
  Result<void> putSetting(const std::string& key, const std::string& value) override;

  Result<Organization> createOrganization(const Organization& organization) override;
  Result<std::vector<Organization>> listOrganizations() override;

  Result<Project> createProject(const Project& project, const DataKey& data_key) override;
  Result<std::vector<Project>> listProjects(const std::string& organization_id) override;
  Result<Project> findProject(const std::string& organization_id,
                              const std::string& id_or_name) override;
  Result<ProjectLimits> getProjectLimits(const std::string& project_id) override;
  Result<std::vector<ProjectLimits>> listProjectLimits() override;
  Result<void> updateProjectLimits(const ProjectLimits& limits) override;
  Result<std::vector<DataKey>> listDataKeys() override;
  Result<void> updateDataKeys(const std::vector<DataKey>& data_keys) override;
  Result<size_t> rewrapDataKeys(const std::vector<DataKeyRewrap>& rewraps) override;

  Result<void> putProviderSetting(const ProviderSetting& setting) override;
  Result<std::vector<ProviderSetting>> listProviderSettings(const std::string& project_id) override;
  Result<std::vector<ProviderSetting>> listAllProviderSettings() override;

  Result<void> putByokCredential(const Credential& credential) override;
  Result<std::vector<Credential>> listCredentials(const std::string& project_id) override;
  Result<std::vector<Credential>> listActiveCredentials() override;

  Result<DataKey> ensurePoolDataKey(const DataKey& candidate) override;
  Result<void> addPoolCredential(const Credential& credential) override;
  Result<std::vector<Credential>> listPoolCredentials(const std::string& provider) override;
  Result<Credential> getCredential(const std::string& credential_id) override;
  Result<Credential> setCredentialStatus(const std::string& credential_id,
                                         const std::string& status) override;

  Result<ConciergeRequest> createConciergeRequest(const ConciergeRequest& request) override;
  Result<std::vector<ConciergeRequest>> listConciergeRequests(const std::string& project_id,
                                                              const std::string& status) override;
  Result<ConciergeRequest> getConciergeRequest(const std::string& request_id) override;
  Result<ConciergeRequest> fulfillConciergeRequest(const std::string& request_id,
                                                   const Credential& credential,
                                                   int64_t now) override;
  Result<ConciergeRequest> rejectConciergeRequest(const std::string& request_id,
                                                  const std::string& reason, int64_t now) override;

  Result<Agent> createAgent(const Agent& agent) override;
  Result<std::vector<Agent>> listAgents(const std::string& project_id) override;
  Result<std::vector<Agent>> listAllAgents() override;
  Result<Agent> findAgent(const std::string& project_id, const std::string& id_or_name) override;
  Result<void> updateAgent(const Agent& agent) override;

  Result<AgentToken> createToken(const AgentToken& token) override;
  Result<std::vector<AgentToken>> listTokens(const std::string& agent_id) override;
  Result<std::vector<AgentToken>> listLiveTokens(int64_t now) override;
  Result<std::vector<AgentToken>> listAllTokens() override;
  Result<AgentToken> getToken(const std::string& token_id) override;
  Result<AgentToken> setTokenExpiry(const std::string& token_id, int64_t expires_at) override;
  Result<AgentToken> revokeToken(const std::string& token_id, int64_t now) override;
  Result<TokenRotation> rotateToken(const std::string& token_id, const AgentToken& replacement,
                                    int64_t now, int64_t grace_ms) override;
  Result<void> touchTokens(const std::vector<std::pair<std::string, int64_t>>& used) override;

  Result<AdminKey> createAdminKey(const AdminKey& key) override;
  Result<std::optional<AdminKey>> findAdminKeyByHash(const std::string& key_hash) override;
  Result<size_t> countAdminKeys() override;
  Result<std::vector<AdminKey>> listAdminKeys(const std::string& organization_id) override;
  Result<AdminKey> revokeAdminKey(const std::string& key_id, int64_t now) override;

  using Store::appendLedger;
  Result<void> appendLedger(std::span<const LedgerRowView> rows) override;
  Result<std::vector<LedgerRow>> queryLedger(const LedgerQuery& query) override;

  Result<Price> putPrice(const Price& price) override;
  Result<std::vector<Price>> listPrices() override;
  Result<std::vector<Price>> pricesAt(int64_t time) override;

  Result<SpendTotals> monthSpend(int64_t month_start_ms, int64_t month_end_ms) override;
  Result<SpendDelta> spendSince(int64_t after_id, int64_t month_start_ms,
                                int64_t month_end_ms) override;
  Result<std::vector<UsageReportRow>> usageReport(const UsageQuery& query) override;
  Result<Invoice> invoice(const std::string& project_id, int64_t month_start,
                          int64_t month_end) override;

  Result<User> createUser(const User& user) override;
  Result<User> getUser(const std::string& user_id) override;
  Result<std::optional<User>> findUserByEmail(const std::string& email) override;
  Result<void> setUserPassword(const std::string& user_id,
                               const std::string& password_hash) override;
  Result<User> setUserOperator(const std::string& user_id, bool is_operator) override;
  Result<Organization> createOrganizationWithOwner(const Organization& organization,
                                                   const std::string& owner_user_id,
                                                   int64_t now) override;
  Result<Membership> addMembership(const Membership& membership) override;
  Result<Membership> createUserWithMembership(const User& user,
                                              const Membership& membership) override;
  Result<std::vector<Membership>> listUserMemberships(const std::string& user_id) override;
  Result<std::vector<Membership>> listMembers(const std::string& organization_id) override;
  Result<Membership> updateMembershipRole(const std::string& organization_id,
                                          const std::string& user_id,
                                          const std::string& role) override;
  Result<void> removeMembership(const std::string& organization_id,
                                const std::string& user_id) override;
  Result<Session> createSession(const Session& session) override;
  Result<std::optional<Session>> findSessionByHash(const std::string& token_hash) override;
  Result<void> touchSession(const std::string& session_id, int64_t now) override;
  Result<void> revokeSession(const std::string& session_id, int64_t now) override;
  Result<size_t> revokeUserSessions(const std::string& user_id, const std::string& keep_session_id,
                                    int64_t now) override;

  Result<int64_t> configGeneration() override;

  Result<void> inTransaction(const std::function<Result<void>()>& body) override;
  Result<AuditEntry> appendAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> listAudit(const AuditQuery& query) override;
  Result<std::vector<AuditEntry>> readAuditChain(int64_t after_seq, int limit) override;
  Result<WebhookEndpoint> createWebhookEndpoint(const WebhookEndpoint& endpoint) override;
  Result<WebhookEndpoint> getWebhookEndpoint(const std::string& endpoint_id) override;
  Result<std::vector<WebhookEndpoint>> listWebhookEndpoints(const std::string& project_id) override;
  Result<void> updateWebhookEndpoint(const WebhookEndpoint& endpoint) override;
  Result<void> deleteWebhookEndpoint(const std::string& endpoint_id) override;
  Result<void> enqueueWebhookDeliveries(const std::vector<WebhookDelivery>& deliveries) override;
  Result<std::optional<WebhookDelivery>> claimWebhookDelivery(int64_t now,
                                                              int64_t lease_ms) override;
  Result<void> finishWebhookAttempt(const WebhookAttemptResult& result) override;
  Result<std::vector<WebhookDelivery>> listWebhookDeliveries(const std::string& endpoint_id,
                                                             const std::string& before_id,
                                                             int limit) override;

 private:
  // Run `body` as one transaction while holding the mutex.
  template <typename Body>
  auto read(Body&& body) -> decltype(body()) {
    std::lock_guard lock(mutex_);
    return connection_->transaction(sqlite::TransactionKind::kRead, body);
  }
  template <typename Body>
  auto write(Body&& body) -> decltype(body()) {
    std::lock_guard lock(mutex_);
    return connection_->transaction(sqlite::TransactionKind::kWrite, body);
  }

  // Helpers below run inside a transaction begun by a public method.
  Result<void> bumpConfigGeneration();
  Result<bool> exists(std::string_view sql, std::string_view key);
  // kNotFound naming the id when no such row exists.
  Result<void> requireProject(const std::string& project_id);
  Result<void> requireOrganization(const std::string& organization_id);
  Result<Project> findProjectLocked(const std::string& organization_id,
                                    const std::string& id_or_name);
  Result<Agent> findAgentLocked(const std::string& project_id, const std::string& id_or_name);
  Result<AgentToken> getTokenLocked(const std::string& token_id);
  // Checks the agent, fills the token's project and inserts it; the caller has opened the write.
  Result<void> insertTokenLocked(AgentToken& token);
  Result<void> insertCredential(const Credential& credential);
  // Credentials matching `where` (a WHERE clause with at most one parameter, bound to `key`),
  // oldest first.
  Result<std::vector<Credential>> queryCredentials(std::string_view where, const std::string& key);
  // Checks a new pool credential's references: its data key must be the pool's, and a
  // dedicated one needs an existing project.
  Result<void> requirePoolReferences(const Credential& credential);
  Result<ConciergeRequest> getConciergeRequestLocked(const std::string& request_id);
  // Account helpers, inside a transaction.
  Result<User> insertUserLocked(const User& user);
  Result<Membership> insertMembershipLocked(const Membership& membership);
  Result<Membership> getMembershipLocked(const std::string& organization_id,
                                         const std::string& user_id);
  Result<int64_t> countOwnersLocked(const std::string& organization_id);

  // Recursive so that the Store methods called inside inTransaction() re-enter it on the same
  // thread; the connection then turns their transactions into savepoints.
  std::recursive_mutex mutex_;
  std::unique_ptr<sqlite::Connection> connection_;
};

// Opens (creating if needed) the database file at `path` and brings its schema up to date.
// Fails with kInternal when the file cannot be opened, WAL mode cannot be enabled, or the
// file was written by a newer Keystore with a schema version this binary does not know.
// ":memory:" opens a private in-memory database, for tests.
Result<std::unique_ptr<Store>> openSqliteStore(const std::string& path);

}  // namespace keystore::store
