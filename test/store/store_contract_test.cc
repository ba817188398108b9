// The behaviour every Store implementation must share, run against each implementation.
//
// A backend supplies a StoreTestDatabase: an empty database that lives as long as the object
// and can be opened more than once, so tests can reopen it. To run the suite against another
// implementation, add its backend to kBackends below.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

// Records are built with designated initializers that leave the other fields at their
// defaults, which g++ 12 reports under -Wextra for every omitted field.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace keystore::store {
namespace {

class StoreTestDatabase {
 public:
  virtual ~StoreTestDatabase() = default;
  // Opens a new Store on this database. Every call reaches the same data.
  virtual Result<std::unique_ptr<Store>> open() = 0;
};

struct StoreBackend {
  std::string name;
  std::function<std::unique_ptr<StoreTestDatabase>()> create_database;
};

// Lets GoogleTest name the backend in failure messages instead of dumping its bytes.
void PrintTo(const StoreBackend& backend, std::ostream* out) {
  *out << backend.name;
}

// An SQLite file in a fresh temporary directory, removed with the object.
class SqliteTestDatabase final : public StoreTestDatabase {
 public:
  SqliteTestDatabase() {
    std::string pattern = (std::filesystem::temp_directory_path() / "store-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      directory_ = pattern;
    }
  }
  ~SqliteTestDatabase() override {
    if (!directory_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
    }
  }

  Result<std::unique_ptr<Store>> open() override {
    if (directory_.empty()) {
      return fail(ErrorCode::kInternal, "cannot create a temporary directory");
    }
    return openSqliteStore((directory_ / "keystore.db").string());
  }

 private:
  std::filesystem::path directory_;
};

const StoreBackend kBackends[] = {
    {"Sqlite", [] { return std::make_unique<SqliteTestDatabase>(); }},
};

// 64 decimal digits, which pass as a lowercase hex SHA-256, distinct for distinct `n`.
std::string fakeHash(int n) {
  std::string digits = std::to_string(n);
  return std::string(64 - digits.size(), '0') + digits;
}

class StoreContractTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    database_ = GetParam().create_database();
    auto opened = database_->open();
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
  }

  // Creates an organization, a project in it and the project's data key "<project>-key".
  Project createProject(const std::string& organization_id, const std::string& project_id,
                        const std::string& name) {
    Project project{.id = project_id, .organization_id = organization_id, .name = name};
    DataKey key{.project_id = project_id,
                .key_id = project_id + "-key",
                .master_key_id = "mk1",
                .wrapped = "wrapped-" + project_id};
    auto created = store_->createProject(project, key);
    EXPECT_TRUE(created.has_value()) << created.error().message;
    return created.value_or(Project{});
  }

  Organization createOrganization(const std::string& id, const std::string& name) {
    auto created = store_->createOrganization(Organization{.id = id, .name = name});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    return created.value_or(Organization{});
  }

  Agent createAgent(const std::string& project_id, const std::string& id, const std::string& name) {
    auto created = store_->createAgent(Agent{.id = id, .project_id = project_id, .name = name});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    return created.value_or(Agent{});
  }

  AgentToken createToken(const std::string& agent_id, const std::string& id, int hash_seed,
                         int64_t expires_at = 0) {
    auto created = store_->createToken(AgentToken{.id = id,
                                                  .agent_id = agent_id,
                                                  .token_hash = fakeHash(hash_seed),
                                                  .expires_at = expires_at,
                                                  .created_at = 1000 + hash_seed});
    EXPECT_TRUE(created.has_value()) << created.error().message;
    return created.value_or(AgentToken{});
  }

  Credential byokCredential(const std::string& id, const std::string& project_id,
                            const std::string& provider, int64_t created_at) {
    return Credential{.id = id,
                      .project_id = project_id,
                      .provider = provider,
                      .label = "label " + id,
                      .mask = "sk-...a1b2",
                      .fingerprint = "f00d",
                      .data_key_id = project_id + "-key",
                      .ciphertext = std::string("\x00\x01\xff", 3) + id,
                      .created_at = created_at};
  }

  int64_t generation() {
    auto value = store_->configGeneration();
    EXPECT_TRUE(value.has_value()) << value.error().message;
    return value.value_or(-1);
  }

  // A baseline of one organization "org" with project "p1" (named "alpha").
  void createBaseline() {
    createOrganization("org", "Acme");
    createProject("org", "p1", "alpha");
  }

  std::unique_ptr<StoreTestDatabase> database_;
  std::unique_ptr<Store> store_;
};

std::vector<std::string> credentialStatuses(const std::vector<Credential>& credentials) {
  std::vector<std::string> statuses;
  for (const Credential& credential : credentials) {
    statuses.push_back(credential.id + ":" + credential.status);
  }
  return statuses;
}

