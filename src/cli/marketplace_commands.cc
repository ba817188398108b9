// `keystore pool …` and `keystore concierge …`: the operator's marketplace credentials and the
// requests for concierge providers.
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/credential_body.h"
#include "cli/table.h"

namespace keystore::cli {

namespace {

constexpr int64_t kMaxRpmLimit = 1'000'000;

struct PoolAddOptions {
  CommonOptions common;
  std::string provider;
  bool shared = false;
  std::string dedicated;  // project id or name
  std::string label;
  int64_t rpm_limit = 0;
  CLI::Option* rpm_option = nullptr;
};

struct PoolListOptions {
  CommonOptions common;
  std::string provider;
};

// A command that names one object by id: a pool credential or a concierge request.
struct IdOptions {
  CommonOptions common;
  std::string id;
};

struct ConciergeRequestOptions {
  CommonOptions common;
  std::string provider;
  std::string project;
  std::string note;
};

struct ConciergeListOptions {
  CommonOptions common;
  std::string project;
  std::string status;
};

struct FulfillOptions {
  CommonOptions common;
  std::string request_id;
  std::string label;
  int64_t rpm_limit = 0;
  CLI::Option* rpm_option = nullptr;
};

struct RejectOptions {
  CommonOptions common;
  std::string request_id;
  std::string reason;
};

std::string integerField(const boost::json::value& object, std::string_view name) {
  const boost::json::object* fields = object.if_object();
  const boost::json::value* value = fields != nullptr ? fields->if_contains(name) : nullptr;
  if (value == nullptr || !value->is_int64()) {
    return "-";
  }
  return std::to_string(value->as_int64());
}

std::string healthState(const boost::json::value& credential) {
  const boost::json::object* fields = credential.if_object();
  const boost::json::value* health = fields != nullptr ? fields->if_contains("health") : nullptr;
  if (health == nullptr) {
    return "-";
  }
  return stringField(*health, "state");
}

// Arguments end up in shell history and process listings, so a key given as one is refused
// without being repeated.
bool rejectKeyArguments(const std::vector<std::string>& extras, std::string_view command) {
  if (extras.empty()) {
    return false;
  }
  printError(std::string(command) +
             " takes no key argument; pipe the key (or a JSON object of credential fields) into "
             "standard input, or run it in a terminal to be prompted");
  return true;
}

int addPoolCredential(const PoolAddOptions& options, const std::vector<std::string>& extras) {
  if (rejectKeyArguments(extras, "pool add")) {
    return kExitUsage;
  }
  if (!isProviderIdShaped(options.provider)) {
    printError("PROVIDER must be a provider id such as openai; keystore pool list shows them");
    return kExitUsage;
  }
  if (!options.shared && options.dedicated.empty()) {
    printError("pool add needs --shared or --dedicated PROJECT");
    return kExitUsage;
  }

  boost::json::object fields{{"scope", options.shared ? "shared" : "dedicated"}};
  if (!options.dedicated.empty()) {
    fields["project"] = options.dedicated;
  }
  if (!options.label.empty()) {
    fields["label"] = options.label;
  }
  if (options.rpm_option->count() > 0) {
    fields["rpm_limit"] = options.rpm_limit;
  }
  Result<Secret> body = readCredentialBody(
      "Credential for the " + options.provider + " pool (input is hidden): ", std::move(fields));
  if (!body) {
    printError(body.error().message);
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto credential =
      callApi(options.common, "POST", apiTarget({"pools", options.provider, "credentials"}),
              body->reveal(), exit_code);
  if (!credential) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*credential);
  } else {
    std::cout << "added " << stringField(*credential, "scope") << " credential "
              << stringField(*credential, "id") << " (" << stringField(*credential, "key")
              << ") to the " << options.provider << " pool\n";
  }
  return kExitOk;
}

int listPools(const PoolListOptions& options) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!options.provider.empty()) {
    query.emplace_back("provider", options.provider);
  }
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", apiTarget({"pools"}, query), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& credentials = dataArray(*response);
  if (options.common.json) {
    printJson(credentials);
    return kExitOk;
  }
  if (credentials.empty()) {
    std::cout << "no pool credentials; add one with: keystore pool add PROVIDER --shared\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& credential : credentials) {
    rows.push_back({stringField(credential, "id"), stringField(credential, "provider"),
                    stringField(credential, "scope"), stringField(credential, "project_id"),
                    stringField(credential, "status"), stringField(credential, "key"),
                    integerField(credential, "rpm_limit"), healthState(credential),
                    stringField(credential, "label")});
  }
  std::cout << formatTable(
      {"ID", "PROVIDER", "SCOPE", "PROJECT", "STATUS", "KEY", "RPM", "HEALTH", "LABEL"}, rows);
  return kExitOk;
}

