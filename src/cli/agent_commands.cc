// `keystore agent …` and `keystore token …`.
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/limit_options.h"
#include "cli/report_format.h"
#include "cli/table.h"
#include "common/clock.h"

namespace keystore::cli {

namespace {

struct AgentCreateOptions {
  CommonOptions common;
  std::string name;
  std::string project;
  int64_t rpm_limit = 0;
  int64_t rpd_limit = 0;
  CLI::Option* rpm_option = nullptr;
  CLI::Option* rpd_option = nullptr;
};

struct ProjectOptions {
  CommonOptions common;
  std::string project;
};

// An agent named by id, or by name together with --project.
struct AgentOptions {
  CommonOptions common;
  std::string agent;
  std::string project;
};

struct AgentUpdateOptions {
  AgentOptions target;
  LimitOptions limits{{
      {"rpm", "rpm_limit",
       "Requests per minute per provider, or null to use the project's default"},
      {"rpd", "rpd_limit",
       "Requests per UTC day per provider, or null to use the project's default"},
      {"tpm", "tpm_limit", "Tokens per minute per provider, or null to use the project's default"},
      {"budget-cents", "budget_cents",
       "Monthly (UTC calendar month) spending cap in cents, or null for no cap of the agent's "
       "own"},
      {"budget-warn-percent", "budget_warn_percent",
       "Share of the budget, 1 to 100, at which a warning is sent, or null for no warning"},
  }};
};

struct TokenCreateOptions {
  AgentOptions target;
  std::vector<std::string> scopes;
  std::vector<std::string> models;
  std::string expires_in;
};

struct TokenOptions {
  CommonOptions common;
  std::string token_id;
};

std::vector<std::pair<std::string, std::string>> projectQuery(const std::string& project) {
  if (project.empty()) {
    return {};
  }
  return {{"project", project}};
}

std::string limitText(const boost::json::value& agent, std::string_view name) {
  const boost::json::value* limit = agent.as_object().if_contains(name);
  if (limit == nullptr || !limit->is_int64()) {
    return "-";
  }
  return std::to_string(limit->as_int64());
}

std::string budgetText(const boost::json::value& object) {
  const boost::json::value* cents = object.as_object().if_contains("budget_cents");
  if (cents == nullptr || !cents->is_int64()) {
    return "-";
  }
  return dollarsFromCents(cents->as_int64());
}

int createAgent(const AgentCreateOptions& options) {
  boost::json::object fields{{"name", options.name}};
  if (options.rpm_option->count() > 0) {
    fields["rpm_limit"] = options.rpm_limit;
  }
  if (options.rpd_option->count() > 0) {
    fields["rpd_limit"] = options.rpd_limit;
  }

  int exit_code = kExitOk;
  auto agent = callApi(options.common, "POST", apiTarget({"projects", options.project, "agents"}),
                       boost::json::serialize(fields), exit_code);
  if (!agent) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*agent);
  } else {
    std::cout << "created agent " << stringField(*agent, "name") << " ("
              << stringField(*agent, "id") << ") in project " << options.project << "\n";
  }
  return kExitOk;
}

int listAgents(const ProjectOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", apiTarget({"projects", options.project, "agents"}),
                          {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& agents = dataArray(*response);
  if (options.common.json) {
    printJson(agents);
    return kExitOk;
  }
  if (agents.empty()) {
    std::cout << "no agents in project " << options.project
              << "; create one with: keystore agent create NAME --project " << options.project
              << "\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& agent : agents) {
    rows.push_back({stringField(agent, "id"), stringField(agent, "name"),
                    stringField(agent, "status"), limitText(agent, "rpm_limit"),
                    limitText(agent, "rpd_limit"), limitText(agent, "tpm_limit"), budgetText(agent),
                    shortTime(agent, "created_at")});
  }
  std::cout << formatTable({"ID", "NAME", "STATUS", "RPM", "RPD", "TPM", "BUDGET", "CREATED"},
                           rows);
  return kExitOk;
}

int setAgentStatus(const AgentOptions& options, std::string_view status) {
  std::string body = boost::json::serialize(boost::json::object{{"status", status}});
  int exit_code = kExitOk;
  auto agent =
      callApi(options.common, "PATCH",
              apiTarget({"agents", options.agent}, projectQuery(options.project)), body, exit_code);
  if (!agent) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*agent);
  } else {
    std::cout << "agent " << stringField(*agent, "name") << " (" << stringField(*agent, "id")
              << ") is now " << stringField(*agent, "status") << "\n";
  }
  return kExitOk;
}