std::vector<std::string> tokenIds(const std::vector<AgentToken>& tokens) {
  std::vector<std::string> ids;
  for (const AgentToken& token : tokens) {
    ids.push_back(token.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Settings.

TEST_P(StoreContractTest, SettingMissingIsNullopt) {
  auto value = store_->getSetting("absent");
  ASSERT_TRUE(value.has_value()) << value.error().message;
  EXPECT_FALSE(value->has_value());
}

TEST_P(StoreContractTest, SettingPutOverwrites) {
  ASSERT_TRUE(store_->putSetting("check", "one").has_value());
  ASSERT_TRUE(store_->putSetting("check", "two").has_value());

  auto value = store_->getSetting("check");
  ASSERT_TRUE(value.has_value()) << value.error().message;
  EXPECT_EQ(value->value_or(""), "two");
}

// Organizations.

TEST_P(StoreContractTest, OrganizationCreateFillsIdAndTime) {
  auto created = store_->createOrganization(Organization{.name = "Acme"});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_FALSE(created->id.empty());
  EXPECT_GT(created->created_at, 0);

  auto listed = store_->listOrganizations();
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, created->id);
  EXPECT_EQ(listed->front().name, "Acme");
  EXPECT_EQ(listed->front().created_at, created->created_at);
}

TEST_P(StoreContractTest, OrganizationDuplicateNameConflict) {
  createOrganization("org1", "Acme");

  auto duplicate = store_->createOrganization(Organization{.id = "org2", .name = "Acme"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "an organization named 'Acme' already exists");
}

TEST_P(StoreContractTest, OrganizationDuplicateIdConflict) {
  createOrganization("org1", "Acme");

  auto duplicate = store_->createOrganization(Organization{.id = "org1", .name = "Other"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "an organization with id 'org1' already exists");
}

// Projects and data keys.

TEST_P(StoreContractTest, ProjectCreateStoresDataKey) {
  createOrganization("org", "Acme");
  std::string wrapped("\x00wrapped\xff", 9);
  auto created = store_->createProject(
      Project{.id = "p1", .organization_id = "org", .name = "alpha", .created_at = 5},
      DataKey{.key_id = "k1", .master_key_id = "mk1", .wrapped = wrapped, .created_at = 6});
  ASSERT_TRUE(created.has_value()) << created.error().message;

  auto projects = store_->listProjects("org");
  ASSERT_TRUE(projects.has_value()) << projects.error().message;
  ASSERT_EQ(projects->size(), 1u);
  EXPECT_EQ(projects->front().id, "p1");
  EXPECT_EQ(projects->front().organization_id, "org");
  EXPECT_EQ(projects->front().name, "alpha");
  EXPECT_EQ(projects->front().created_at, 5);

  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front().project_id, "p1");
  EXPECT_EQ(keys->front().key_id, "k1");
  EXPECT_EQ(keys->front().master_key_id, "mk1");
  EXPECT_EQ(keys->front().wrapped, wrapped);
  EXPECT_EQ(keys->front().created_at, 6);
}

TEST_P(StoreContractTest, ProjectDuplicateNameConflict) {
  createBaseline();

  auto duplicate =
      store_->createProject(Project{.id = "p2", .organization_id = "org", .name = "alpha"},
                            DataKey{.key_id = "p2-key", .master_key_id = "mk1", .wrapped = "w"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message,
            "a project named 'alpha' already exists in organization 'org'");

  // The data key of the rejected project was not stored either.
  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  EXPECT_EQ(keys->size(), 1u);
}

TEST_P(StoreContractTest, ProjectSameNameInOtherOrganizationAllowed) {
  createBaseline();
  createOrganization("org2", "Other");

  auto created =
      store_->createProject(Project{.id = "p2", .organization_id = "org2", .name = "alpha"},
                            DataKey{.key_id = "p2-key", .master_key_id = "mk1", .wrapped = "w"});
  EXPECT_TRUE(created.has_value()) << created.error().message;
}

TEST_P(StoreContractTest, ProjectDuplicateDataKeyStoresNothing) {
  createBaseline();
  int64_t before = generation();

  auto duplicate =
      store_->createProject(Project{.id = "p2", .organization_id = "org", .name = "beta"},
                            DataKey{.key_id = "p1-key", .master_key_id = "mk1", .wrapped = "w"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "a data key with id 'p1-key' already exists");

  auto projects = store_->listProjects("org");
  ASSERT_TRUE(projects.has_value()) << projects.error().message;
  ASSERT_EQ(projects->size(), 1u);
  EXPECT_EQ(projects->front().id, "p1");
  EXPECT_EQ(generation(), before);
}

TEST_P(StoreContractTest, ProjectUnknownOrganizationNotFound) {
  auto created =
      store_->createProject(Project{.id = "p1", .organization_id = "nope", .name = "alpha"},
                            DataKey{.key_id = "k1", .master_key_id = "mk1", .wrapped = "w"});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(created.error().message, "organization 'nope' not found");
}

TEST_P(StoreContractTest, FindProjectByIdOrName) {
  createBaseline();

  auto by_id = store_->findProject("org", "p1");
  ASSERT_TRUE(by_id.has_value()) << by_id.error().message;
  EXPECT_EQ(by_id->name, "alpha");

  auto by_name = store_->findProject("org", "alpha");
  ASSERT_TRUE(by_name.has_value()) << by_name.error().message;
  EXPECT_EQ(by_name->id, "p1");
}

TEST_P(StoreContractTest, FindProjectPrefersIdOverName) {
  createBaseline();
  // A project whose name is the other project's id.
  createProject("org", "p2", "p1");

  auto found = store_->findProject("org", "p1");
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_EQ(found->id, "p1");
}

TEST_P(StoreContractTest, FindProjectInOtherOrganizationNotFound) {
  createBaseline();
  createOrganization("org2", "Other");

  for (std::string id_or_name : {"p1", "alpha"}) {
    auto found = store_->findProject("org2", id_or_name);
    ASSERT_FALSE(found.has_value()) << id_or_name;
    EXPECT_EQ(found.error().code, ErrorCode::kNotFound) << id_or_name;
    EXPECT_EQ(found.error().message,
              "project '" + id_or_name + "' not found in organization 'org2'");
  }
}

TEST_P(StoreContractTest, UpdateDataKeysReplacesWrapped) {
  createBaseline();
  createProject("org", "p2", "beta");

  auto updated = store_->updateDataKeys(
      {DataKey{.project_id = "p1", .key_id = "p1-key", .master_key_id = "mk2", .wrapped = "n1"},
       DataKey{.project_id = "p2", .key_id = "p2-key", .master_key_id = "mk2", .wrapped = "n2"}});
  ASSERT_TRUE(updated.has_value()) << updated.error().message;

  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 2u);
  for (const DataKey& key : *keys) {
    EXPECT_EQ(key.master_key_id, "mk2") << key.key_id;
    EXPECT_EQ(key.wrapped, key.key_id == "p1-key" ? "n1" : "n2") << key.key_id;
  }
}

TEST_P(StoreContractTest, UpdateDataKeysUnknownKeyChangesNothing) {
  createBaseline();
  int64_t before = generation();

  auto updated = store_->updateDataKeys(
      {DataKey{.project_id = "p1", .key_id = "p1-key", .master_key_id = "mk2", .wrapped = "n1"},
       DataKey{.project_id = "p1", .key_id = "missing", .master_key_id = "mk2", .wrapped = "n"}});
  ASSERT_FALSE(updated.has_value());
  EXPECT_EQ(updated.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(updated.error().message, "data key 'missing' not found");

  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front().master_key_id, "mk1");
  EXPECT_EQ(keys->front().wrapped, "wrapped-p1");
  EXPECT_EQ(generation(), before);
}

// Provider settings.

TEST_P(StoreContractTest, ProviderSettingPutReplacesMode) {
  createBaseline();
  createProject("org", "p2", "beta");

  ASSERT_TRUE(store_->putProviderSetting(
      ProviderSetting{.project_id = "p1", .provider = "openai", .mode = "byok", .updated_at = 10}));
  ASSERT_TRUE(store_->putProviderSetting(ProviderSetting{
      .project_id = "p1", .provider = "openai", .mode = "marketplace", .updated_at = 20}));
  ASSERT_TRUE(store_->putProviderSetting(ProviderSetting{
      .project_id = "p2", .provider = "anthropic", .status = "disabled", .updated_at = 30}));

  auto settings = store_->listProviderSettings("p1");
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  ASSERT_EQ(settings->size(), 1u);
  EXPECT_EQ(settings->front().provider, "openai");
  EXPECT_EQ(settings->front().mode, "marketplace");
  EXPECT_EQ(settings->front().status, "enabled");
  EXPECT_EQ(settings->front().updated_at, 20);

  auto all = store_->listAllProviderSettings();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(1).project_id, "p2");
  EXPECT_EQ(all->at(1).provider, "anthropic");
  EXPECT_EQ(all->at(1).status, "disabled");
}

TEST_P(StoreContractTest, ProviderSettingInvalidModeRejected) {
  createBaseline();

  auto put = store_->putProviderSetting(
      ProviderSetting{.project_id = "p1", .provider = "openai", .mode = "free"});
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, ErrorCode::kInvalidRequest);

  auto settings = store_->listProviderSettings("p1");
  ASSERT_TRUE(settings.has_value()) << settings.error().message;
  EXPECT_TRUE(settings->empty());
}

TEST_P(StoreContractTest, ProviderSettingUnknownProjectNotFound) {
  auto put =
      store_->putProviderSetting(ProviderSetting{.project_id = "nope", .provider = "openai"});
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(put.error().message, "project 'nope' not found");
}

// Credentials.

TEST_P(StoreContractTest, ByokCredentialReplacesPreviousActive) {
  createBaseline();
  ASSERT_TRUE(store_->putByokCredential(byokCredential("c1", "p1", "openai", 1)));
  ASSERT_TRUE(store_->putByokCredential(byokCredential("c2", "p1", "anthropic", 2)));
  ASSERT_TRUE(store_->putByokCredential(byokCredential("c3", "p1", "openai", 3)));

  auto credentials = store_->listCredentials("p1");
  ASSERT_TRUE(credentials.has_value()) << credentials.error().message;
  EXPECT_EQ(credentialStatuses(*credentials),
            (std::vector<std::string>{"c1:replaced", "c2:active", "c3:active"}));

  auto active = store_->listActiveCredentials();
  ASSERT_TRUE(active.has_value()) << active.error().message;
  ASSERT_EQ(active->size(), 2u);
  const Credential& openai = active->at(0).provider == "openai" ? active->at(0) : active->at(1);
  EXPECT_EQ(openai.id, "c3");
  EXPECT_EQ(openai.project_id, "p1");
  EXPECT_EQ(openai.scope, "byok");
  EXPECT_EQ(openai.label, "label c3");
  EXPECT_EQ(openai.mask, "sk-...a1b2");
  EXPECT_EQ(openai.fingerprint, "f00d");
  EXPECT_EQ(openai.data_key_id, "p1-key");
  EXPECT_EQ(openai.ciphertext, std::string("\x00\x01\xff", 3) + "c3");
  EXPECT_EQ(openai.created_at, 3);
}

TEST_P(StoreContractTest, ByokCredentialDuplicateIdKeepsPrevious) {
  createBaseline();
  ASSERT_TRUE(store_->putByokCredential(byokCredential("c1", "p1", "openai", 1)));
  int64_t before = generation();

  auto duplicate = store_->putByokCredential(byokCredential("c1", "p1", "openai", 2));
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "a credential with id 'c1' already exists");

  auto credentials = store_->listCredentials("p1");
  ASSERT_TRUE(credentials.has_value()) << credentials.error().message;
  EXPECT_EQ(credentialStatuses(*credentials), (std::vector<std::string>{"c1:active"}));
  EXPECT_EQ(generation(), before);
}

TEST_P(StoreContractTest, ByokCredentialOtherScopeRejected) {
  createBaseline();
  Credential credential = byokCredential("c1", "p1", "openai", 1);
  credential.scope = "shared";

  auto put = store_->putByokCredential(credential);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(StoreContractTest, ByokCredentialUnknownProjectNotFound) {
  createBaseline();

  auto put = store_->putByokCredential(byokCredential("c1", "nope", "openai", 1));
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(put.error().message, "project 'nope' not found");
}

TEST_P(StoreContractTest, ByokCredentialForeignDataKeyNotFound) {
  createBaseline();
  createProject("org", "p2", "beta");
  Credential credential = byokCredential("c1", "p1", "openai", 1);
  credential.data_key_id = "p2-key";

  auto put = store_->putByokCredential(credential);
  ASSERT_FALSE(put.has_value());
  EXPECT_EQ(put.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(put.error().message, "data key 'p2-key' not found in project 'p1'");
}

// Agents.

TEST_P(StoreContractTest, AgentCreateAndList) {
  createBaseline();
  auto created = store_->createAgent(Agent{.id = "a1",
                                           .project_id = "p1",
                                           .name = "bot",
                                           .status = "paused",
                                           .rpm_limit = 60,
                                           .created_at = 7});
  ASSERT_TRUE(created.has_value()) << created.error().message;

  auto agents = store_->listAgents("p1");
  ASSERT_TRUE(agents.has_value()) << agents.error().message;
  ASSERT_EQ(agents->size(), 1u);
  const Agent& agent = agents->front();
  EXPECT_EQ(agent.id, "a1");
  EXPECT_EQ(agent.project_id, "p1");
  EXPECT_EQ(agent.name, "bot");
  EXPECT_EQ(agent.status, "paused");
  EXPECT_EQ(agent.rpm_limit, std::optional<int64_t>(60));
  EXPECT_EQ(agent.rpd_limit, std::nullopt);
  EXPECT_EQ(agent.created_at, 7);

  auto all = store_->listAllAgents();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->size(), 1u);
}

TEST_P(StoreContractTest, AgentDuplicateNameConflict) {
  createBaseline();
  createAgent("p1", "a1", "bot");

  auto duplicate = store_->createAgent(Agent{.id = "a2", .project_id = "p1", .name = "bot"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "an agent named 'bot' already exists in project 'p1'");
}

TEST_P(StoreContractTest, AgentInvalidStatusRejected) {
  createBaseline();

  auto created = store_->createAgent(
      Agent{.id = "a1", .project_id = "p1", .name = "bot", .status = "sleeping"});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(StoreContractTest, AgentUnknownProjectNotFound) {
  auto created = store_->createAgent(Agent{.id = "a1", .project_id = "nope", .name = "bot"});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(created.error().message, "project 'nope' not found");
}

TEST_P(StoreContractTest, FindAgentByIdOrName) {
  createBaseline();
  createAgent("p1", "a1", "bot");

  auto by_id = store_->findAgent("", "a1");
  ASSERT_TRUE(by_id.has_value()) << by_id.error().message;
  EXPECT_EQ(by_id->name, "bot");

  auto by_name = store_->findAgent("p1", "bot");
  ASSERT_TRUE(by_name.has_value()) << by_name.error().message;
  EXPECT_EQ(by_name->id, "a1");

  auto unique_name = store_->findAgent("", "bot");
  ASSERT_TRUE(unique_name.has_value()) << unique_name.error().message;
  EXPECT_EQ(unique_name->id, "a1");
}

TEST_P(StoreContractTest, FindAgentAmbiguousNameConflict) {
  createBaseline();
  createProject("org", "p2", "beta");
  createAgent("p1", "a1", "bot");
  createAgent("p2", "a2", "bot");

  auto ambiguous = store_->findAgent("", "bot");
  ASSERT_FALSE(ambiguous.has_value());
  EXPECT_EQ(ambiguous.error().code, ErrorCode::kConflict);
  EXPECT_NE(ambiguous.error().message.find("--project"), std::string::npos)
      << ambiguous.error().message;

  auto in_project = store_->findAgent("p2", "bot");
  ASSERT_TRUE(in_project.has_value()) << in_project.error().message;
  EXPECT_EQ(in_project->id, "a2");
}

TEST_P(StoreContractTest, FindAgentInOtherProjectNotFound) {
  createBaseline();
  createProject("org", "p2", "beta");
  createAgent("p1", "a1", "bot");

  auto by_id = store_->findAgent("p2", "a1");
  ASSERT_FALSE(by_id.has_value());
  EXPECT_EQ(by_id.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(by_id.error().message, "agent 'a1' not found in project 'p2'");

  auto missing = store_->findAgent("", "ghost");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message, "agent 'ghost' not found");
}

TEST_P(StoreContractTest, UpdateAgentChangesFields) {
  createBaseline();
  Agent agent = createAgent("p1", "a1", "bot");
  agent.name = "renamed";
  agent.status = "revoked";
  agent.rpm_limit = 10;
  agent.rpd_limit = 1000;
  ASSERT_TRUE(store_->updateAgent(agent));

  auto found = store_->findAgent("", "a1");
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_EQ(found->name, "renamed");
  EXPECT_EQ(found->status, "revoked");
  EXPECT_EQ(found->rpm_limit, std::optional<int64_t>(10));
  EXPECT_EQ(found->rpd_limit, std::optional<int64_t>(1000));
  EXPECT_EQ(found->project_id, "p1");
}

TEST_P(StoreContractTest, UpdateAgentUnknownNotFound) {
  createBaseline();

  auto updated = store_->updateAgent(Agent{.id = "ghost", .project_id = "p1", .name = "x"});
  ASSERT_FALSE(updated.has_value());
  EXPECT_EQ(updated.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(updated.error().message, "agent 'ghost' not found");
}

TEST_P(StoreContractTest, UpdateAgentToTakenNameConflict) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  Agent other = createAgent("p1", "a2", "other");
  other.name = "bot";

  auto updated = store_->updateAgent(other);
  ASSERT_FALSE(updated.has_value());
  EXPECT_EQ(updated.error().code, ErrorCode::kConflict);
  EXPECT_EQ(updated.error().message, "an agent named 'bot' already exists in project 'p1'");
}

// Agent tokens.

TEST_P(StoreContractTest, TokenCreateRoundTrip) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  std::vector<std::string> scopes = {"provider:openai:*", "provider:anthropic:read",
                                     "odd \"quoted\", text"};
  auto created = store_->createToken(AgentToken{.id = "t1",
                                                .agent_id = "a1",
                                                .token_hash = fakeHash(1),
                                                .scopes = scopes,
                                                .expires_at = 5000,
                                                .created_at = 100});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->project_id, "p1");

  auto token = store_->getToken("t1");
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(token->agent_id, "a1");
  EXPECT_EQ(token->project_id, "p1");
  EXPECT_EQ(token->token_hash, fakeHash(1));
  EXPECT_EQ(token->scopes, scopes);
  EXPECT_EQ(token->expires_at, 5000);
  EXPECT_EQ(token->revoked_at, 0);
  EXPECT_EQ(token->created_at, 100);
  EXPECT_EQ(token->last_used_at, 0);

  auto listed = store_->listTokens("a1");
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  EXPECT_EQ(tokenIds(*listed), (std::vector<std::string>{"t1"}));
}

TEST_P(StoreContractTest, TokenEmptyScopesRoundTrip) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  auto token = store_->getToken("t1");
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_TRUE(token->scopes.empty());
}

TEST_P(StoreContractTest, TokenModelsRoundTrip) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "any-model", 1);
  std::vector<std::string> models = {"gpt-4o-mini", "ft:gpt-4o-mini:acme:custom:abc123",
                                     "claude-3-5-haiku-20241022"};
  auto created = store_->createToken(AgentToken{.id = "limited",
                                                .agent_id = "a1",
                                                .token_hash = fakeHash(2),
                                                .scopes = {"provider:openai:*"},
                                                .models = models,
                                                .created_at = 100});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_EQ(created->models, models);

  auto token = store_->getToken("limited");
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(token->models, models);
  EXPECT_EQ(token->scopes, (std::vector<std::string>{"provider:openai:*"}));

  auto unrestricted = store_->getToken("any-model");
  ASSERT_TRUE(unrestricted.has_value()) << unrestricted.error().message;
  EXPECT_TRUE(unrestricted->models.empty());

  // The proxy's snapshot reads tokens through these lists, so they must carry models too.
  for (const auto& listed :
       {store_->listTokens("a1"), store_->listAllTokens(), store_->listLiveTokens(200)}) {
    ASSERT_TRUE(listed.has_value()) << listed.error().message;
    ASSERT_EQ(listed->size(), 2u);
    const AgentToken& limited = listed->at(0).id == "limited" ? listed->at(0) : listed->at(1);
    EXPECT_EQ(limited.id, "limited");
    EXPECT_EQ(limited.models, models);
  }
}

