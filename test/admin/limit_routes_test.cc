// Rate limits and monthly budgets of agents and projects through the management API.
#include "admin_fixture.h"

namespace keystore::admin {
namespace {

class LimitRoutesTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    project_ = createProject("demo");
    agent_ = createAgent("demo", "worker");
  }

  CallResult patchAgent(const std::string& body) {
    return call("PATCH", "/api/v1/agents/" + agent_, body);
  }
  CallResult patchProject(const std::string& body) {
    return call("PATCH", "/api/v1/projects/demo", body);
  }

  std::string project_;
  std::string agent_;
};

// True when `member` of the response is JSON null.
bool isNull(const CallResult& result, std::string_view member) {
  return result.json.at(member).is_null();
}

TEST_F(LimitRoutesTest, NewAgentHasNoLimits) {
  CallResult agent = call("GET", "/api/v1/agents/" + agent_);
  ASSERT_EQ(agent.response.status, 200) << agent.response.body;
  for (std::string_view member :
       {"rpm_limit", "rpd_limit", "tpm_limit", "budget_cents", "budget_warn_percent"}) {
    EXPECT_TRUE(isNull(agent, member)) << member;
  }
}

TEST_F(LimitRoutesTest, PatchAgentSetsLimits) {
  int before = config_changes_;
  CallResult result =
      patchAgent(R"({"rpm_limit":60,"rpd_limit":1000,"tpm_limit":50000,"budget_cents":500,)"
                 R"("budget_warn_percent":80})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(config_changes_, before + 1);
  EXPECT_EQ(result.json.at("rpm_limit").as_int64(), 60);
  EXPECT_EQ(result.json.at("rpd_limit").as_int64(), 1000);
  EXPECT_EQ(result.json.at("tpm_limit").as_int64(), 50000);
  EXPECT_EQ(result.json.at("budget_cents").as_int64(), 500);
  EXPECT_EQ(result.json.at("budget_warn_percent").as_int64(), 80);

  auto stored = store_->findAgent(project_, agent_);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->rpm_limit, 60);
  EXPECT_EQ(stored->rpd_limit, 1000);
  EXPECT_EQ(stored->tpm_limit, 50000);
  EXPECT_EQ(stored->budget_cents, 500);
  EXPECT_EQ(stored->budget_warn_percent, 80);

  CallResult listed = call("GET", "/api/v1/projects/demo/agents");
  ASSERT_EQ(listed.response.status, 200);
  const boost::json::value& entry = listed.json.at("data").as_array().at(0);
  EXPECT_EQ(entry.at("tpm_limit").as_int64(), 50000);
  EXPECT_EQ(entry.at("budget_cents").as_int64(), 500);
}

