// `keystore project …` and `keystore provider …`.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/credential_body.h"
#include "cli/limit_options.h"
#include "cli/report_format.h"
#include "cli/table.h"

namespace keystore::cli {

namespace {

struct ProjectCreateOptions {
  CommonOptions common;
  std::string name;
};

struct ProjectOptions {
  CommonOptions common;
  std::string project;
};

struct ProjectUpdateOptions {
  CommonOptions common;
  std::string project;
  LimitOptions limits{{
      {"rpm", "default_rpm",
       "Requests per minute for each agent and provider that has no limit of its own, or null "
       "to clear"},
      {"rpd", "default_rpd",
       "Requests per UTC day for each agent and provider that has no limit of its own, or null "
       "to clear"},
      {"tpm", "default_tpm",
       "Tokens per minute for each agent and provider that has no limit of its own, or null to "
       "clear"},
      {"budget-cents", "budget_cents",
       "Monthly (UTC calendar month) spending cap of the whole project in cents, or null for "
       "no budget"},
      {"budget-warn-percent", "budget_warn_percent",
       "Share of the budget, 1 to 100, at which a warning is sent, or null for no warning"},
  }};
};

struct SwitchOptions {
  CommonOptions common;
  std::string provider;
  std::string project;
  std::string mode;
};

struct SetKeyOptions {
  CommonOptions common;
  std::string provider;
  std::string project;
  std::string label;
};

// The integer member `name` as text, or "-" when it is null or absent.
std::string integerText(const boost::json::value& object, std::string_view name) {
  const boost::json::object* fields = object.if_object();
  const boost::json::value* value = fields != nullptr ? fields->if_contains(name) : nullptr;
  if (value == nullptr || !value->is_int64()) {
    return "-";
  }
  return std::to_string(value->as_int64());
}

std::string budgetText(const boost::json::value& project) {
  const boost::json::object* fields = project.if_object();
  const boost::json::value* cents =
      fields != nullptr ? fields->if_contains("budget_cents") : nullptr;
  if (cents == nullptr || !cents->is_int64()) {
    return "-";
  }
  return dollarsFromCents(cents->as_int64());
}

int createProject(const ProjectCreateOptions& options) {
  int exit_code = kExitOk;
  std::string body = boost::json::serialize(boost::json::object{{"name", options.name}});
  auto project = callApi(options.common, "POST", apiTarget({"projects"}), body, exit_code);
  if (!project) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*project);
  } else {
    std::cout << "created project " << stringField(*project, "name") << " ("
              << stringField(*project, "id") << ")\n";
  }
  return kExitOk;
}

int listProjects(const CommonOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options, "GET", apiTarget({"projects"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& projects = dataArray(*response);
  if (options.json) {
    printJson(projects);
    return kExitOk;
  }
  if (projects.empty()) {
    std::cout << "no projects yet; create one with: keystore project create NAME\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& project : projects) {
    rows.push_back({stringField(project, "id"), stringField(project, "name"),
                    integerText(project, "default_rpm"), integerText(project, "default_rpd"),
                    integerText(project, "default_tpm"), budgetText(project),
                    shortTime(project, "created_at")});
  }
  std::cout << formatTable({"ID", "NAME", "RPM", "RPD", "TPM", "BUDGET", "CREATED"}, rows);
  return kExitOk;
}

int updateProject(const ProjectUpdateOptions& options) {
  std::optional<boost::json::object> body = options.limits.body();
  if (!body) {
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto project = callApi(options.common, "PATCH", apiTarget({"projects", options.project}),
                         boost::json::serialize(*body), exit_code);
  if (!project) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*project);
    return kExitOk;
  }
  std::cout << "updated project " << stringField(*project, "name") << " ("
            << stringField(*project, "id") << "): ";
  std::string separator;
  for (std::string_view member :
       {"default_rpm", "default_rpd", "default_tpm", "budget_cents", "budget_warn_percent"}) {
    std::cout << separator << member << " " << integerText(*project, member);
    separator = ", ";
  }
  std::cout << "\n";
  return kExitOk;
}

std::string keyMask(const boost::json::value& provider) {
  const boost::json::object* fields = provider.if_object();
  const boost::json::value* key = fields != nullptr ? fields->if_contains("key") : nullptr;
  if (key == nullptr || !key->is_string()) {
    return "-";
  }
  return std::string(key->get_string());
}

int listProviders(const ProjectOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET",
                          apiTarget({"projects", options.project, "providers"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& providers = dataArray(*response);
  if (options.common.json) {
    printJson(providers);
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& provider : providers) {
    rows.push_back({stringField(provider, "provider"), stringField(provider, "availability"),
                    stringField(provider, "mode"), stringField(provider, "status"),
                    keyMask(provider)});
  }
  std::cout << formatTable({"NAME", "AVAILABILITY", "MODE", "STATUS", "KEY"}, rows);
  return kExitOk;
}

int setProviderKey(const SetKeyOptions& options, const std::vector<std::string>& extras) {
  // Arguments end up in shell history and process listings, so a key given as one is
  // refused without being repeated.
  if (!extras.empty()) {
    printError(
        "provider set-key takes no key argument; pipe the key into standard input (for "
        "example: keystore provider set-key " +
        options.provider + " --project " + options.project +
        " < key.txt) or run it in a terminal to be prompted");
    return kExitUsage;
  }
  if (!isProviderIdShaped(options.provider)) {
    printError(
        "PROVIDER must be a provider id such as openai (lowercase letters, digits, '-' and "
        "'_'); run keystore provider list --project PROJECT to see them");
    return kExitUsage;
  }

  boost::json::object fields;
  if (!options.label.empty()) {
    fields["label"] = options.label;
  }
  Result<Secret> body = readCredentialBody(
      "API key for " + options.provider + " (input is hidden): ", std::move(fields));
  if (!body) {
    printError(body.error().message);
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto provider =
      callApi(options.common, "PUT",
              apiTarget({"projects", options.project, "providers", options.provider, "key"}),
              body->reveal(), exit_code);
  if (!provider) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*provider);
  } else {
    std::cout << "stored key " << keyMask(*provider) << " for " << options.provider
              << " in project " << options.project << "\n";
  }
  return kExitOk;
}

// PATCHes the provider setting; `mode` is left out when empty.
int switchProvider(const SwitchOptions& options, std::string_view status) {
  if (!isProviderIdShaped(options.provider)) {
    printError(
        "PROVIDER must be a provider id such as openai; run keystore provider list "
        "--project PROJECT to see them");
    return kExitUsage;
  }
  boost::json::object fields{{"status", status}};
  if (!options.mode.empty()) {
    fields["mode"] = options.mode;
  }

  int exit_code = kExitOk;
  auto provider = callApi(options.common, "PATCH",
                          apiTarget({"projects", options.project, "providers", options.provider}),
                          boost::json::serialize(fields), exit_code);
  if (!provider) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*provider);
  } else {
    std::cout << options.provider << " in project " << options.project << " is now "
              << stringField(*provider, "status") << " (mode " << stringField(*provider, "mode")
              << ", key " << keyMask(*provider) << ")\n";
  }
  return kExitOk;
}

}  // namespace