TEST_P(StoreContractTest, TokenDuplicateHashConflict) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  auto duplicate =
      store_->createToken(AgentToken{.id = "t2", .agent_id = "a1", .token_hash = fakeHash(1)});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "a token with the same hash already exists");
}

TEST_P(StoreContractTest, TokenPlaintextAsHashRejected) {
  createBaseline();
  createAgent("p1", "a1", "bot");

  auto created = store_->createToken(
      AgentToken{.id = "t1", .agent_id = "a1", .token_hash = "ks_" + fakeHash(1)});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(StoreContractTest, TokenUnknownAgentNotFound) {
  createBaseline();

  auto created =
      store_->createToken(AgentToken{.id = "t1", .agent_id = "ghost", .token_hash = fakeHash(1)});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(created.error().message, "agent 'ghost' not found");
}

TEST_P(StoreContractTest, TokenProjectMismatchRejected) {
  createBaseline();
  createProject("org", "p2", "beta");
  createAgent("p1", "a1", "bot");

  auto created = store_->createToken(
      AgentToken{.id = "t1", .agent_id = "a1", .project_id = "p2", .token_hash = fakeHash(1)});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(StoreContractTest, GetTokenUnknownNotFound) {
  auto token = store_->getToken("ghost");
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(token.error().message, "token 'ghost' not found");
}

TEST_P(StoreContractTest, RevokeTokenSetsRevokedAtOnce) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  auto first = store_->revokeToken("t1", 5000);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(first->revoked_at, 5000);
  int64_t after_first = generation();

  auto second = store_->revokeToken("t1", 9000);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->revoked_at, 5000);

  auto stored = store_->getToken("t1");
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(stored->revoked_at, 5000);
  EXPECT_EQ(generation(), after_first);
}

TEST_P(StoreContractTest, RevokeTokenUnknownNotFound) {
  auto revoked = store_->revokeToken("ghost", 5000);
  ASSERT_FALSE(revoked.has_value());
  EXPECT_EQ(revoked.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, LiveTokensExcludeRevokedAndExpired) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  const int64_t now = 10'000;
  createToken("a1", "never-expires", 1);
  createToken("a1", "expires-later", 2, now + 1);
  createToken("a1", "expires-now", 3, now);
  createToken("a1", "expired", 4, now - 1);
  createToken("a1", "revoked", 5);
  ASSERT_TRUE(store_->revokeToken("revoked", now - 5));

  auto live = store_->listLiveTokens(now);
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(tokenIds(*live), (std::vector<std::string>{"expires-later", "never-expires"}));

  auto all = store_->listAllTokens();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->size(), 5u);
}

TEST_P(StoreContractTest, SetTokenExpirySetsAndClears) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  auto set = store_->setTokenExpiry("t1", 7000);
  ASSERT_TRUE(set.has_value()) << set.error().message;
  EXPECT_EQ(set->expires_at, 7000);
  auto live = store_->listLiveTokens(8000);
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_TRUE(live->empty());

  auto cleared = store_->setTokenExpiry("t1", 0);
  ASSERT_TRUE(cleared.has_value()) << cleared.error().message;
  EXPECT_EQ(cleared->expires_at, 0);
  live = store_->listLiveTokens(8000);
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(tokenIds(*live), (std::vector<std::string>{"t1"}));
}

TEST_P(StoreContractTest, SetTokenExpiryUnknownNotFound) {
  auto set = store_->setTokenExpiry("ghost", 7000);
  ASSERT_FALSE(set.has_value());
  EXPECT_EQ(set.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, TouchTokensMovesLastUsedForward) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);
  createToken("a1", "t2", 2);

  ASSERT_TRUE(store_->touchTokens({{"t1", 500}, {"t2", 600}, {"ghost", 700}}));
  ASSERT_TRUE(store_->touchTokens({{"t1", 400}}));

  auto t1 = store_->getToken("t1");
  ASSERT_TRUE(t1.has_value()) << t1.error().message;
  EXPECT_EQ(t1->last_used_at, 500);
  auto t2 = store_->getToken("t2");
  ASSERT_TRUE(t2.has_value()) << t2.error().message;
  EXPECT_EQ(t2->last_used_at, 600);
}

// Admin keys.

