// `keystore login`, `logout`, `user …`, `org …` and `member …`: signing in to the management
// API, the first user of an installation, organizations and their members.
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "accounts/password.h"
#include "audit/audit_log.h"
#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/secret_input.h"
#include "cli/session_file.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/secure_zero.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::cli {

namespace {

struct LoginOptions {
  std::string url = "http://127.0.0.1:8081";
  std::string email;
  bool json = false;
};

struct UserCreateOptions {
  std::string data_dir = "./keystore-data";
  std::string email;
  bool is_operator = false;
  std::string organization;
  std::string role = "owner";
};

struct UserOperatorOptions {
  CommonOptions common;
  std::string user_id;
  bool on = false;
  bool off = false;
};

struct OrgCreateOptions {
  CommonOptions common;
  std::string name;
};

struct MemberOptions {
  CommonOptions common;
  std::string organization;  // id or name; empty = the caller's first organization
  std::string user_id;
  std::string email;
  std::string role;
  bool with_password = false;
};

int login(const LoginOptions& options) {
  Result<ServerAddress> address = parseServerAddress(options.url);
  if (!address) {
    printError(address.error().message);
    return kExitUsage;
  }
  std::string email = options.email;
  if (email.empty()) {
    if (!::isatty(STDIN_FILENO)) {
      printError("--email is required when standard input is not a terminal");
      return kExitUsage;
    }
    std::cerr << "Email: " << std::flush;
    std::getline(std::cin, email);
  }
  Result<Secret> password = readSecret("Password: ");
  if (!password) {
    printError(password.error().message);
    return kExitFailure;
  }

  std::string body = boost::json::serialize(
      boost::json::object{{"email", email}, {"password", password->reveal()}, {"client", "cli"}});
  ApiClient client(*address, Secret());
  Result<HttpReply> reply = client.send("POST", "/api/v1/auth/login", body);
  secureZero(body.data(), body.size());
  if (!reply) {
    printError(reply.error().message);
    return kExitFailure;
  }
  boost::system::error_code error;
  boost::json::value parsed = boost::json::parse(reply->body, error);
  if (error || reply->status != 200) {
    boost::system::error_code pointer_error;
    const boost::json::value* message = parsed.find_pointer("/error/message", pointer_error);
    printError(message != nullptr && message->is_string()
                   ? "sign-in failed: " + std::string(message->as_string())
                   : "sign-in failed with HTTP " + std::to_string(reply->status));
    return kExitFailure;
  }

  boost::json::object& fields = parsed.as_object();
  const boost::json::value* token = fields.if_contains("session_token");
  if (token == nullptr || !token->is_string()) {
    printError("the server did not return a session token; is it a Keystore admin listener?");
    return kExitFailure;
  }
  SavedSession session{address->text, Secret(std::string(token->as_string()))};
  boost::json::string& token_text = fields["session_token"].as_string();
  secureZero(token_text.data(), token_text.size());
  fields.erase("session_token");
  if (auto saved = saveSession(session); !saved) {
    printError("cannot save the sign-in: " + saved.error().message);
    return kExitFailure;
  }

  if (options.json) {
    printJson(parsed);
    return kExitOk;
  }
  Result<std::string> path = sessionFilePath();
  std::cout << "signed in as " << stringField(fields["user"], "email") << " until "
            << stringField(parsed, "expires_at") << "; session saved in "
            << (path ? *path : std::string("the session file")) << "\n";
  return kExitOk;
}

int logout(const CommonOptions& options) {
  Result<std::optional<SavedSession>> session = loadSession();
  if (!session) {
    printError(session.error().message);
    return kExitFailure;
  }
  if (!session->has_value()) {
    std::cout << "not signed in\n";
    return kExitOk;
  }
  Result<ServerAddress> address = parseServerAddress((*session)->url);
  int status = kExitOk;
  if (address) {
    ApiClient client(*address, std::move((*session)->token));
    Result<HttpReply> reply = client.send("POST", "/api/v1/auth/logout");
    if (!reply || reply->status != 204) {
      printError("the server did not confirm the sign-out; the saved session is deleted anyway");
      status = kExitFailure;
    }
  }
  if (auto removed = removeSession(); !removed) {
    printError(removed.error().message);
    return kExitFailure;
  }
  if (!options.json) {
    std::cout << "signed out\n";
  }
  return status;
}

// Picks the organization for a new user: the named one (id or name, created when no
// organization has that name), or the oldest one, or a new "default".
Result<store::Organization> chooseOrganization(store::Store& store, const std::string& name) {
  Result<std::vector<store::Organization>> organizations = store.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  for (const store::Organization& organization : *organizations) {
    if (!name.empty() && (organization.id == name || organization.name == name)) {
      return organization;
    }
  }
  if (name.empty() && !organizations->empty()) {
    return organizations->front();
  }
  store::Organization created;
  created.name = name.empty() ? "default" : name;
  created.created_at = nowUnixMillis();
  return store.createOrganization(created);
}

int createUser(const UserCreateOptions& options) {
  if (options.email.find('@') == std::string::npos) {
    printError("--email must be an email address such as alice@example.com");
    return kExitUsage;
  }
  auto opened = store::openSqliteStore(options.data_dir + "/keystore.db");
  if (!opened) {
    printError("cannot open the database in " + options.data_dir + ": " + opened.error().message);
    return kExitFailure;
  }
  std::unique_ptr<store::Store> store = std::move(*opened);
  Result<std::optional<store::User>> existing = store->findUserByEmail(options.email);
  if (!existing) {
    printError(existing.error().message);
    return kExitFailure;
  }
  if (existing->has_value()) {
    printError("a user with the email " + options.email + " already exists");
    return kExitFailure;
  }

  Result<Secret> password = readSecret("Password for " + options.email + ": ");
  if (!password) {
    printError(password.error().message);
    return kExitFailure;
  }
  if (auto valid = accounts::validateNewPassword(options.email, *password); !valid) {
    printError(valid.error().message);
    return kExitFailure;
  }
  Result<std::string> hash = accounts::hashPassword(*password);
  if (!hash) {
    printError(hash.error().message);
    return kExitFailure;
  }

  Result<store::Organization> organization = chooseOrganization(*store, options.organization);
  if (!organization) {
    printError("cannot find or create the organization: " + organization.error().message);
    return kExitFailure;
  }
  store::User user;
  user.email = options.email;
  user.password_hash = *hash;
  user.is_operator = options.is_operator;
  store::Membership membership;
  membership.organization_id = organization->id;
  membership.role = options.role;
  // The account exists only if its creation is on record.
  Result<store::Membership> created = fail(ErrorCode::kInternal, "the user was not created");
  Result<void> recorded = store->inTransaction([&]() -> Result<void> {
    created = store->createUserWithMembership(user, membership);
    if (!created) {
      return std::unexpected(created.error());
    }
    store::AuditEntry entry;
    entry.organization_id = organization->id;
    entry.action = "user.create";
    entry.target = created->user_id;
    entry.details = boost::json::serialize(
        boost::json::object{{"role", created->role}, {"operator", options.is_operator}});
    if (auto appended = audit::appendOperatorEntry(*store, entry); !appended) {
      return std::unexpected(appended.error());
    }
    return {};
  });
  if (!recorded && created) {
    created = std::unexpected(recorded.error());
  }
  if (!created) {
    printError("cannot create the user: " + created.error().message);
    return kExitFailure;
  }
  std::cout << "created user " << created->user_id << " (" << created->user_email << ") as "
            << created->role << " of organization " << organization->name
            << (options.is_operator ? ", operator" : "") << "\n";
  return kExitOk;
}

int setOperator(const UserOperatorOptions& options) {
  if (options.on == options.off) {
    printError("pass exactly one of --on and --off");
    return kExitUsage;
  }
  int exit_code = kExitOk;
  auto user =
      callApi(options.common, "POST", apiTarget({"users", options.user_id, "operator"}),
              boost::json::serialize(boost::json::object{{"operator", options.on}}), exit_code);
  if (!user) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*user);
  } else {
    std::cout << "user " << stringField(*user, "id") << " is "
              << (options.on ? "now an operator" : "no longer an operator") << "\n";
  }
  return kExitOk;
}