void addProjectCommands(CLI::App& app, int& exit_code) {
  CLI::App* project =
      app.add_subcommand("project", "Create, list and update projects and their limits");
  project->require_subcommand(1);

  auto create_options = std::make_shared<ProjectCreateOptions>();
  CLI::App* create = project->add_subcommand("create", "Create a project");
  create->add_option("NAME", create_options->name, "Project name")->required();
  addCommonOptions(*create, create_options->common);
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createProject(*create_options); });
  });

  auto list_options = std::make_shared<CommonOptions>();
  CLI::App* list = project->add_subcommand("list", "List the projects");
  addCommonOptions(*list, *list_options);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listProjects(*list_options); });
  });

  auto update_options = std::make_shared<ProjectUpdateOptions>();
  CLI::App* update = project->add_subcommand(
      "update",
      "Set or clear a project's default rate limits and monthly budget; each value may be null");
  update->add_option("PROJECT", update_options->project, "Project id or name")->required();
  update_options->limits.addTo(*update);
  addCommonOptions(*update, update_options->common);
  update->callback([update_options, &exit_code] {
    runCommand(exit_code, [&] { return updateProject(*update_options); });
  });
}

void addProviderCommands(CLI::App& app, int& exit_code) {
  CLI::App* provider =
      app.add_subcommand("provider", "Show, enable and disable providers and store their keys");
  provider->require_subcommand(1);

  auto list_options = std::make_shared<ProjectOptions>();
  CLI::App* list = provider->add_subcommand("list", "List the providers of a project");
  list->add_option("--project", list_options->project, "Project id or name")->required();
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listProviders(*list_options); });
  });

  auto enable_options = std::make_shared<SwitchOptions>();
  CLI::App* enable = provider->add_subcommand(
      "enable", "Enable a provider in a project, in BYOK or marketplace mode");
  enable->add_option("PROVIDER", enable_options->provider, "Provider id, e.g. openai")->required();
  enable->add_option("--project", enable_options->project, "Project id or name")->required();
  enable
      ->add_option("--mode", enable_options->mode,
                   "byok to use the project's own key, marketplace to use the operator's pool")
      ->required()
      ->check(CLI::IsMember({"byok", "marketplace"}));
  addCommonOptions(*enable, enable_options->common);
  enable->callback([enable_options, &exit_code] {
    runCommand(exit_code, [&] { return switchProvider(*enable_options, "enabled"); });
  });

  auto disable_options = std::make_shared<SwitchOptions>();
  CLI::App* disable = provider->add_subcommand(
      "disable", "Disable a provider in a project: the proxy refuses its requests");
  disable->add_option("PROVIDER", disable_options->provider, "Provider id, e.g. openai")
      ->required();
  disable->add_option("--project", disable_options->project, "Project id or name")->required();
  addCommonOptions(*disable, disable_options->common);
  disable->callback([disable_options, &exit_code] {
    runCommand(exit_code, [&] { return switchProvider(*disable_options, "disabled"); });
  });

  auto set_key_options = std::make_shared<SetKeyOptions>();
  CLI::App* set_key = provider->add_subcommand(
      "set-key",
      "Store a provider key (BYOK), read from standard input or a hidden prompt; a JSON object "
      "there is a credential with several fields");
  set_key->add_option("PROVIDER", set_key_options->provider, "Provider id, e.g. openai")
      ->required();
  set_key->add_option("--project", set_key_options->project, "Project id or name")->required();
  set_key->add_option("--label", set_key_options->label, "A note shown next to the key");
  addCommonOptions(*set_key, set_key_options->common);
  // Extra arguments are collected rather than rejected by the parser, whose message would
  // repeat them, and a stray argument here is likely the key itself.
  set_key->allow_extras();
  set_key->callback([set_key, set_key_options, &exit_code] {
    runCommand(exit_code, [&] { return setProviderKey(*set_key_options, set_key->remaining()); });
  });
}

}  // namespace keystore::cli