TEST_P(StoreContractTest, AdminKeyCreateFindCount) {
  createOrganization("org", "Acme");
  auto count = store_->countAdminKeys();
  ASSERT_TRUE(count.has_value()) << count.error().message;
  EXPECT_EQ(*count, 0u);

  auto created = store_->createAdminKey(AdminKey{.id = "k1",
                                                 .key_hash = fakeHash(1),
                                                 .name = "first",
                                                 .role = "owner",
                                                 .organization_id = "org",
                                                 .expires_at = 99,
                                                 .created_at = 3});
  ASSERT_TRUE(created.has_value()) << created.error().message;

  auto found = store_->findAdminKeyByHash(fakeHash(1));
  ASSERT_TRUE(found.has_value()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  const AdminKey& key = **found;
  EXPECT_EQ(key.id, "k1");
  EXPECT_EQ(key.name, "first");
  EXPECT_EQ(key.role, "owner");
  EXPECT_EQ(key.organization_id, "org");
  EXPECT_EQ(key.expires_at, 99);
  EXPECT_EQ(key.revoked_at, 0);
  EXPECT_EQ(key.created_at, 3);

  auto missing = store_->findAdminKeyByHash(fakeHash(2));
  ASSERT_TRUE(missing.has_value()) << missing.error().message;
  EXPECT_FALSE(missing->has_value());

  count = store_->countAdminKeys();
  ASSERT_TRUE(count.has_value()) << count.error().message;
  EXPECT_EQ(*count, 1u);
}

TEST_P(StoreContractTest, AdminKeyDuplicateHashConflict) {
  ASSERT_TRUE(store_->createAdminKey(AdminKey{.id = "k1", .key_hash = fakeHash(1)}));

  auto duplicate = store_->createAdminKey(AdminKey{.id = "k2", .key_hash = fakeHash(1)});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  EXPECT_EQ(duplicate.error().message, "an admin key with the same hash already exists");
}

TEST_P(StoreContractTest, AdminKeyUnknownOrganizationNotFound) {
  auto created = store_->createAdminKey(
      AdminKey{.id = "k1", .key_hash = fakeHash(1), .organization_id = "nope"});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(created.error().message, "organization 'nope' not found");
}

// Config generation.

TEST_P(StoreContractTest, ConfigGenerationGrowsOnProxyWrites) {
  createBaseline();
  Agent agent = createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  const std::vector<std::pair<std::string, std::function<Result<void>()>>> writes = {
      {"createProject",
       [&]() -> Result<void> {
         auto created = store_->createProject(
             Project{.id = "p2", .organization_id = "org", .name = "beta"},
             DataKey{.key_id = "p2-key", .master_key_id = "mk1", .wrapped = "w"});
         return created ? Result<void>() : std::unexpected(created.error());
       }},
      {"updateDataKeys",
       [&] {
         return store_->updateDataKeys(
             {DataKey{.key_id = "p1-key", .master_key_id = "mk2", .wrapped = "w2"}});
       }},
      {"putProviderSetting",
       [&] {
         return store_->putProviderSetting(
             ProviderSetting{.project_id = "p1", .provider = "openai"});
       }},
      {"putByokCredential",
       [&] { return store_->putByokCredential(byokCredential("c1", "p1", "openai", 1)); }},
      {"createAgent",
       [&]() -> Result<void> {
         auto created = store_->createAgent(Agent{.id = "a2", .project_id = "p1", .name = "b2"});
         return created ? Result<void>() : std::unexpected(created.error());
       }},
      {"updateAgent",
       [&] {
         agent.status = "paused";
         return store_->updateAgent(agent);
       }},
      {"createToken",
       [&]() -> Result<void> {
         auto created = store_->createToken(
             AgentToken{.id = "t2", .agent_id = "a1", .token_hash = fakeHash(2)});
         return created ? Result<void>() : std::unexpected(created.error());
       }},
      {"setTokenExpiry",
       [&]() -> Result<void> {
         auto set = store_->setTokenExpiry("t1", 123456);
         return set ? Result<void>() : std::unexpected(set.error());
       }},
      {"revokeToken",
       [&]() -> Result<void> {
         auto revoked = store_->revokeToken("t1", 5000);
         return revoked ? Result<void>() : std::unexpected(revoked.error());
       }},
      {"updateProjectLimits",
       [&] {
         return store_->updateProjectLimits(ProjectLimits{.project_id = "p1", .default_rpm = 5});
       }},
      {"putPrice",
       [&]() -> Result<void> {
         auto put = store_->putPrice(
             Price{.provider = "openai", .unit = "requests", .micros_per_million = 1});
         return put ? Result<void>() : std::unexpected(put.error());
       }},
  };

  for (const auto& [name, write] : writes) {
    int64_t before = generation();
    auto written = write();
    ASSERT_TRUE(written.has_value()) << name << ": " << written.error().message;
    EXPECT_GT(generation(), before) << name;
  }
}

TEST_P(StoreContractTest, ConfigGenerationStillOnOtherWrites) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);
  int64_t before = generation();

  ASSERT_TRUE(store_->putSetting("name", "value"));
  ASSERT_TRUE(store_->createOrganization(Organization{.id = "org2", .name = "Other"}));
  ASSERT_TRUE(store_->createAdminKey(AdminKey{.id = "k1", .key_hash = fakeHash(9)}));
  ASSERT_TRUE(store_->touchTokens({{"t1", 500}}));
  ASSERT_TRUE(store_->appendLedger({LedgerRow{.time = 1, .request_id = "r1", .project_id = "p1"}}));

  EXPECT_EQ(generation(), before);
}

// Ledger.

LedgerRow ledgerRow(int64_t time, const std::string& request_id, const std::string& project_id,
                    const std::string& agent_id) {
  return LedgerRow{.time = time,
                   .request_id = request_id,
                   .project_id = project_id,
                   .agent_id = agent_id,
                   .token_id = "t-" + agent_id,
                   .provider = "openai",
                   .mode = "byok",
                   .method = "POST",
                   .path = "/v1/chat/completions",
                   .upstream_status = 200,
                   .outcome = "ok",
                   .bytes_in = 10,
                   .bytes_out = 20,
                   .latency_ms = 30};
}

std::vector<std::string> requestIds(const std::vector<LedgerRow>& rows) {
  std::vector<std::string> ids;
  for (const LedgerRow& row : rows) {
    ids.push_back(row.request_id);
  }
  return ids;
}

TEST_P(StoreContractTest, AppendLedgerStoresEveryField) {
  LedgerRow row{.time = 1234,
                .request_id = "req-1",
                .project_id = "p1",
                .agent_id = "a1",
                .token_id = "t1",
                .provider = "anthropic",
                .mode = "marketplace",
                .method = "POST",
                .path = "/v1/messages",
                .upstream_status = 529,
                .outcome = "upstream_error",
                .bytes_in = 111,
                .bytes_out = 222,
                .latency_ms = 333};
  ASSERT_TRUE(store_->appendLedger({row}));

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  const LedgerRow& stored = rows->front();
  EXPECT_EQ(stored.time, 1234);
  EXPECT_EQ(stored.request_id, "req-1");
  EXPECT_EQ(stored.project_id, "p1");
  EXPECT_EQ(stored.agent_id, "a1");
  EXPECT_EQ(stored.token_id, "t1");
  EXPECT_EQ(stored.provider, "anthropic");
  EXPECT_EQ(stored.mode, "marketplace");
  EXPECT_EQ(stored.method, "POST");
  EXPECT_EQ(stored.path, "/v1/messages");
  EXPECT_EQ(stored.upstream_status, 529);
  EXPECT_EQ(stored.outcome, "upstream_error");
  EXPECT_EQ(stored.bytes_in, 111);
  EXPECT_EQ(stored.bytes_out, 222);
  EXPECT_EQ(stored.latency_ms, 333);
}

TEST_P(StoreContractTest, AppendLedgerBatchAllVisible) {
  std::vector<LedgerRow> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back(ledgerRow(100 + i, "r" + std::to_string(i), "p1", "a1"));
  }
  ASSERT_TRUE(store_->appendLedger(batch));

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_EQ(rows->size(), 50u);
}

TEST_P(StoreContractTest, AppendLedgerInvalidRowStoresNone) {
  std::vector<LedgerRow> batch = {ledgerRow(1, "r1", "p1", "a1"), ledgerRow(2, "r2", "p1", "a1"),
                                  ledgerRow(3, "r3", "p1", "a1")};
  // A negative byte count violates the ledger's constraints after one row has been inserted.
  batch[1].bytes_out = -1;

  auto appended = store_->appendLedger(batch);
  ASSERT_FALSE(appended.has_value());
  EXPECT_EQ(appended.error().code, ErrorCode::kInvalidRequest);

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_TRUE(rows->empty());
}

TEST_P(StoreContractTest, QueryLedgerFiltersAndOrdersNewestFirst) {
  ASSERT_TRUE(store_->appendLedger({
      ledgerRow(100, "r1", "p1", "a1"),
      ledgerRow(200, "r2", "p1", "a2"),
      ledgerRow(300, "r3", "p1", "a1"),
      ledgerRow(400, "r4", "p2", "a3"),
      ledgerRow(500, "r5", "p1", "a1"),
  }));

  struct Case {
    LedgerQuery query;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {LedgerQuery{.project_id = "p1"}, {"r5", "r3", "r2", "r1"}},
      {LedgerQuery{.project_id = "p1", .agent_id = "a1"}, {"r5", "r3", "r1"}},
      {LedgerQuery{.project_id = "p1", .since = 200}, {"r5", "r3", "r2"}},
      {LedgerQuery{.project_id = "p1", .since = 200, .until = 500}, {"r3", "r2"}},
      {LedgerQuery{.project_id = "p1", .limit = 2}, {"r5", "r3"}},
      {LedgerQuery{.project_id = "p2"}, {"r4"}},
      {LedgerQuery{}, {"r5", "r4", "r3", "r2", "r1"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto rows = store_->queryLedger(cases[i].query);
    ASSERT_TRUE(rows.has_value()) << "case " << i << ": " << rows.error().message;
    EXPECT_EQ(requestIds(*rows), cases[i].expected) << "case " << i;
  }
}

TEST_P(StoreContractTest, QueryLedgerZeroLimitRejected) {
  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1", .limit = 0});
  ASSERT_FALSE(rows.has_value());
  EXPECT_EQ(rows.error().code, ErrorCode::kInvalidRequest);
}

// Marketplace pools.

class PoolStoreTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    createBaseline();
    auto key = store_->ensurePoolDataKey(
        DataKey{.key_id = "pool-key", .master_key_id = "mk1", .wrapped = "wrapped-pool"});
    ASSERT_TRUE(key.has_value()) << key.error().message;
  }

  Credential poolCredential(const std::string& id, const std::string& scope,
                            const std::string& project_id, const std::string& provider = "openai") {
    return Credential{.id = id,
                      .project_id = project_id,
                      .provider = provider,
                      .scope = scope,
                      .mask = "sk-...9999",
                      .fingerprint = "beef",
                      .data_key_id = "pool-key",
                      .ciphertext = "cipher-" + id,
                      .created_at = 100,
                      .rpm_limit = 60};
  }
};

TEST_P(PoolStoreTest, PoolDataKeyStoredOnce) {
  auto second = store_->ensurePoolDataKey(
      DataKey{.key_id = "other-key", .master_key_id = "mk1", .wrapped = "other"});
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->key_id, "pool-key");
  EXPECT_EQ(second->wrapped, "wrapped-pool");
  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  std::vector<std::string> owners;
  for (const DataKey& key : *keys) {
    owners.push_back(key.key_id + ":" + key.project_id);
  }
  std::sort(owners.begin(), owners.end());
  EXPECT_EQ(owners, (std::vector<std::string>{"p1-key:p1", "pool-key:"}));
}

