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
#include <optional>
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
  virtual Result<std::vector<DataKey>> listDataKeys() = 0;
  // Replaces the wrapped form of existing data keys (master-key rotation), atomically.
  virtual Result<void> updateDataKeys(const std::vector<DataKey>& data_keys) = 0;

  virtual Result<void> putProviderSetting(const ProviderSetting& setting) = 0;
  virtual Result<std::vector<ProviderSetting>> listProviderSettings(
      const std::string& project_id) = 0;
  virtual Result<std::vector<ProviderSetting>> listAllProviderSettings() = 0;

  // Stores a new BYOK credential and marks the previous active one of the same project and
  // provider "replaced", atomically.
  virtual Result<void> putByokCredential(const Credential& credential) = 0;
  virtual Result<std::vector<Credential>> listCredentials(const std::string& project_id) = 0;
  // Every credential with status "active", for the proxy's snapshot.
  virtual Result<std::vector<Credential>> listActiveCredentials() = 0;

  virtual Result<Agent> createAgent(const Agent& agent) = 0;
  virtual Result<std::vector<Agent>> listAgents(const std::string& project_id) = 0;
  virtual Result<std::vector<Agent>> listAllAgents() = 0;
  // Finds an agent by id or, failing that, by name within the project (project may be empty
  // when an id is given).
  virtual Result<Agent> findAgent(const std::string& project_id,
                                  const std::string& id_or_name) = 0;
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
  virtual Result<void> touchTokens(const std::vector<std::pair<std::string, int64_t>>& used) = 0;

  virtual Result<AdminKey> createAdminKey(const AdminKey& key) = 0;
  virtual Result<std::optional<AdminKey>> findAdminKeyByHash(const std::string& key_hash) = 0;
  virtual Result<size_t> countAdminKeys() = 0;

  // Appends rows in one transaction: either all are stored or none.
  virtual Result<void> appendLedger(const std::vector<LedgerRow>& rows) = 0;
  virtual Result<std::vector<LedgerRow>> queryLedger(const LedgerQuery& query) = 0;

  // A number that grows on every change that affects the proxy's snapshot (tokens, agents,
  // provider settings, credentials, data keys). Instances poll it to learn of changes made
  // by other instances.
  virtual Result<int64_t> configGeneration() = 0;
};

}  // namespace keystore::store