int listOrganizations(const CommonOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options, "GET", apiTarget({"organizations"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& organizations = dataArray(*response);
  if (options.json) {
    printJson(organizations);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& organization : organizations) {
    rows.push_back({stringField(organization, "id"), stringField(organization, "name"),
                    stringField(organization, "role"), shortTime(organization, "created_at")});
  }
  std::cout << formatTable({"ID", "NAME", "ROLE", "CREATED"}, rows);
  return kExitOk;
}

int createOrganization(const OrgCreateOptions& options) {
  int exit_code = kExitOk;
  auto organization =
      callApi(options.common, "POST", apiTarget({"organizations"}),
              boost::json::serialize(boost::json::object{{"name", options.name}}), exit_code);
  if (!organization) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*organization);
  } else {
    std::cout << "created organization " << stringField(*organization, "name") << " ("
              << stringField(*organization, "id") << "); you are its owner\n";
  }
  return kExitOk;
}

// The organization a member command acts on: --organization, or the caller's first.
std::optional<std::string> memberOrganization(const MemberOptions& options, int& exit_code) {
  if (!options.organization.empty()) {
    return options.organization;
  }
  auto response = callApi(options.common, "GET", apiTarget({"organizations"}), {}, exit_code);
  if (!response) {
    return std::nullopt;
  }
  const boost::json::array& organizations = dataArray(*response);
  if (organizations.empty()) {
    printError("you belong to no organization; pass --organization");
    exit_code = kExitFailure;
    return std::nullopt;
  }
  return stringField(organizations.front(), "id");
}