TEST_F(LimitRoutesTest, PatchAgentNullClearsOnlyNamed) {
  ASSERT_EQ(patchAgent(R"({"rpm_limit":60,"tpm_limit":9000,"budget_cents":500,)"
                       R"("budget_warn_percent":50})")
                .response.status,
            200);

  int before = config_changes_;
  CallResult result = patchAgent(R"({"rpm_limit":null,"budget_cents":null})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(config_changes_, before + 1);
  EXPECT_TRUE(isNull(result, "rpm_limit"));
  EXPECT_TRUE(isNull(result, "budget_cents"));
  EXPECT_EQ(result.json.at("tpm_limit").as_int64(), 9000);
  EXPECT_EQ(result.json.at("budget_warn_percent").as_int64(), 50);

  auto stored = store_->findAgent(project_, agent_);
  ASSERT_TRUE(stored.has_value());
  EXPECT_FALSE(stored->rpm_limit.has_value());
  EXPECT_FALSE(stored->budget_cents.has_value());
  EXPECT_EQ(stored->tpm_limit, 9000);
}

TEST_F(LimitRoutesTest, ZeroBudgetAllowed) {
  CallResult result = patchAgent(R"({"budget_cents":0})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.json.at("budget_cents").as_int64(), 0);
  EXPECT_EQ(store_->findAgent(project_, agent_)->budget_cents, 0);
}

TEST_F(LimitRoutesTest, CreateAgentWithBudget) {
  CallResult result =
      call("POST", "/api/v1/projects/demo/agents",
           R"({"name":"budgeted","tpm_limit":1000,"budget_cents":2500,"budget_warn_percent":90})");
  ASSERT_EQ(result.response.status, 201) << result.response.body;
  EXPECT_EQ(result.json.at("tpm_limit").as_int64(), 1000);
  EXPECT_EQ(result.json.at("budget_cents").as_int64(), 2500);
  EXPECT_EQ(result.json.at("budget_warn_percent").as_int64(), 90);
  EXPECT_TRUE(isNull(result, "rpm_limit"));
}

TEST_F(LimitRoutesTest, InvalidAgentLimitsRejected) {
  ASSERT_EQ(patchAgent(R"({"rpm_limit":60,"budget_cents":500})").response.status, 200);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"rpm_limit":-1})", "\"rpm_limit\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"rpm_limit":0})", "\"rpm_limit\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"rpd_limit":1000000001})",
       "\"rpd_limit\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"tpm_limit":-5})", "\"tpm_limit\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"tpm_limit":"5"})", "\"tpm_limit\" must be an integer or null"},
      {R"({"budget_cents":-1})",
       "\"budget_cents\" must be a whole number of cents from 0 to 1000000000000, or null to "
       "clear it"},
      {R"({"budget_cents":1000000000001})",
       "\"budget_cents\" must be a whole number of cents from 0 to 1000000000000, or null to "
       "clear it"},
      {R"({"budget_cents":12.5})", "\"budget_cents\" must be an integer or null"},
      {R"({"budget_warn_percent":0})",
       "\"budget_warn_percent\" must be a percentage from 1 to 100, or null to clear it"},
      {R"({"budget_warn_percent":101})",
       "\"budget_warn_percent\" must be a percentage from 1 to 100, or null to clear it"},
      {R"({"budget_warn_percent":-80})",
       "\"budget_warn_percent\" must be a percentage from 1 to 100, or null to clear it"},
      {R"({"budget":500})",
       "unknown member \"budget\"; expected one of: status, name, rpm_limit, rpd_limit, "
       "tpm_limit, budget_cents, budget_warn_percent"},
      {R"({})",
       "nothing to change; send at least one of status, name, rpm_limit, rpd_limit, tpm_limit, "
       "budget_cents and budget_warn_percent"},
  };
  int before = config_changes_;
  for (const auto& [body, message] : cases) {
    CallResult result = patchAgent(body);
    EXPECT_EQ(result.response.status, 400) << body;
    EXPECT_EQ(result.errorCode(), "invalid_request") << body;
    EXPECT_EQ(result.errorMessage(), message) << body;
  }
  EXPECT_EQ(config_changes_, before);
  auto stored = store_->findAgent(project_, agent_);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->rpm_limit, 60);
  EXPECT_EQ(stored->budget_cents, 500);
  EXPECT_FALSE(stored->budget_warn_percent.has_value());
}

TEST_F(LimitRoutesTest, ViewerCannotPatchLimits) {
  std::string viewer = createAdminKey(org_a_, "viewer");
  CallResult agent =
      callWithKey(viewer, "PATCH", "/api/v1/agents/" + agent_, R"({"budget_cents":1})");
  EXPECT_EQ(agent.response.status, 403);
  EXPECT_EQ(agent.errorCode(), "forbidden");
  CallResult project =
      callWithKey(viewer, "PATCH", "/api/v1/projects/demo", R"({"budget_cents":1})");
  EXPECT_EQ(project.response.status, 403);
  EXPECT_EQ(project.errorCode(), "forbidden");
  EXPECT_FALSE(store_->findAgent(project_, agent_)->budget_cents.has_value());
  EXPECT_FALSE(store_->getProjectLimits(project_)->budget_cents.has_value());
}

TEST_F(LimitRoutesTest, OtherOrganizationAgentNotFound) {
  CallResult result =
      callWithKey(key_b_, "PATCH", "/api/v1/agents/" + agent_, R"({"budget_cents":1})");
  EXPECT_EQ(result.response.status, 404);
  EXPECT_EQ(result.errorCode(), "not_found");
  EXPECT_FALSE(store_->findAgent(project_, agent_)->budget_cents.has_value());
}

TEST_F(LimitRoutesTest, NewProjectHasNoLimits) {
  CallResult project = call("GET", "/api/v1/projects/demo");
  ASSERT_EQ(project.response.status, 200) << project.response.body;
  for (std::string_view member :
       {"default_rpm", "default_rpd", "default_tpm", "budget_cents", "budget_warn_percent"}) {
    EXPECT_TRUE(isNull(project, member)) << member;
  }
}

