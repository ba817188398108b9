// `keystore admin-key …`: admin API keys of the caller's organization.
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/table.h"

namespace keystore::cli {

namespace {

struct AdminKeyCreateOptions {
  CommonOptions common;
  std::string name;
  std::string role;
  std::string project;  // empty: the whole organization
  bool is_operator = false;
};

struct AdminKeyOptions {
  CommonOptions common;
  std::string key_id;
};

int createAdminKey(const AdminKeyCreateOptions& options) {
  boost::json::object fields{{"name", options.name}, {"role", options.role}};
  if (options.is_operator) {
    fields["operator"] = true;
  }
  if (!options.project.empty()) {
    fields["project"] = options.project;
  }
  int exit_code = kExitOk;
  auto key = callApi(options.common, "POST", apiTarget({"admin-keys"}),
                     boost::json::serialize(fields), exit_code);
  if (!key) {
    return exit_code;
  }

  std::cerr << "created admin API key " << stringField(*key, "id") << " (" << options.role
            << (options.is_operator ? ", operator" : "") << ")\n"
            << "warning: the key is shown only this once; store it now\n";
  if (options.common.json) {
    printJson(*key);
  } else {
    std::cout << stringField(*key, "key") << "\n";
  }
  return kExitOk;
}

int listAdminKeys(const CommonOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options, "GET", apiTarget({"admin-keys"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& keys = dataArray(*response);
  if (options.json) {
    printJson(keys);
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& key : keys) {
    const boost::json::value* is_operator = key.as_object().if_contains("operator");
    bool operator_key = is_operator != nullptr && is_operator->is_bool() && is_operator->as_bool();
    rows.push_back({stringField(key, "id"), stringField(key, "name"), stringField(key, "role"),
                    operator_key ? "yes" : "no", stringField(key, "hint"),
                    stringField(key, "status"), shortTime(key, "created_at")});
  }
  std::cout << formatTable({"ID", "NAME", "ROLE", "OPERATOR", "HINT", "STATUS", "CREATED"}, rows);
  return kExitOk;
}

int revokeAdminKey(const AdminKeyOptions& options) {
  int exit_code = kExitOk;
  auto key =
      callApi(options.common, "DELETE", apiTarget({"admin-keys", options.key_id}), {}, exit_code);
  if (!key) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*key);
  } else {
    std::cout << "revoked admin API key " << stringField(*key, "id") << "\n";
  }
  return kExitOk;
}

}  // namespace

void addAdminKeyCommands(CLI::App& app, int& exit_code) {
  CLI::App* admin_key =
      app.add_subcommand("admin-key", "Create, list and revoke admin API keys (owner key)");
  admin_key->require_subcommand(1);

  auto create_options = std::make_shared<AdminKeyCreateOptions>();
  CLI::App* create =
      admin_key->add_subcommand("create", "Create an admin API key; it is printed only once");
  create->add_option("--name", create_options->name, "What the key is for, e.g. ci-deploy")
      ->required();
  create->add_option("--role", create_options->role, "owner, admin, member or viewer")
      ->required()
      ->check(CLI::IsMember({"owner", "admin", "member", "viewer"}));
  create->add_flag("--operator", create_options->is_operator,
                   "Let the key manage marketplace pools and the concierge queue (needs an "
                   "operator key)");
  create->add_option("--project", create_options->project,
                     "Limit the key to one project (id or name); other projects read as missing");
  addCommonOptions(*create, create_options->common);
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createAdminKey(*create_options); });
  });

  auto list_options = std::make_shared<CommonOptions>();
  CLI::App* list =
      admin_key->add_subcommand("list", "List the organization's admin API keys (never the keys)");
  addCommonOptions(*list, *list_options);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listAdminKeys(*list_options); });
  });

  auto revoke_options = std::make_shared<AdminKeyOptions>();
  CLI::App* revoke = admin_key->add_subcommand("revoke", "Revoke an admin API key at once");
  revoke->add_option("KEY_ID", revoke_options->key_id, "Admin API key id")->required();
  addCommonOptions(*revoke, revoke_options->common);
  revoke->callback([revoke_options, &exit_code] {
    runCommand(exit_code, [&] { return revokeAdminKey(*revoke_options); });
  });
}

}  // namespace keystore::cli
