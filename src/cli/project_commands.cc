// `keystore project …` and `keystore provider …`.
#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/secret_input.h"
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

struct SetKeyOptions {
  CommonOptions common;
  std::string provider;
  std::string project;
  std::string label;
};

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
                    shortTime(project, "created_at")});
  }
  std::cout << formatTable({"ID", "NAME", "CREATED"}, rows);
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
    rows.push_back({stringField(provider, "provider"), stringField(provider, "mode"),
                    stringField(provider, "status"), keyMask(provider)});
  }
  std::cout << formatTable({"NAME", "MODE", "STATUS", "KEY"}, rows);
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
  // A key typed in place of the provider would otherwise be sent in the URL and echoed in
  // the error message.
  bool provider_shaped =
      !options.provider.empty() && options.provider.size() <= 64 &&
      std::all_of(options.provider.begin(), options.provider.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      });
  if (!provider_shaped) {
    printError(
        "PROVIDER must be a provider id such as openai (lowercase letters, digits, '-' and "
        "'_'); run keystore provider list --project PROJECT to see them");
    return kExitUsage;
  }

  Result<Secret> key = readSecret("API key for " + options.provider + " (input is hidden): ");
  if (!key) {
    printError(key.error().message);
    return kExitUsage;
  }
  boost::json::object fields{{"api_key", key->reveal()}};
  if (!options.label.empty()) {
    fields["label"] = options.label;
  }
  Secret body(boost::json::serialize(fields));
  boost::json::string& copy = fields["api_key"].as_string();
  OPENSSL_cleanse(copy.data(), copy.size());

  int exit_code = kExitOk;
  auto provider =
      callApi(options.common, "PUT",
              apiTarget({"projects", options.project, "providers", options.provider, "key"}),
              body.reveal(), exit_code);
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

}  // namespace

void addProjectCommands(CLI::App& app, int& exit_code) {
  CLI::App* project = app.add_subcommand("project", "Create and list projects");
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
}

void addProviderCommands(CLI::App& app, int& exit_code) {
  CLI::App* provider =
      app.add_subcommand("provider", "Show providers and store their keys in a project");
  provider->require_subcommand(1);

  auto list_options = std::make_shared<ProjectOptions>();
  CLI::App* list = provider->add_subcommand("list", "List the providers of a project");
  list->add_option("--project", list_options->project, "Project id or name")->required();
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listProviders(*list_options); });
  });

  auto set_key_options = std::make_shared<SetKeyOptions>();
  CLI::App* set_key = provider->add_subcommand(
      "set-key", "Store a provider API key (BYOK), read from standard input or a hidden prompt");
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
