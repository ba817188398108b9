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

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace keystore::store