// "rpm_limit 60, rpd_limit -, …" for the members of `object`; "-" marks an unset value.
std::string limitSummary(const boost::json::value& object,
                         std::initializer_list<std::string_view> members) {
  std::string summary;
  for (std::string_view member : members) {
    summary += summary.empty() ? "" : ", ";
    summary += std::string(member) + " " + limitText(object, member);
  }
  return summary;
}

int updateAgent(const AgentUpdateOptions& options) {
  std::optional<boost::json::object> body = options.limits.body();
  if (!body) {
    return kExitUsage;
  }

  const AgentOptions& target = options.target;
  int exit_code = kExitOk;
  auto agent = callApi(target.common, "PATCH",
                       apiTarget({"agents", target.agent}, projectQuery(target.project)),
                       boost::json::serialize(*body), exit_code);
  if (!agent) {
    return exit_code;
  }
  if (target.common.json) {
    printJson(*agent);
  } else {
    std::cout << "updated agent " << stringField(*agent, "name") << " ("
              << stringField(*agent, "id") << "): "
              << limitSummary(*agent, {"rpm_limit", "rpd_limit", "tpm_limit", "budget_cents",
                                       "budget_warn_percent"})
              << "\n";
  }
  return kExitOk;
}

int createToken(const TokenCreateOptions& options) {
  boost::json::object fields;
  if (!options.scopes.empty()) {
    boost::json::array scopes;
    for (const std::string& scope : options.scopes) {
      scopes.emplace_back(scope);
    }
    fields["scopes"] = std::move(scopes);
  }
  if (!options.models.empty()) {
    boost::json::array models;
    for (const std::string& model : options.models) {
      models.emplace_back(model);
    }
    fields["models"] = std::move(models);
  }
  if (!options.expires_in.empty()) {
    if (!parseDurationMillis(options.expires_in)) {
      printError("--expires-in must be a duration such as 30m, 12h or 90d, not \"" +
                 options.expires_in + "\"");
      return kExitUsage;
    }
    fields["expires_in"] = options.expires_in;
  }

  const AgentOptions& target = options.target;
  int exit_code = kExitOk;
  auto token = callApi(target.common, "POST",
                       apiTarget({"agents", target.agent, "tokens"}, projectQuery(target.project)),
                       boost::json::serialize(fields), exit_code);
  if (!token) {
    return exit_code;
  }

  std::string expiry = stringField(*token, "expires_at", "");
  std::cerr << "created token " << stringField(*token, "id") << " for agent " << target.agent
            << (expiry.empty() ? " (no expiry)" : " (expires " + expiry + ")") << "\n"
            << "warning: the token is shown only this once; store it now\n";
  if (target.common.json) {
    printJson(*token);
  } else {
    std::cout << stringField(*token, "token") << "\n";
  }
  return kExitOk;
}

// Joins a token's array of strings (scopes, models) with commas, or returns `when_empty` for an
// empty array, which means no restriction.
std::string joinedList(const boost::json::value& token, std::string_view name,
                       std::string_view when_empty) {
  const boost::json::value* list = token.as_object().if_contains(name);
  if (list == nullptr || !list->is_array() || list->as_array().empty()) {
    return std::string(when_empty);
  }
  std::string text;
  for (const boost::json::value& entry : list->as_array()) {
    if (entry.is_string()) {
      text += text.empty() ? "" : ",";
      text += std::string(entry.as_string());
    }
  }
  return text;
}