void printMember(const MemberOptions& options, const boost::json::value& member,
                 std::string_view verb) {
  if (options.common.json) {
    printJson(member);
    return;
  }
  std::cout << verb << " " << stringField(member, "email") << " (" << stringField(member, "user_id")
            << ") as " << stringField(member, "role") << "\n";
}

int listMembers(const MemberOptions& options) {
  int exit_code = kExitOk;
  std::optional<std::string> organization = memberOrganization(options, exit_code);
  if (!organization) {
    return exit_code;
  }
  auto response = callApi(options.common, "GET",
                          apiTarget({"organizations", *organization, "members"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& members = dataArray(*response);
  if (options.common.json) {
    printJson(members);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& member : members) {
    rows.push_back({stringField(member, "user_id"), stringField(member, "email"),
                    stringField(member, "role"), shortTime(member, "created_at")});
  }
  std::cout << formatTable({"USER", "EMAIL", "ROLE", "SINCE"}, rows);
  return kExitOk;
}

int addMember(const MemberOptions& options) {
  boost::json::object fields{{"email", options.email}, {"role", options.role}};
  if (options.with_password) {
    Result<Secret> password = readSecret("Password for " + options.email + ": ");
    if (!password) {
      printError(password.error().message);
      return kExitFailure;
    }
    fields["password"] = password->reveal();
  }
  int exit_code = kExitOk;
  std::optional<std::string> organization = memberOrganization(options, exit_code);
  if (!organization) {
    return exit_code;
  }
  std::string body = boost::json::serialize(fields);
  auto member = callApi(options.common, "POST",
                        apiTarget({"organizations", *organization, "members"}), body, exit_code);
  secureZero(body.data(), body.size());
  if (fields.contains("password")) {
    boost::json::string& password = fields["password"].as_string();
    secureZero(password.data(), password.size());
  }
  if (!member) {
    return exit_code;
  }
  printMember(options, *member, "added");
  return kExitOk;
}

int updateMember(const MemberOptions& options) {
  int exit_code = kExitOk;
  std::optional<std::string> organization = memberOrganization(options, exit_code);
  if (!organization) {
    return exit_code;
  }
  auto member =
      callApi(options.common, "PATCH",
              apiTarget({"organizations", *organization, "members", options.user_id}),
              boost::json::serialize(boost::json::object{{"role", options.role}}), exit_code);
  if (!member) {
    return exit_code;
  }
  printMember(options, *member, "updated");
  return kExitOk;
}

int removeMember(const MemberOptions& options) {
  int exit_code = kExitOk;
  std::optional<std::string> organization = memberOrganization(options, exit_code);
  if (!organization) {
    return exit_code;
  }
  auto removed = callApi(options.common, "DELETE",
                         apiTarget({"organizations", *organization, "members", options.user_id}),
                         {}, exit_code);
  if (!removed) {
    return exit_code;
  }
  if (!options.common.json) {
    std::cout << "removed " << options.user_id << " from organization " << *organization << "\n";
  }
  return kExitOk;
}

void addMemberCommands(CLI::App& app, int& exit_code) {
  CLI::App* member = app.add_subcommand("member", "List and manage an organization's members");
  member->require_subcommand(1);
  auto add_organization = [](CLI::App* command, MemberOptions& options) {
    command->add_option("--organization", options.organization,
                        "Organization id or name (default: your first organization)");
    addCommonOptions(*command, options.common);
  };
  auto roles = CLI::IsMember({"owner", "admin", "member", "viewer"});

  auto list_options = std::make_shared<MemberOptions>();
  CLI::App* list = member->add_subcommand("list", "List the members and their roles");
  add_organization(list, *list_options);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listMembers(*list_options); });
  });

  auto add_options = std::make_shared<MemberOptions>();
  CLI::App* add = member->add_subcommand(
      "add", "Add a user by email; a new email needs --with-password to create the account");
  add->add_option("--email", add_options->email, "The user's email")->required();
  add->add_option("--role", add_options->role, "owner, admin, member or viewer")
      ->required()
      ->check(roles);
  add->add_flag("--with-password", add_options->with_password,
                "Read the new user's first password from standard input or a prompt");
  add_organization(add, *add_options);
  add->callback([add_options, &exit_code] {
    runCommand(exit_code, [&] { return addMember(*add_options); });
  });

  auto update_options = std::make_shared<MemberOptions>();
  CLI::App* update = member->add_subcommand("update", "Change a member's role");
  update->add_option("USER_ID", update_options->user_id, "The member's user id")->required();
  update->add_option("--role", update_options->role, "owner, admin, member or viewer")
      ->required()
      ->check(roles);
  add_organization(update, *update_options);
  update->callback([update_options, &exit_code] {
    runCommand(exit_code, [&] { return updateMember(*update_options); });
  });

  auto remove_options = std::make_shared<MemberOptions>();
  CLI::App* remove = member->add_subcommand("remove", "Remove a member from the organization");
  remove->add_option("USER_ID", remove_options->user_id, "The member's user id")->required();
  add_organization(remove, *remove_options);
  remove->callback([remove_options, &exit_code] {
    runCommand(exit_code, [&] { return removeMember(*remove_options); });
  });
}

}  // namespace