int setPoolCredentialStatus(const IdOptions& options, std::string_view verb) {
  int exit_code = kExitOk;
  auto credential = callApi(options.common, "POST",
                            apiTarget({"pools", "credentials", options.id, verb}), {}, exit_code);
  if (!credential) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*credential);
  } else {
    std::cout << "pool credential " << stringField(*credential, "id") << " is now "
              << stringField(*credential, "status") << "\n";
  }
  return kExitOk;
}

int fileConciergeRequest(const ConciergeRequestOptions& options) {
  boost::json::object fields{{"provider", options.provider}};
  if (!options.note.empty()) {
    fields["note"] = options.note;
  }
  int exit_code = kExitOk;
  auto request =
      callApi(options.common, "POST", apiTarget({"projects", options.project, "concierge"}),
              boost::json::serialize(fields), exit_code);
  if (!request) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*request);
  } else {
    std::cout << "filed concierge request " << stringField(*request, "id") << " for "
              << options.provider << " in project " << options.project
              << "; the operator fulfils or rejects it\n";
  }
  return kExitOk;
}

int listConciergeRequests(const ConciergeListOptions& options) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!options.status.empty()) {
    query.emplace_back("status", options.status);
  }
  // Without a project the list is the operator's queue across every project.
  std::string target = options.project.empty()
                           ? apiTarget({"concierge"}, query)
                           : apiTarget({"projects", options.project, "concierge"}, query);
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", target, {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& requests = dataArray(*response);
  if (options.common.json) {
    printJson(requests);
    return kExitOk;
  }
  if (requests.empty()) {
    std::cout << "no concierge requests\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& request : requests) {
    std::string detail = stringField(request, "reason", stringField(request, "note"));
    rows.push_back({stringField(request, "id"), stringField(request, "project_id"),
                    stringField(request, "provider"), stringField(request, "status"),
                    stringField(request, "credential_id"), shortTime(request, "created_at"),
                    detail});
  }
  std::cout << formatTable(
      {"ID", "PROJECT", "PROVIDER", "STATUS", "CREDENTIAL", "CREATED", "NOTE/REASON"}, rows);
  return kExitOk;
}

int fulfillConciergeRequest(const FulfillOptions& options, const std::vector<std::string>& extras) {
  if (rejectKeyArguments(extras, "concierge fulfill")) {
    return kExitUsage;
  }
  boost::json::object fields;
  if (!options.label.empty()) {
    fields["label"] = options.label;
  }
  if (options.rpm_option->count() > 0) {
    fields["rpm_limit"] = options.rpm_limit;
  }
  Result<Secret> body = readCredentialBody(
      "Credential for concierge request " + options.request_id + " (input is hidden): ",
      std::move(fields));
  if (!body) {
    printError(body.error().message);
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto request =
      callApi(options.common, "POST", apiTarget({"concierge", options.request_id, "fulfill"}),
              body->reveal(), exit_code);
  if (!request) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*request);
  } else {
    std::cout << "fulfilled concierge request " << stringField(*request, "id")
              << " with dedicated credential " << stringField(*request, "credential_id") << "\n";
  }
  return kExitOk;
}

int rejectConciergeRequest(const RejectOptions& options) {
  std::string body = boost::json::serialize(boost::json::object{{"reason", options.reason}});
  int exit_code = kExitOk;
  auto request = callApi(options.common, "POST",
                         apiTarget({"concierge", options.request_id, "reject"}), body, exit_code);
  if (!request) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*request);
  } else {
    std::cout << "rejected concierge request " << stringField(*request, "id") << "\n";
  }
  return kExitOk;
}

CLI::Option* addRpmOption(CLI::App& command, int64_t& value) {
  return command
      .add_option("--rpm", value,
                  "Requests per minute this credential may carry, 0 for no limit of its own")
      ->check(CLI::Range(int64_t{0}, kMaxRpmLimit));
}

}  // namespace