TEST_P(PoolStoreTest, PoolDataKeyWithProjectRejected) {
  auto rejected = store_->ensurePoolDataKey(DataKey{.project_id = "p1", .key_id = "k"});
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(PoolStoreTest, PoolCredentialsListedWithLimitAndScope) {
  int64_t before = generation();
  ASSERT_TRUE(store_->addPoolCredential(poolCredential("s1", "shared", "")).has_value());
  ASSERT_TRUE(store_->addPoolCredential(poolCredential("d1", "dedicated", "p1")).has_value());
  ASSERT_TRUE(
      store_->addPoolCredential(poolCredential("s2", "shared", "", "anthropic")).has_value());
  EXPECT_EQ(generation(), before + 3);

  auto openai = store_->listPoolCredentials("openai");
  ASSERT_TRUE(openai.has_value()) << openai.error().message;
  ASSERT_EQ(openai->size(), 2u);
  EXPECT_EQ((*openai)[0].id, "d1");
  EXPECT_EQ((*openai)[0].project_id, "p1");
  EXPECT_EQ((*openai)[0].scope, "dedicated");
  EXPECT_EQ((*openai)[0].rpm_limit, 60);
  EXPECT_EQ((*openai)[1].id, "s1");
  EXPECT_EQ((*openai)[1].project_id, "");
  auto all = store_->listPoolCredentials("");
  ASSERT_TRUE(all.has_value()) << all.error().message;
  EXPECT_EQ(all->size(), 3u);
  // Pool credentials never appear among a project's BYOK keys.
  auto byok = store_->listCredentials("p1");
  ASSERT_TRUE(byok.has_value()) << byok.error().message;
  for (const Credential& credential : *byok) {
    EXPECT_EQ(credential.scope, "byok") << credential.id;
  }
}

TEST_P(PoolStoreTest, PoolCredentialInvalidShapesRejected) {
  auto shared_with_project = store_->addPoolCredential(poolCredential("x1", "shared", "p1"));
  ASSERT_FALSE(shared_with_project.has_value());
  EXPECT_EQ(shared_with_project.error().code, ErrorCode::kInvalidRequest);
  auto dedicated_without = store_->addPoolCredential(poolCredential("x2", "dedicated", ""));
  ASSERT_FALSE(dedicated_without.has_value());
  EXPECT_EQ(dedicated_without.error().code, ErrorCode::kInvalidRequest);
  auto byok_scope = store_->addPoolCredential(poolCredential("x3", "byok", "p1"));
  ASSERT_FALSE(byok_scope.has_value());
  EXPECT_EQ(byok_scope.error().code, ErrorCode::kInvalidRequest);
  auto unknown_project = store_->addPoolCredential(poolCredential("x4", "dedicated", "nope"));
  ASSERT_FALSE(unknown_project.has_value());
  EXPECT_EQ(unknown_project.error().code, ErrorCode::kNotFound);
  Credential project_key = poolCredential("x5", "shared", "");
  project_key.data_key_id = "p1-key";
  auto wrong_key = store_->addPoolCredential(project_key);
  ASSERT_FALSE(wrong_key.has_value());
  EXPECT_EQ(wrong_key.error().code, ErrorCode::kNotFound);
  auto listed = store_->listPoolCredentials("");
  ASSERT_TRUE(listed.has_value());
  EXPECT_TRUE(listed->empty());
}

TEST_P(PoolStoreTest, DisableAndEnablePoolCredential) {
  ASSERT_TRUE(store_->addPoolCredential(poolCredential("s1", "shared", "")).has_value());
  int64_t before = generation();
  auto disabled = store_->setCredentialStatus("s1", "disabled");
  ASSERT_TRUE(disabled.has_value()) << disabled.error().message;
  EXPECT_EQ(disabled->status, "disabled");
  EXPECT_EQ(generation(), before + 1);
  auto active = store_->listActiveCredentials();
  ASSERT_TRUE(active.has_value());
  EXPECT_TRUE(std::none_of(active->begin(), active->end(),
                           [](const Credential& credential) { return credential.id == "s1"; }));
  auto enabled = store_->setCredentialStatus("s1", "active");
  ASSERT_TRUE(enabled.has_value()) << enabled.error().message;
  EXPECT_EQ(enabled->status, "active");
}

TEST_P(PoolStoreTest, SetStatusOfByokCredentialNotFound) {
  ASSERT_TRUE(store_->putByokCredential(byokCredential("b1", "p1", "openai", 5)).has_value());
  auto byok = store_->setCredentialStatus("b1", "disabled");
  ASSERT_FALSE(byok.has_value());
  EXPECT_EQ(byok.error().code, ErrorCode::kNotFound);
  auto unknown = store_->setCredentialStatus("nope", "disabled");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto bad_status = store_->setCredentialStatus("b1", "replaced");
  ASSERT_FALSE(bad_status.has_value());
  EXPECT_EQ(bad_status.error().code, ErrorCode::kInvalidRequest);
}

// Concierge requests.

TEST_P(PoolStoreTest, ConciergeRequestFulfilledAtomically) {
  auto created = store_->createConciergeRequest(
      ConciergeRequest{.project_id = "p1", .provider = "groq", .note = "for the eval agents"});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  EXPECT_TRUE(created->id.starts_with("cnc_")) << created->id;
  EXPECT_EQ(created->status, "open");

  auto duplicate =
      store_->createConciergeRequest(ConciergeRequest{.project_id = "p1", .provider = "groq"});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);

  int64_t before = generation();
  auto fulfilled = store_->fulfillConciergeRequest(
      created->id, poolCredential("g1", "dedicated", "p1", "groq"), 500);
  ASSERT_TRUE(fulfilled.has_value()) << fulfilled.error().message;
  EXPECT_EQ(fulfilled->status, "fulfilled");
  EXPECT_EQ(fulfilled->credential_id, "g1");
  EXPECT_EQ(fulfilled->updated_at, 500);
  EXPECT_GT(generation(), before);
  auto pool = store_->listPoolCredentials("groq");
  ASSERT_TRUE(pool.has_value());
  ASSERT_EQ(pool->size(), 1u);
  EXPECT_EQ((*pool)[0].scope, "dedicated");

  auto again = store_->fulfillConciergeRequest(
      created->id, poolCredential("g2", "dedicated", "p1", "groq"), 600);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto rejected = store_->rejectConciergeRequest(created->id, "late", 700);
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.error().code, ErrorCode::kConflict);
  pool = store_->listPoolCredentials("groq");
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->size(), 1u);

  // With the first request settled, a new one for the same provider may be filed.
  auto next =
      store_->createConciergeRequest(ConciergeRequest{.project_id = "p1", .provider = "groq"});
  EXPECT_TRUE(next.has_value());
}

TEST_P(PoolStoreTest, ConciergeFulfillWithMismatchedCredentialChangesNothing) {
  auto created =
      store_->createConciergeRequest(ConciergeRequest{.project_id = "p1", .provider = "groq"});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  auto wrong_provider = store_->fulfillConciergeRequest(
      created->id, poolCredential("g1", "dedicated", "p1", "twilio"), 500);
  ASSERT_FALSE(wrong_provider.has_value());
  EXPECT_EQ(wrong_provider.error().code, ErrorCode::kInvalidRequest);
  auto shared =
      store_->fulfillConciergeRequest(created->id, poolCredential("g2", "shared", "", "groq"), 500);
  ASSERT_FALSE(shared.has_value());
  auto request = store_->getConciergeRequest(created->id);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->status, "open");
  auto pool = store_->listPoolCredentials("");
  ASSERT_TRUE(pool.has_value());
  EXPECT_TRUE(pool->empty());
}

TEST_P(PoolStoreTest, ConciergeRejectAndFilters) {
  createProject("org", "p2", "beta");
  auto first =
      store_->createConciergeRequest(ConciergeRequest{.project_id = "p1", .provider = "groq"});
  auto second = store_->createConciergeRequest(
      ConciergeRequest{.project_id = "p2", .provider = "twilio", .note = "sms alerts"});
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  auto rejected = store_->rejectConciergeRequest(second->id, "no capacity this month", 900);
  ASSERT_TRUE(rejected.has_value()) << rejected.error().message;
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_EQ(rejected->reason, "no capacity this month");

  auto open = store_->listConciergeRequests("", "open");
  ASSERT_TRUE(open.has_value());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].id, first->id);
  auto of_p2 = store_->listConciergeRequests("p2", "");
  ASSERT_TRUE(of_p2.has_value());
  ASSERT_EQ(of_p2->size(), 1u);
  EXPECT_EQ((*of_p2)[0].note, "sms alerts");
  auto unknown = store_->getConciergeRequest("cnc_missing");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto unknown_project =
      store_->createConciergeRequest(ConciergeRequest{.project_id = "nope", .provider = "groq"});
  ASSERT_FALSE(unknown_project.has_value());
  EXPECT_EQ(unknown_project.error().code, ErrorCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolStoreTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) {
                           return info.param.name;
                         });

// Admin keys beyond creation.

TEST_P(StoreContractTest, AdminKeyOperatorFlagListAndRevoke) {
  createOrganization("org", "Acme");
  auto created = store_->createAdminKey(AdminKey{.id = "k1",
                                                 .key_hash = fakeHash(1),
                                                 .name = "ops",
                                                 .role = "owner",
                                                 .organization_id = "org",
                                                 .is_operator = true});
  ASSERT_TRUE(created.has_value()) << created.error().message;
  ASSERT_TRUE(store_
                  ->createAdminKey(AdminKey{.id = "k2",
                                            .key_hash = fakeHash(2),
                                            .name = "ci",
                                            .role = "member",
                                            .organization_id = "org"})
                  .has_value());
  auto listed = store_->listAdminKeys("org");
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_TRUE((*listed)[0].is_operator);
  EXPECT_FALSE((*listed)[1].is_operator);

  auto revoked = store_->revokeAdminKey("k2", 1234);
  ASSERT_TRUE(revoked.has_value()) << revoked.error().message;
  EXPECT_EQ(revoked->revoked_at, 1234);
  auto again = store_->revokeAdminKey("k2", 9999);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->revoked_at, 1234);
  auto unknown = store_->revokeAdminKey("nope", 1);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

// Metering: prices, limits, budgets, spend, reports and invoices.

class MeteringStoreTest : public StoreContractTest {
 protected:
  Price putPrice(const std::string& provider, const std::string& model, const std::string& unit,
                 int64_t micros_per_million, int64_t effective_from) {
    auto put = store_->putPrice(Price{.provider = provider,
                                      .model = model,
                                      .unit = unit,
                                      .micros_per_million = micros_per_million,
                                      .effective_from = effective_from,
                                      .created_at = 1});
    EXPECT_TRUE(put.has_value()) << put.error().message;
    return put.value_or(Price{});
  }

  // A metered row: `input` and `output` tokens, one request, at `prices`.
  static LedgerRow meteredRow(int64_t time, const std::string& request_id,
                              const std::string& project_id, const std::string& agent_id,
                              const std::string& provider, const std::string& model, int64_t input,
                              int64_t output, const std::string& prices, int64_t cost_micros,
                              bool billable) {
    LedgerRow row = ledgerRow(time, request_id, project_id, agent_id);
    row.provider = provider;
    row.mode = billable ? "marketplace" : "byok";
    row.model = model;
    row.units.input_tokens = input;
    row.units.output_tokens = output;
    row.units.requests = 1;
    row.usage_reported = true;
    row.prices = prices;
    row.cost_micros = cost_micros;
    row.billable = billable;
    return row;
  }
};

std::vector<std::string> priceSummaries(const std::vector<Price>& prices) {
  std::vector<std::string> summaries;
  for (const Price& price : prices) {
    summaries.push_back(price.provider + "/" + price.model + "/" + price.unit + "=" +
                        std::to_string(price.micros_per_million) + "@" +
                        std::to_string(price.effective_from));
  }
  return summaries;
}