int listTokens(const AgentOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(
      options.common, "GET",
      apiTarget({"agents", options.agent, "tokens"}, projectQuery(options.project)), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& tokens = dataArray(*response);
  if (options.common.json) {
    printJson(tokens);
    return kExitOk;
  }
  if (tokens.empty()) {
    std::cout << "agent " << options.agent << " has no tokens; mint one with: keystore token "
              << "create --agent " << options.agent << "\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& token : tokens) {
    rows.push_back({stringField(token, "id"), stringField(token, "hint"),
                    stringField(token, "status"), joinedList(token, "scopes", "all"),
                    joinedList(token, "models", "any"), shortTime(token, "expires_at"),
                    shortTime(token, "created_at")});
  }
  std::cout << formatTable({"ID", "HINT", "STATUS", "SCOPES", "MODELS", "EXPIRES", "CREATED"},
                           rows);
  return kExitOk;
}

int revokeToken(const TokenOptions& options) {
  int exit_code = kExitOk;
  auto token = callApi(options.common, "POST", apiTarget({"tokens", options.token_id, "revoke"}),
                       {}, exit_code);
  if (!token) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*token);
  } else {
    std::cout << "revoked token " << stringField(*token, "id") << "\n";
  }
  return kExitOk;
}

struct TokenRotateOptions {
  TokenOptions token;
  std::string grace;
};

int rotateToken(const TokenRotateOptions& options) {
  boost::json::object fields;
  if (!options.grace.empty()) {
    fields["grace"] = options.grace;
  }
  int exit_code = kExitOk;
  const TokenOptions& target = options.token;
  auto token = callApi(target.common, "POST", apiTarget({"tokens", target.token_id, "rotate"}),
                       boost::json::serialize(fields), exit_code);
  if (!token) {
    return exit_code;
  }

  std::string old_fate = options.grace.empty() || options.grace == "0"
                             ? "was revoked"
                             : "keeps working for " + options.grace;
  std::cerr << "rotated token " << target.token_id << " to " << stringField(*token, "id")
            << "; the old token " << old_fate << "\n"
            << "warning: the new token is shown only this once; store it now\n";
  if (target.common.json) {
    printJson(*token);
  } else {
    std::cout << stringField(*token, "token") << "\n";
  }
  return kExitOk;
}

int deleteAgent(const AgentOptions& options) {
  int exit_code = kExitOk;
  auto agent =
      callApi(options.common, "DELETE",
              apiTarget({"agents", options.agent}, projectQuery(options.project)), {}, exit_code);
  if (!agent) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*agent);
  } else {
    std::cout << "deleted agent " << stringField(*agent, "name") << " ("
              << stringField(*agent, "id") << "); its tokens are refused from now on\n";
  }
  return kExitOk;
}

void addAgentTarget(CLI::App& command, AgentOptions& options, bool positional) {
  if (positional) {
    command.add_option("AGENT", options.agent, "Agent id, or name with --project")->required();
  } else {
    command.add_option("--agent", options.agent, "Agent id, or name with --project")->required();
  }
  command.add_option("--project", options.project,
                     "Project id or name, needed when the agent is given by name");
  addCommonOptions(command, options.common);
}

}  // namespace