void addPoolCommands(CLI::App& app, int& exit_code) {
  CLI::App* pool =
      app.add_subcommand("pool", "Manage the operator's marketplace credentials (operator key)");
  pool->require_subcommand(1);

  auto add_options = std::make_shared<PoolAddOptions>();
  CLI::App* add = pool->add_subcommand(
      "add",
      "Add a credential to a provider's pool, read from standard input or a hidden prompt; a "
      "JSON object there is a credential with several fields");
  add->add_option("PROVIDER", add_options->provider, "Provider id, e.g. openai")->required();
  CLI::Option* shared =
      add->add_flag("--shared", add_options->shared, "Serve every project in marketplace mode");
  CLI::Option* dedicated = add->add_option("--dedicated", add_options->dedicated,
                                           "Serve only this project (id or name)");
  shared->excludes(dedicated);
  add->add_option("--label", add_options->label, "A note shown next to the credential");
  add_options->rpm_option = addRpmOption(*add, add_options->rpm_limit);
  addCommonOptions(*add, add_options->common);
  add->allow_extras();
  add->callback([add, add_options, &exit_code] {
    runCommand(exit_code, [&] { return addPoolCredential(*add_options, add->remaining()); });
  });

  auto list_options = std::make_shared<PoolListOptions>();
  CLI::App* list = pool->add_subcommand("list", "List pool credentials (masked) and their health");
  list->add_option("--provider", list_options->provider, "Only this provider's pool");
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listPools(*list_options); });
  });

  for (auto [verb, help] :
       {std::pair{"disable", "Stop the proxy from using a pool credential"},
        std::pair{"enable", "Let the proxy use a disabled pool credential again"}}) {
    auto options = std::make_shared<IdOptions>();
    CLI::App* command = pool->add_subcommand(verb, help);
    command->add_option("CREDENTIAL_ID", options->id, "Pool credential id (cred_…)")->required();
    addCommonOptions(*command, options->common);
    std::string action = verb;
    command->callback([options, action, &exit_code] {
      runCommand(exit_code, [&] { return setPoolCredentialStatus(*options, action); });
    });
  }
}

void addConciergeCommands(CLI::App& app, int& exit_code) {
  CLI::App* concierge = app.add_subcommand(
      "concierge", "Request concierge providers, and fulfil or reject requests (operator key)");
  concierge->require_subcommand(1);

  auto request_options = std::make_shared<ConciergeRequestOptions>();
  CLI::App* request = concierge->add_subcommand(
      "request", "Ask the operator to provision a concierge provider for a project");
  request->add_option("PROVIDER", request_options->provider, "Provider id, e.g. groq")->required();
  request->add_option("--project", request_options->project, "Project id or name")->required();
  request->add_option("--note", request_options->note, "A message to the operator");
  addCommonOptions(*request, request_options->common);
  request->callback([request_options, &exit_code] {
    runCommand(exit_code, [&] { return fileConciergeRequest(*request_options); });
  });

  auto list_options = std::make_shared<ConciergeListOptions>();
  CLI::App* list = concierge->add_subcommand(
      "list", "List a project's concierge requests, or without --project the operator's queue");
  list->add_option("--project", list_options->project, "Project id or name");
  list->add_option("--status", list_options->status, "Only requests with this status")
      ->check(CLI::IsMember({"open", "fulfilled", "rejected"}));
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listConciergeRequests(*list_options); });
  });

  auto fulfill_options = std::make_shared<FulfillOptions>();
  CLI::App* fulfill = concierge->add_subcommand(
      "fulfill",
      "Fulfil a request with a dedicated credential, read from standard input or a hidden prompt");
  fulfill->add_option("REQUEST_ID", fulfill_options->request_id, "Request id (cnc_…)")->required();
  fulfill->add_option("--label", fulfill_options->label, "A note shown next to the credential");
  fulfill_options->rpm_option = addRpmOption(*fulfill, fulfill_options->rpm_limit);
  addCommonOptions(*fulfill, fulfill_options->common);
  fulfill->allow_extras();
  fulfill->callback([fulfill, fulfill_options, &exit_code] {
    runCommand(exit_code,
               [&] { return fulfillConciergeRequest(*fulfill_options, fulfill->remaining()); });
  });

  auto reject_options = std::make_shared<RejectOptions>();
  CLI::App* reject = concierge->add_subcommand("reject", "Reject a request, with a reason");
  reject->add_option("REQUEST_ID", reject_options->request_id, "Request id (cnc_…)")->required();
  reject->add_option("--reason", reject_options->reason, "Why, shown to the project")->required();
  addCommonOptions(*reject, reject_options->common);
  reject->callback([reject_options, &exit_code] {
    runCommand(exit_code, [&] { return rejectConciergeRequest(*reject_options); });
  });
}

}  // namespace keystore::cli