TEST_F(LimitRoutesTest, PatchProjectSetsLimits) {
  int before = config_changes_;
  CallResult result = patchProject(
      R"({"default_rpm":120,"default_rpd":10000,"default_tpm":200000,"budget_cents":100000,)"
      R"("budget_warn_percent":75})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(config_changes_, before + 1);
  EXPECT_EQ(result.str("/id"), project_);
  EXPECT_EQ(result.str("/name"), "demo");
  EXPECT_EQ(result.json.at("default_rpm").as_int64(), 120);
  EXPECT_EQ(result.json.at("default_rpd").as_int64(), 10000);
  EXPECT_EQ(result.json.at("default_tpm").as_int64(), 200000);
  EXPECT_EQ(result.json.at("budget_cents").as_int64(), 100000);
  EXPECT_EQ(result.json.at("budget_warn_percent").as_int64(), 75);

  auto stored = store_->getProjectLimits(project_);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->default_rpm, 120);
  EXPECT_EQ(stored->default_rpd, 10000);
  EXPECT_EQ(stored->default_tpm, 200000);
  EXPECT_EQ(stored->budget_cents, 100000);
  EXPECT_EQ(stored->budget_warn_percent, 75);

  CallResult shown = call("GET", "/api/v1/projects/" + project_);
  EXPECT_EQ(shown.json.at("budget_cents").as_int64(), 100000);
  CallResult listed = call("GET", "/api/v1/projects");
  ASSERT_EQ(listed.json.at("data").as_array().size(), 1u);
  EXPECT_EQ(listed.json.at("data").as_array()[0].at("default_tpm").as_int64(), 200000);
}

TEST_F(LimitRoutesTest, PatchProjectNullClearsOnlyNamed) {
  ASSERT_EQ(patchProject(R"({"default_rpm":120,"budget_cents":100000,"budget_warn_percent":75})")
                .response.status,
            200);
  CallResult result = patchProject(R"({"budget_cents":null,"budget_warn_percent":null})");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.json.at("default_rpm").as_int64(), 120);
  EXPECT_TRUE(isNull(result, "budget_cents"));
  EXPECT_TRUE(isNull(result, "budget_warn_percent"));

  auto stored = store_->getProjectLimits(project_);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->default_rpm, 120);
  EXPECT_FALSE(stored->budget_cents.has_value());
  EXPECT_FALSE(stored->budget_warn_percent.has_value());
}

TEST_F(LimitRoutesTest, InvalidProjectLimitsRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"default_rpm":-1})",
       "\"default_rpm\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"default_rpd":0})", "\"default_rpd\" must be from 1 to 1000000000, or null to clear it"},
      {R"({"default_tpm":1.5})", "\"default_tpm\" must be an integer or null"},
      {R"({"budget_cents":-100})",
       "\"budget_cents\" must be a whole number of cents from 0 to 1000000000000, or null to "
       "clear it"},
      {R"({"budget_warn_percent":101})",
       "\"budget_warn_percent\" must be a percentage from 1 to 100, or null to clear it"},
      {R"({"budget_warn_percent":0})",
       "\"budget_warn_percent\" must be a percentage from 1 to 100, or null to clear it"},
      {R"({"name":"renamed"})",
       "unknown member \"name\"; expected one of: default_rpm, default_rpd, default_tpm, "
       "budget_cents, budget_warn_percent"},
      {R"({})",
       "nothing to change; send at least one of default_rpm, default_rpd, default_tpm, "
       "budget_cents and budget_warn_percent"},
      {R"([1])", "the request body must be a JSON object"},
  };
  int before = config_changes_;
  for (const auto& [body, message] : cases) {
    CallResult result = patchProject(body);
    EXPECT_EQ(result.response.status, 400) << body;
    EXPECT_EQ(result.errorCode(), "invalid_request") << body;
    EXPECT_EQ(result.errorMessage(), message) << body;
  }
  EXPECT_EQ(config_changes_, before);
  store::ProjectLimits unset;
  unset.project_id = project_;
  EXPECT_EQ(*store_->getProjectLimits(project_), unset);
}

TEST_F(LimitRoutesTest, OtherOrganizationProjectNotFound) {
  for (const std::string& target : {std::string("demo"), project_}) {
    CallResult patched =
        callWithKey(key_b_, "PATCH", "/api/v1/projects/" + target, R"({"budget_cents":1})");
    EXPECT_EQ(patched.response.status, 404) << target;
    EXPECT_EQ(patched.errorCode(), "not_found") << target;
    CallResult shown = callWithKey(key_b_, "GET", "/api/v1/projects/" + target);
    EXPECT_EQ(shown.response.status, 404) << target;
  }
  EXPECT_FALSE(store_->getProjectLimits(project_)->budget_cents.has_value());
}

}  // namespace
}  // namespace keystore::admin