TEST_P(MeteringStoreTest, AppendLedgerStoresMeteringFields) {
  LedgerRow row = ledgerRow(1234, "req-1", "p1", "a1");
  row.model = "gpt-4o-mini";
  row.units = UnitCounts{.input_tokens = 1,
                         .cached_input_tokens = 2,
                         .output_tokens = 3,
                         .requests = 4,
                         .emails = 5,
                         .messages = 6,
                         .read_units = 7,
                         .write_units = 8};
  row.usage_reported = true;
  row.prices = R"({"input_tokens":150000,"output_tokens":600000})";
  row.cost_micros = 9876543210;
  row.billable = true;
  ASSERT_TRUE(store_->appendLedger({row}));

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  const LedgerRow& stored = rows->front();
  EXPECT_EQ(stored.model, "gpt-4o-mini");
  EXPECT_EQ(stored.units, row.units);
  EXPECT_TRUE(stored.usage_reported);
  EXPECT_EQ(stored.prices, R"({"input_tokens":150000,"output_tokens":600000})");
  EXPECT_EQ(stored.cost_micros, 9876543210);
  EXPECT_TRUE(stored.billable);
  EXPECT_EQ(stored.bytes_in, 10);
}

TEST_P(MeteringStoreTest, AppendLedgerDefaultsUnmetered) {
  ASSERT_TRUE(store_->appendLedger({ledgerRow(1, "r1", "p1", "a1")}));

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().model, "");
  EXPECT_EQ(rows->front().units, UnitCounts{});
  EXPECT_FALSE(rows->front().usage_reported);
  EXPECT_EQ(rows->front().prices, "");
  EXPECT_EQ(rows->front().cost_micros, 0);
  EXPECT_FALSE(rows->front().billable);
}

TEST_P(MeteringStoreTest, AppendLedgerNegativeUnitsRejected) {
  for (size_t i = 0; i < kUnitCountFields.size(); ++i) {
    LedgerRow row = ledgerRow(1, "r1", "p1", "a1");
    row.units.*kUnitCountFields[i] = -1;
    auto appended = store_->appendLedger({row});
    ASSERT_FALSE(appended.has_value()) << kUsageUnits[i];
    EXPECT_EQ(appended.error().code, ErrorCode::kInvalidRequest) << kUsageUnits[i];
  }
  LedgerRow negative_cost = ledgerRow(1, "r1", "p1", "a1");
  negative_cost.cost_micros = -5;
  auto appended = store_->appendLedger({negative_cost});
  ASSERT_FALSE(appended.has_value());
  EXPECT_EQ(appended.error().code, ErrorCode::kInvalidRequest);

  auto rows = store_->queryLedger(LedgerQuery{.project_id = "p1"});
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  EXPECT_TRUE(rows->empty());
}

TEST_P(MeteringStoreTest, PutPriceAppendsAndListsNewestFirst) {
  Price first = putPrice("openai", "gpt-4o-mini", "input_tokens", 150000, 1000);
  Price second = putPrice("openai", "gpt-4o-mini", "input_tokens", 100000, 5000);
  Price third = putPrice("openai", "", "requests", 0, 3000);
  EXPECT_GT(first.id, 0);
  EXPECT_GT(second.id, first.id);
  EXPECT_GT(third.id, second.id);
  EXPECT_EQ(second.created_at, 1);

  auto prices = store_->listPrices();
  ASSERT_TRUE(prices.has_value()) << prices.error().message;
  EXPECT_EQ(priceSummaries(*prices), (std::vector<std::string>{
                                         "openai/gpt-4o-mini/input_tokens=100000@5000",
                                         "openai//requests=0@3000",
                                         "openai/gpt-4o-mini/input_tokens=150000@1000",
                                     }));
}

TEST_P(MeteringStoreTest, PutPriceWithoutEffectiveFromStartsNow) {
  auto put = store_->putPrice(
      Price{.provider = "resend", .unit = "emails", .micros_per_million = 400000000});
  ASSERT_TRUE(put.has_value()) << put.error().message;
  EXPECT_GT(put->created_at, 0);
  EXPECT_EQ(put->effective_from, put->created_at);
}

TEST_P(MeteringStoreTest, PricesAtPicksRowInEffect) {
  putPrice("openai", "gpt-4o", "input_tokens", 2500000, 1000);
  putPrice("openai", "gpt-4o", "input_tokens", 2000000, 5000);
  putPrice("openai", "gpt-4o", "output_tokens", 10000000, 1000);
  putPrice("openai", "", "input_tokens", 1000000, 2000);
  putPrice("anthropic", "", "input_tokens", 3000000, 9000);
  // Appended later with the same effective_from: a correction that supersedes the first.
  putPrice("openai", "gpt-4o", "output_tokens", 9000000, 1000);

  struct Case {
    int64_t time;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {999, {}},
      {1000,
       {"openai/gpt-4o/input_tokens=2500000@1000", "openai/gpt-4o/output_tokens=9000000@1000"}},
      {4999,
       {"openai//input_tokens=1000000@2000", "openai/gpt-4o/input_tokens=2500000@1000",
        "openai/gpt-4o/output_tokens=9000000@1000"}},
      {5000,
       {"openai//input_tokens=1000000@2000", "openai/gpt-4o/input_tokens=2000000@5000",
        "openai/gpt-4o/output_tokens=9000000@1000"}},
      {10000,
       {"anthropic//input_tokens=3000000@9000", "openai//input_tokens=1000000@2000",
        "openai/gpt-4o/input_tokens=2000000@5000", "openai/gpt-4o/output_tokens=9000000@1000"}},
  };
  for (const Case& c : cases) {
    auto prices = store_->pricesAt(c.time);
    ASSERT_TRUE(prices.has_value()) << prices.error().message;
    EXPECT_EQ(priceSummaries(*prices), c.expected) << "at " << c.time;
  }
}

TEST_P(MeteringStoreTest, PutPriceInvalidRejected) {
  const std::vector<Price> invalid = {
      Price{.provider = "", .unit = "requests", .micros_per_million = 1},
      Price{.provider = "openai", .unit = "tokens", .micros_per_million = 1},
      Price{.provider = "openai", .unit = "", .micros_per_million = 1},
      Price{.provider = "openai", .unit = "requests", .micros_per_million = -1},
  };
  for (size_t i = 0; i < invalid.size(); ++i) {
    auto put = store_->putPrice(invalid[i]);
    ASSERT_FALSE(put.has_value()) << "case " << i;
    EXPECT_EQ(put.error().code, ErrorCode::kInvalidRequest) << "case " << i;
  }
  auto prices = store_->listPrices();
  ASSERT_TRUE(prices.has_value()) << prices.error().message;
  EXPECT_TRUE(prices->empty());
}

TEST_P(MeteringStoreTest, AgentLimitsAndBudgetRoundTrip) {
  createBaseline();
  auto created = store_->createAgent(Agent{.id = "a1",
                                           .project_id = "p1",
                                           .name = "bot",
                                           .tpm_limit = 40000,
                                           .budget_cents = 2500,
                                           .budget_warn_percent = 80});
  ASSERT_TRUE(created.has_value()) << created.error().message;

  auto found = store_->findAgent("p1", "a1");
  ASSERT_TRUE(found.has_value()) << found.error().message;
  EXPECT_EQ(found->tpm_limit, std::optional<int64_t>(40000));
  EXPECT_EQ(found->budget_cents, std::optional<int64_t>(2500));
  EXPECT_EQ(found->budget_warn_percent, std::optional<int64_t>(80));

  Agent agent = *found;
  agent.tpm_limit.reset();
  agent.budget_cents = 0;
  agent.budget_warn_percent = 100;
  ASSERT_TRUE(store_->updateAgent(agent));
  auto updated = store_->findAgent("p1", "a1");
  ASSERT_TRUE(updated.has_value()) << updated.error().message;
  EXPECT_EQ(updated->tpm_limit, std::nullopt);
  EXPECT_EQ(updated->budget_cents, std::optional<int64_t>(0));
  EXPECT_EQ(updated->budget_warn_percent, std::optional<int64_t>(100));
}

TEST_P(MeteringStoreTest, AgentInvalidBudgetRejected) {
  createBaseline();
  Agent agent = createAgent("p1", "a1", "bot");

  const std::vector<std::function<void(Agent&)>> changes = {
      [](Agent& a) { a.budget_warn_percent = 0; },
      [](Agent& a) { a.budget_warn_percent = 101; },
      [](Agent& a) { a.budget_cents = -1; },
      [](Agent& a) { a.tpm_limit = -1; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    Agent changed = agent;
    changes[i](changed);
    auto updated = store_->updateAgent(changed);
    ASSERT_FALSE(updated.has_value()) << "case " << i;
    EXPECT_EQ(updated.error().code, ErrorCode::kInvalidRequest) << "case " << i;

    changed.id = "new" + std::to_string(i);
    changed.name = "new" + std::to_string(i);
    auto created = store_->createAgent(changed);
    ASSERT_FALSE(created.has_value()) << "case " << i;
    EXPECT_EQ(created.error().code, ErrorCode::kInvalidRequest) << "case " << i;
  }
}

TEST_P(MeteringStoreTest, ProjectLimitsRoundTrip) {
  createBaseline();
  createProject("org", "p2", "beta");

  auto initial = store_->getProjectLimits("p1");
  ASSERT_TRUE(initial.has_value()) << initial.error().message;
  EXPECT_EQ(*initial, ProjectLimits{.project_id = "p1"});

  ProjectLimits limits{.project_id = "p1",
                       .default_rpm = 60,
                       .default_rpd = 10000,
                       .default_tpm = 90000,
                       .budget_cents = 100,
                       .budget_warn_percent = 75};
  ASSERT_TRUE(store_->updateProjectLimits(limits));
  auto stored = store_->getProjectLimits("p1");
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(*stored, limits);

  auto all = store_->listProjectLimits();
  ASSERT_TRUE(all.has_value()) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0], limits);
  EXPECT_EQ((*all)[1], ProjectLimits{.project_id = "p2"});

  ASSERT_TRUE(store_->updateProjectLimits(ProjectLimits{.project_id = "p1"}));
  auto cleared = store_->getProjectLimits("p1");
  ASSERT_TRUE(cleared.has_value()) << cleared.error().message;
  EXPECT_EQ(*cleared, ProjectLimits{.project_id = "p1"});
}

TEST_P(MeteringStoreTest, ProjectLimitsUnknownProjectNotFound) {
  auto got = store_->getProjectLimits("ghost");
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);

  auto updated = store_->updateProjectLimits(ProjectLimits{.project_id = "ghost"});
  ASSERT_FALSE(updated.has_value());
  EXPECT_EQ(updated.error().code, ErrorCode::kNotFound);
}