void addAccountCommands(CLI::App& app, int& exit_code) {
  auto login_options = std::make_shared<LoginOptions>();
  CLI::App* login_command = app.add_subcommand(
      "login", "Sign in to the management API; the password is read from a prompt or stdin");
  login_command->add_option("--url,--addr", login_options->url, "Address of the Keystore admin API")
      ->envname("KEYSTORE_ADDR")
      ->capture_default_str();
  login_command->add_option("--email", login_options->email, "Your email (prompted when absent)");
  login_command->add_flag("--json", login_options->json, "Print the session as JSON");
  login_command->callback([login_options, &exit_code] {
    runCommand(exit_code, [&] { return login(*login_options); });
  });

  auto logout_options = std::make_shared<CommonOptions>();
  CLI::App* logout_command =
      app.add_subcommand("logout", "End the saved session and delete the session file");
  logout_command->add_flag("--json", logout_options->json, "Print nothing on success");
  logout_command->callback([logout_options, &exit_code] {
    runCommand(exit_code, [&] { return logout(*logout_options); });
  });

  CLI::App* user = app.add_subcommand("user", "Create users and grant the operator flag");
  user->require_subcommand(1);
  auto create_options = std::make_shared<UserCreateOptions>();
  CLI::App* create = user->add_subcommand(
      "create",
      "Create a user directly in the data directory (for the first user); the password is read "
      "from a prompt or stdin");
  create->add_option("--data-dir", create_options->data_dir, "Server data directory")
      ->envname("KEYSTORE_DATA_DIR")
      ->capture_default_str();
  create->add_option("--email", create_options->email, "The user's email")->required();
  create->add_flag("--operator", create_options->is_operator,
                   "Make the user the installation's operator");
  create->add_option("--organization", create_options->organization,
                     "Organization id or name; created when missing (default: the oldest)");
  create->add_option("--role", create_options->role, "owner, admin, member or viewer")
      ->check(CLI::IsMember({"owner", "admin", "member", "viewer"}))
      ->capture_default_str();
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createUser(*create_options); });
  });

  auto operator_options = std::make_shared<UserOperatorOptions>();
  CLI::App* operator_command =
      user->add_subcommand("operator", "Grant or take away a user's operator flag (operator)");
  operator_command->add_option("USER_ID", operator_options->user_id, "The user's id")->required();
  operator_command->add_flag("--on", operator_options->on, "Make the user an operator");
  operator_command->add_flag("--off", operator_options->off, "Take the operator flag away");
  addCommonOptions(*operator_command, operator_options->common);
  operator_command->callback([operator_options, &exit_code] {
    runCommand(exit_code, [&] { return setOperator(*operator_options); });
  });

  CLI::App* org = app.add_subcommand("org", "List and create organizations");
  org->require_subcommand(1);
  auto org_list_options = std::make_shared<CommonOptions>();
  CLI::App* org_list = org->add_subcommand("list", "List your organizations and your role");
  addCommonOptions(*org_list, *org_list_options);
  org_list->callback([org_list_options, &exit_code] {
    runCommand(exit_code, [&] { return listOrganizations(*org_list_options); });
  });
  auto org_create_options = std::make_shared<OrgCreateOptions>();
  CLI::App* org_create =
      org->add_subcommand("create", "Create an organization; you become its owner");
  org_create->add_option("NAME", org_create_options->name, "Organization name")->required();
  addCommonOptions(*org_create, org_create_options->common);
  org_create->callback([org_create_options, &exit_code] {
    runCommand(exit_code, [&] { return createOrganization(*org_create_options); });
  });

  addMemberCommands(app, exit_code);
}

}  // namespace keystore::cli