void addAgentCommands(CLI::App& app, int& exit_code) {
  CLI::App* agent = app.add_subcommand("agent", "Create, list, update, pause and resume agents");
  agent->require_subcommand(1);

  auto create_options = std::make_shared<AgentCreateOptions>();
  CLI::App* create = agent->add_subcommand("create", "Create an agent in a project");
  create->add_option("NAME", create_options->name, "Agent name")->required();
  create->add_option("--project", create_options->project, "Project id or name")->required();
  create_options->rpm_option =
      create->add_option("--rpm", create_options->rpm_limit, "Requests per minute allowed")
          ->check(CLI::PositiveNumber);
  create_options->rpd_option =
      create->add_option("--rpd", create_options->rpd_limit, "Requests per day allowed")
          ->check(CLI::PositiveNumber);
  addCommonOptions(*create, create_options->common);
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createAgent(*create_options); });
  });

  auto list_options = std::make_shared<ProjectOptions>();
  CLI::App* list = agent->add_subcommand("list", "List the agents of a project");
  list->add_option("--project", list_options->project, "Project id or name")->required();
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listAgents(*list_options); });
  });

  auto update_options = std::make_shared<AgentUpdateOptions>();
  CLI::App* update = agent->add_subcommand(
      "update", "Set or clear an agent's rate limits and monthly budget; each value may be null");
  addAgentTarget(*update, update_options->target, true);
  update_options->limits.addTo(*update);
  update->callback([update_options, &exit_code] {
    runCommand(exit_code, [&] { return updateAgent(*update_options); });
  });

  for (auto [verb, status, help] :
       {std::tuple{"pause", "paused", "Pause an agent: its tokens are refused until resumed"},
        std::tuple{"resume", "active", "Resume a paused agent"}}) {
    auto options = std::make_shared<AgentOptions>();
    CLI::App* command = agent->add_subcommand(verb, help);
    addAgentTarget(*command, *options, true);
    std::string new_status = status;
    command->callback([options, new_status, &exit_code] {
      runCommand(exit_code, [&] { return setAgentStatus(*options, new_status); });
    });
  }

  auto delete_options = std::make_shared<AgentOptions>();
  CLI::App* remove = agent->add_subcommand(
      "delete", "Delete an agent: its status becomes revoked, which cannot be undone");
  addAgentTarget(*remove, *delete_options, true);
  remove->callback([delete_options, &exit_code] {
    runCommand(exit_code, [&] { return deleteAgent(*delete_options); });
  });
}

void addTokenCommands(CLI::App& app, int& exit_code) {
  CLI::App* token = app.add_subcommand("token", "Mint, list, rotate and revoke agent tokens");
  token->require_subcommand(1);

  auto create_options = std::make_shared<TokenCreateOptions>();
  CLI::App* create =
      token->add_subcommand("create", "Mint an agent token; it is printed only once");
  addAgentTarget(*create, create_options->target, false);
  create->add_option("--scope", create_options->scopes,
                     "Grant such as provider:openai:* (access read, write or *), repeatable. "
                     "Without any, the token may use every provider enabled in the project");
  create->add_option("--model", create_options->models,
                     "Model the token may request, such as gpt-4o-mini, repeatable. Without any, "
                     "the token may use every model");
  create->add_option("--expires-in", create_options->expires_in,
                     "Lifetime such as 30m, 12h or 90d (default: no expiry)");
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createToken(*create_options); });
  });

  auto list_options = std::make_shared<AgentOptions>();
  CLI::App* list = token->add_subcommand("list", "List an agent's tokens (never their values)");
  addAgentTarget(*list, *list_options, false);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listTokens(*list_options); });
  });

  auto revoke_options = std::make_shared<TokenOptions>();
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token at once");
  revoke->add_option("TOKEN_ID", revoke_options->token_id, "Token id (tok_…)")->required();
  addCommonOptions(*revoke, revoke_options->common);
  revoke->callback([revoke_options, &exit_code] {
    runCommand(exit_code, [&] { return revokeToken(*revoke_options); });
  });

  auto rotate_options = std::make_shared<TokenRotateOptions>();
  CLI::App* rotate = token->add_subcommand(
      "rotate", "Replace a token with a new one (same agent, scopes and expiry), printed once");
  rotate->add_option("TOKEN_ID", rotate_options->token.token_id, "Token id (tok_…)")->required();
  rotate->add_option("--grace", rotate_options->grace,
                     "How long the old token keeps working, such as 10m (default: revoked now)");
  addCommonOptions(*rotate, rotate_options->token.common);
  rotate->callback([rotate_options, &exit_code] {
    runCommand(exit_code, [&] { return rotateToken(*rotate_options); });
  });
}

}  // namespace keystore::cli