TEST_P(MeteringStoreTest, ProjectLimitsInvalidRejectedUnchanged) {
  createBaseline();
  ASSERT_TRUE(store_->updateProjectLimits(ProjectLimits{.project_id = "p1", .budget_cents = 5}));

  const std::vector<ProjectLimits> invalid = {
      ProjectLimits{.project_id = "p1", .default_rpm = -1},
      ProjectLimits{.project_id = "p1", .default_rpd = -1},
      ProjectLimits{.project_id = "p1", .default_tpm = -1},
      ProjectLimits{.project_id = "p1", .budget_cents = -1},
      ProjectLimits{.project_id = "p1", .budget_warn_percent = 0},
      ProjectLimits{.project_id = "p1", .budget_warn_percent = 101},
  };
  for (size_t i = 0; i < invalid.size(); ++i) {
    auto updated = store_->updateProjectLimits(invalid[i]);
    ASSERT_FALSE(updated.has_value()) << "case " << i;
    EXPECT_EQ(updated.error().code, ErrorCode::kInvalidRequest) << "case " << i;
  }
  auto stored = store_->getProjectLimits("p1");
  ASSERT_TRUE(stored.has_value()) << stored.error().message;
  EXPECT_EQ(stored->budget_cents, std::optional<int64_t>(5));
}

TEST_P(MeteringStoreTest, MonthSpendSumsBillableAndByok) {
  ASSERT_TRUE(store_->appendLedger({
      meteredRow(999, "before", "p1", "a1", "openai", "m", 1, 1, "{}", 7, true),
      meteredRow(1000, "r1", "p1", "a1", "openai", "m", 1, 1, "{}", 100, true),
      meteredRow(1500, "r2", "p1", "a1", "anthropic", "m", 1, 1, "{}", 20, false),
      meteredRow(1600, "r3", "p1", "a2", "openai", "m", 1, 1, "{}", 3, true),
      meteredRow(1700, "r4", "p2", "a3", "openai", "m", 1, 1, "{}", 4000, false),
      meteredRow(1800, "r5", "p2", "", "openai", "m", 0, 0, "", 0, false),
      meteredRow(2000, "after", "p1", "a1", "openai", "m", 1, 1, "{}", 9, true),
  }));

  auto spend = store_->monthSpend(1000, 2000);
  ASSERT_TRUE(spend.has_value()) << spend.error().message;
  EXPECT_EQ(spend->by_agent,
            (std::map<std::string, int64_t>{{"a1", 120}, {"a2", 3}, {"a3", 4000}}));
  EXPECT_EQ(spend->by_project, (std::map<std::string, int64_t>{{"p1", 123}, {"p2", 4000}}));

  auto empty = store_->monthSpend(5000, 6000);
  ASSERT_TRUE(empty.has_value()) << empty.error().message;
  EXPECT_TRUE(empty->by_agent.empty());
  EXPECT_TRUE(empty->by_project.empty());

  auto inverted = store_->monthSpend(2000, 1000);
  ASSERT_FALSE(inverted.has_value());
  EXPECT_EQ(inverted.error().code, ErrorCode::kInvalidRequest);
}

TEST_P(MeteringStoreTest, MonthSpendSumsExactlyBeyondDoublePrecision) {
  // 2^53 + 1 is the first integer a double cannot hold, so a floating-point sum would be off.
  constexpr int64_t kCost = 9007199254740993;
  ASSERT_TRUE(store_->appendLedger({
      meteredRow(1, "r1", "p1", "a1", "openai", "m", 0, 0, "", kCost, true),
      meteredRow(2, "r2", "p1", "a1", "openai", "m", 0, 0, "", kCost, true),
      meteredRow(3, "r3", "p1", "a1", "openai", "m", 0, 0, "", 1, true),
  }));

  auto spend = store_->monthSpend(0, 10);
  ASSERT_TRUE(spend.has_value()) << spend.error().message;
  EXPECT_EQ(spend->by_agent["a1"], 2 * kCost + 1);

  auto report = store_->usageReport(UsageQuery{.project_id = "p1", .group_by = "agent"});
  ASSERT_TRUE(report.has_value()) << report.error().message;
  ASSERT_EQ(report->size(), 1u);
  EXPECT_EQ(report->front().billable_cost_micros, 2 * kCost + 1);
}

constexpr int64_t kDay = 86'400'000;
// 2026-05-01T00:00:00Z.
constexpr int64_t kMay1 = 1'777'593'600'000;

class UsageReportTest : public MeteringStoreTest {
 protected:
  void SetUp() override {
    MeteringStoreTest::SetUp();
    ASSERT_TRUE(store_->appendLedger({
        meteredRow(kMay1 + 10, "r1", "p1", "a1", "openai", "gpt-4o-mini", 100, 10, "{}", 1000,
                   true),
        meteredRow(kMay1 + kDay - 1, "r2", "p1", "a2", "openai", "gpt-4o", 200, 20, "{}", 2000,
                   true),
        meteredRow(kMay1 + kDay, "r3", "p1", "a1", "anthropic", "claude", 300, 30, "{}", 4000,
                   false),
        meteredRow(kMay1 + 2 * kDay + 5, "r4", "p1", "a1", "openai", "gpt-4o-mini", 400, 40, "{}",
                   8000, true),
        meteredRow(kMay1 + 2 * kDay + 6, "r5", "p2", "a9", "openai", "gpt-4o-mini", 999, 99, "{}",
                   99999, true),
    }));
    LedgerRow email = ledgerRow(kMay1 + 2 * kDay + 7, "r6", "p1", "a2");
    email.provider = "resend";
    email.units.requests = 1;
    email.units.emails = 3;
    email.cost_micros = 16;
    ASSERT_TRUE(store_->appendLedger({email}));
  }

  std::vector<UsageReportRow> report(const UsageQuery& query) {
    auto rows = store_->usageReport(query);
    EXPECT_TRUE(rows.has_value()) << rows.error().message;
    return rows.value_or(std::vector<UsageReportRow>{});
  }
};

TEST_P(UsageReportTest, GroupsByDay) {
  std::vector<UsageReportRow> rows = report(UsageQuery{.project_id = "p1", .group_by = "day"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0],
            (UsageReportRow{.key = "2026-05-01",
                            .request_count = 2,
                            .units = {.input_tokens = 300, .output_tokens = 30, .requests = 2},
                            .billable_cost_micros = 3000,
                            .byok_cost_micros = 0}));
  EXPECT_EQ(rows[1],
            (UsageReportRow{.key = "2026-05-02",
                            .request_count = 1,
                            .units = {.input_tokens = 300, .output_tokens = 30, .requests = 1},
                            .billable_cost_micros = 0,
                            .byok_cost_micros = 4000}));
  EXPECT_EQ(rows[2],
            (UsageReportRow{
                .key = "2026-05-03",
                .request_count = 2,
                .units = {.input_tokens = 400, .output_tokens = 40, .requests = 2, .emails = 3},
                .billable_cost_micros = 8000,
                .byok_cost_micros = 16}));
}

TEST_P(UsageReportTest, GroupsByProviderAgentAndModel) {
  auto keys = [](const std::vector<UsageReportRow>& rows) {
    std::vector<std::string> summary;
    for (const UsageReportRow& row : rows) {
      summary.push_back(row.key + ":" + std::to_string(row.request_count) + ":" +
                        std::to_string(row.units.input_tokens) + ":" +
                        std::to_string(row.billable_cost_micros) + ":" +
                        std::to_string(row.byok_cost_micros));
    }
    return summary;
  };

  EXPECT_EQ(keys(report(UsageQuery{.project_id = "p1", .group_by = "provider"})),
            (std::vector<std::string>{"anthropic:1:300:0:4000", "openai:3:700:11000:0",
                                      "resend:1:0:0:16"}));
  EXPECT_EQ(keys(report(UsageQuery{.project_id = "p1", .group_by = "agent"})),
            (std::vector<std::string>{"a1:3:800:9000:4000", "a2:2:200:2000:16"}));
  EXPECT_EQ(keys(report(UsageQuery{.project_id = "p1", .group_by = "model"})),
            (std::vector<std::string>{":1:0:0:16", "claude:1:300:0:4000", "gpt-4o:1:200:2000:0",
                                      "gpt-4o-mini:2:500:9000:0"}));
}

TEST_P(UsageReportTest, FiltersByAgentAndTime) {
  std::vector<UsageReportRow> rows = report(UsageQuery{.project_id = "p1",
                                                       .agent_id = "a1",
                                                       .since = kMay1 + kDay,
                                                       .until = kMay1 + 2 * kDay + 5,
                                                       .group_by = "provider"});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].key, "anthropic");
  EXPECT_EQ(rows[0].request_count, 1);

  std::vector<UsageReportRow> every_project = report(UsageQuery{.group_by = "agent"});
  ASSERT_EQ(every_project.size(), 3u);
  EXPECT_EQ(every_project[2].key, "a9");
  EXPECT_EQ(every_project[2].units.output_tokens, 99);
}

TEST_P(UsageReportTest, UnknownGroupingRejected) {
  auto rows = store_->usageReport(UsageQuery{.project_id = "p1", .group_by = "week"});
  ASSERT_FALSE(rows.has_value());
  EXPECT_EQ(rows.error().code, ErrorCode::kInvalidRequest);
}

std::vector<std::string> invoiceSummary(const Invoice& invoice) {
  std::vector<std::string> lines;
  for (const InvoiceLine& line : invoice.lines) {
    lines.push_back(std::string(line.billable ? "billed " : "byok ") + line.provider + "/" +
                    line.model + "/" + line.unit + " " + std::to_string(line.units) + " @" +
                    std::to_string(line.micros_per_million) + " = " +
                    std::to_string(line.cost_micros) + " billed " +
                    std::to_string(line.billed_micros));
  }
  return lines;
}

TEST_P(MeteringStoreTest, InvoiceLinesPerUnitAndPrice) {
  const std::string cheap = R"({"input_tokens":150000,"output_tokens":600000})";
  // The price of input tokens changed mid-month. The order of members does not matter.
  const std::string changed = R"({"output_tokens":600000,"input_tokens":100000})";
  const std::string request_priced = R"({"requests":2000000,"emails":400000000})";
  LedgerRow email = ledgerRow(kMay1 + 9, "email", "p1", "a1");
  email.provider = "resend";
  email.units.requests = 1;
  email.units.emails = 2;
  email.prices = request_priced;
  email.cost_micros = 802;
  email.billable = true;
  ASSERT_TRUE(store_->appendLedger({
      meteredRow(kMay1, "r1", "p1", "a1", "openai", "gpt-4o-mini", 1000, 500, cheap, 450, true),
      meteredRow(kMay1 + 1, "r2", "p1", "a2", "openai", "gpt-4o-mini", 3001, 1, cheap, 451, true),
      meteredRow(kMay1 + 2, "r3", "p1", "a1", "openai", "gpt-4o-mini", 2000, 0, changed, 200, true),
      meteredRow(kMay1 + 3, "r4", "p1", "a1", "anthropic", "claude", 1000000, 100000,
                 R"({"input_tokens":3000000,"output_tokens":15000000})", 4500000, false),
      // Not charged: no prices recorded.
      meteredRow(kMay1 + 4, "r5", "p1", "a1", "openai", "gpt-4o-mini", 7777, 7777, "", 0, true),
      // Another project, and the next month.
      meteredRow(kMay1 + 5, "r6", "p2", "a9", "openai", "gpt-4o-mini", 5, 5, cheap, 4, true),
      meteredRow(kMay1 + 31 * kDay, "r7", "p1", "a1", "openai", "gpt-4o-mini", 5, 5, cheap, 4,
                 true),
      email,
  }));

  auto invoice = store_->invoice("p1", kMay1, kMay1 + 31 * kDay);
  ASSERT_TRUE(invoice.has_value()) << invoice.error().message;
  EXPECT_EQ(invoice->project_id, "p1");
  EXPECT_EQ(invoice->month_start, kMay1);
  EXPECT_EQ(invoice->month_end, kMay1 + 31 * kDay);
  // 4001 tokens at 0.15 $/M = 600.15 micros, rounded half up once per line.
  EXPECT_EQ(invoiceSummary(*invoice),
            (std::vector<std::string>{
                "billed openai/gpt-4o-mini/input_tokens 2000 @100000 = 200 billed 200",
                "billed openai/gpt-4o-mini/input_tokens 4001 @150000 = 600 billed 600",
                "billed openai/gpt-4o-mini/output_tokens 501 @600000 = 301 billed 301",
                "billed resend//requests 1 @2000000 = 2 billed 2",
                "billed resend//emails 2 @400000000 = 800 billed 800",
                "byok anthropic/claude/input_tokens 1000000 @3000000 = 3000000 billed 0",
                "byok anthropic/claude/output_tokens 100000 @15000000 = 1500000 billed 0",
            }));
  EXPECT_EQ(invoice->billed_micros, 200 + 600 + 301 + 2 + 800);
  EXPECT_EQ(invoice->byok_list_micros, 4500000);
}

TEST_P(MeteringStoreTest, InvoiceInvalidArgumentsRejected) {
  auto no_project = store_->invoice("", 0, 10);
  ASSERT_FALSE(no_project.has_value());
  EXPECT_EQ(no_project.error().code, ErrorCode::kInvalidRequest);

  auto empty_window = store_->invoice("p1", 10, 10);
  ASSERT_FALSE(empty_window.has_value());
  EXPECT_EQ(empty_window.error().code, ErrorCode::kInvalidRequest);

  auto no_rows = store_->invoice("p1", 0, 10);
  ASSERT_TRUE(no_rows.has_value()) << no_rows.error().message;
  EXPECT_TRUE(no_rows->lines.empty());
  EXPECT_EQ(no_rows->billed_micros, 0);
}

TEST_P(MeteringStoreTest, InvoiceMalformedPricesFails) {
  ASSERT_TRUE(store_->appendLedger(
      {meteredRow(5, "r1", "p1", "a1", "openai", "m", 1, 1, R"({"input_tokens":-3})", 0, true)}));

  auto invoice = store_->invoice("p1", 0, 10);
  ASSERT_FALSE(invoice.has_value());
  EXPECT_EQ(invoice.error().code, ErrorCode::kInternal);
}

INSTANTIATE_TEST_SUITE_P(Backends, MeteringStoreTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) {
                           return info.param.name;
                         });
INSTANTIATE_TEST_SUITE_P(Backends, UsageReportTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) {
                           return info.param.name;
                         });

// Reopening.

TEST_P(StoreContractTest, ReopenKeepsData) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  int64_t before = generation();
  store_.reset();

  auto reopened = database_->open();
  ASSERT_TRUE(reopened.has_value()) << reopened.error().message;
  store_ = std::move(*reopened);

  auto agent = store_->findAgent("p1", "bot");
  ASSERT_TRUE(agent.has_value()) << agent.error().message;
  EXPECT_EQ(agent->id, "a1");
  EXPECT_EQ(generation(), before);
}

TEST_P(StoreContractTest, SecondStoreSeesGenerationChange) {
  auto other = database_->open();
  ASSERT_TRUE(other.has_value()) << other.error().message;
  auto before = (*other)->configGeneration();
  ASSERT_TRUE(before.has_value()) << before.error().message;

  createBaseline();

  auto after = (*other)->configGeneration();
  ASSERT_TRUE(after.has_value()) << after.error().message;
  EXPECT_GT(*after, *before);
}

// Master-key rotation.

TEST_P(StoreContractTest, RewrapDataKeysSkipsRowsAlreadyMoved) {
  createBaseline();
  createProject("org", "p2", "beta");
  int64_t before = generation();

  auto first = store_->rewrapDataKeys({DataKeyRewrap{
      DataKey{.key_id = "p1-key", .master_key_id = "mk2", .wrapped = "n1"}, "mk1"}});
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_EQ(*first, 1u);
  EXPECT_GT(generation(), before);

  // A second run that read the rows before the first one committed moves only p2.
  auto second = store_->rewrapDataKeys(
      {DataKeyRewrap{DataKey{.key_id = "p1-key", .master_key_id = "mk2", .wrapped = "stale"},
                     "mk1"},
       DataKeyRewrap{DataKey{.key_id = "p2-key", .master_key_id = "mk2", .wrapped = "n2"},
                     "mk1"}});
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(*second, 1u);

  auto keys = store_->listDataKeys();
  ASSERT_TRUE(keys.has_value()) << keys.error().message;
  ASSERT_EQ(keys->size(), 2u);
  for (const DataKey& key : *keys) {
    EXPECT_EQ(key.master_key_id, "mk2") << key.key_id;
    EXPECT_EQ(key.wrapped, key.key_id == "p1-key" ? "n1" : "n2") << key.key_id;
  }
}

TEST_P(StoreContractTest, RewrapDataKeysNothingToMoveKeepsGeneration) {
  createBaseline();
  int64_t before = generation();

  auto moved = store_->rewrapDataKeys({DataKeyRewrap{
      DataKey{.key_id = "p1-key", .master_key_id = "mk3", .wrapped = "n1"}, "mk2"}});
  ASSERT_TRUE(moved.has_value()) << moved.error().message;
  EXPECT_EQ(*moved, 0u);
  EXPECT_EQ(generation(), before);
}

// Token rotation.

TEST_P(StoreContractTest, RotateTokenWithGraceLinksBothTokens) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1, 900000);
  int64_t before = generation();

  auto rotated = store_->rotateToken(
      "t1", AgentToken{.id = "t2", .token_hash = fakeHash(2), .scopes = {"provider:openai:*"}},
      100000, 60000);
  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  EXPECT_EQ(rotated->previous.expires_at, 160000);
  EXPECT_EQ(rotated->previous.revoked_at, 0);
  EXPECT_EQ(rotated->previous.rotated_to, "t2");
  EXPECT_EQ(rotated->replacement.rotated_from, "t1");
  EXPECT_EQ(rotated->replacement.agent_id, "a1");
  EXPECT_EQ(rotated->replacement.project_id, "p1");
  EXPECT_GT(generation(), before);

  auto stored_old = store_->getToken("t1");
  ASSERT_TRUE(stored_old.has_value()) << stored_old.error().message;
  EXPECT_EQ(stored_old->expires_at, 160000);
  EXPECT_EQ(stored_old->rotated_to, "t2");
  auto stored_new = store_->getToken("t2");
  ASSERT_TRUE(stored_new.has_value()) << stored_new.error().message;
  EXPECT_EQ(stored_new->rotated_from, "t1");
  EXPECT_EQ(stored_new->rotated_to, "");
  EXPECT_EQ(stored_new->scopes, (std::vector<std::string>{"provider:openai:*"}));
}

TEST_P(StoreContractTest, RotateTokenGraceNeverExtendsExpiry) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1, 130000);

  auto rotated = store_->rotateToken("t1", AgentToken{.id = "t2", .token_hash = fakeHash(2)},
                                     100000, 600000);
  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  EXPECT_EQ(rotated->previous.expires_at, 130000);
}

TEST_P(StoreContractTest, RotateTokenWithoutGraceRevokesOld) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "t1", 1);

  auto rotated =
      store_->rotateToken("t1", AgentToken{.id = "t2", .token_hash = fakeHash(2)}, 100000, 0);
  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  EXPECT_EQ(rotated->previous.revoked_at, 100000);
  EXPECT_EQ(rotated->previous.expires_at, 0);
  auto stored_old = store_->getToken("t1");
  ASSERT_TRUE(stored_old.has_value()) << stored_old.error().message;
  EXPECT_EQ(stored_old->revoked_at, 100000);
}

TEST_P(StoreContractTest, RotateTokenRefusedWhenNotLive) {
  createBaseline();
  createAgent("p1", "a1", "bot");
  createToken("a1", "expired", 1, 5000);
  createToken("a1", "revoked", 2);
  ASSERT_TRUE(store_->revokeToken("revoked", 4000));
  createToken("a1", "rotated", 3);
  ASSERT_TRUE(store_->rotateToken("rotated", AgentToken{.id = "next", .token_hash = fakeHash(4)},
                                  6000, 60000));
  int64_t before = generation();

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"expired", "token expired has expired and cannot be rotated"},
      {"revoked", "token revoked is revoked and cannot be rotated"},
      {"rotated", "token rotated was already rotated to next; rotate that token instead"},
  };
  int seed = 10;
  for (const auto& [id, message] : cases) {
    auto rotated =
        store_->rotateToken(id, AgentToken{.id = id + "-new", .token_hash = fakeHash(seed++)},
                            7000, 60000);
    ASSERT_FALSE(rotated.has_value()) << id;
    EXPECT_EQ(rotated.error().code, ErrorCode::kConflict) << id;
    EXPECT_EQ(rotated.error().message, message);
    EXPECT_EQ(store_->getToken(id + "-new").error().code, ErrorCode::kNotFound) << id;
  }
  EXPECT_EQ(generation(), before);
}

TEST_P(StoreContractTest, RotateUnknownTokenNotFound) {
  auto rotated =
      store_->rotateToken("ghost", AgentToken{.id = "t2", .token_hash = fakeHash(2)}, 1000, 0);
  ASSERT_FALSE(rotated.has_value());
  EXPECT_EQ(rotated.error().code, ErrorCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace keystore::store
