// `keystore audit …`: the audit trail, listed through the management API and verified either
// through it or, for an operator on the server's machine, straight from the database file.
#include <boost/json/object.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "audit/audit_log.h"
#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/table.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::cli {

namespace {

struct AuditListOptions {
  CommonOptions common;
  std::string project;
  std::string since;
  std::string until;
  std::string action;
  std::string limit;
  std::string cursor;
};

struct AuditVerifyOptions {
  CommonOptions common;
  bool offline = false;  // --data-dir was given: read the database file directly
};

int listAudit(const AuditListOptions& options) {
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [name, value] :
       {std::pair{"project", &options.project}, std::pair{"since", &options.since},
        std::pair{"until", &options.until}, std::pair{"action", &options.action},
        std::pair{"limit", &options.limit}, std::pair{"cursor", &options.cursor}}) {
    if (!value->empty()) {
      query.emplace_back(name, *value);
    }
  }

  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", apiTarget({"audit"}, query), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*response);
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& entry : dataArray(*response)) {
    const boost::json::value* seq = entry.as_object().if_contains("seq");
    rows.push_back({seq != nullptr && seq->is_int64() ? std::to_string(seq->as_int64()) : "-",
                    shortTime(entry, "time"), stringField(entry, "action"),
                    stringField(entry, "actor"), stringField(entry, "target"),
                    stringField(entry, "project_id"), stringField(entry, "request_id")});
  }
  std::cout << formatTable({"SEQ", "TIME", "ACTION", "ACTOR", "TARGET", "PROJECT", "REQUEST"},
                           rows);
  std::string next = stringField(*response, "next_cursor", "");
  if (!next.empty()) {
    std::cerr << "more entries: repeat with --cursor " << next << "\n";
  }
  return kExitOk;
}

// Prints a verification result and returns 0 when the chain is intact, 1 when it is not.
int reportVerification(const boost::json::object& report, bool json) {
  const boost::json::value* ok_member = report.if_contains("ok");
  bool ok = ok_member != nullptr && ok_member->is_bool() && ok_member->as_bool();
  if (json) {
    printJson(report);
    return ok ? kExitOk : kExitFailure;
  }

  const boost::json::value* entries = report.if_contains("entries");
  std::string count =
      entries != nullptr && entries->is_int64() ? std::to_string(entries->as_int64()) + " " : "";
  if (ok) {
    std::cout << "audit trail intact: " << count << "entries checked\n";
    return kExitOk;
  }
  const boost::json::value* seq = report.if_contains("first_bad_seq");
  if (seq != nullptr && seq->is_int64()) {
    std::cout << "audit trail broken at seq " << seq->as_int64() << ": "
              << stringField(report, "problem") << "\n";
  } else {
    std::cout << "audit trail broken; an operator key or `keystore audit verify --data-dir` "
                 "shows where\n";
  }
  return kExitFailure;
}

int verifyAuditFile(const AuditVerifyOptions& options) {
  std::string path = (std::filesystem::path(options.common.data_dir) / "keystore.db").string();
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    printError("no database at " + path + "; pass --data-dir with the server's data directory");
    return kExitFailure;
  }
  Result<std::unique_ptr<store::Store>> opened = store::openSqliteStore(path);
  if (!opened) {
    printError(opened.error().message);
    return kExitFailure;
  }
  Result<audit::ChainReport> report = audit::verifyStoredChain(**opened);
  if (!report) {
    printError("cannot read the audit trail from " + path + ": " + report.error().message);
    return kExitFailure;
  }

  boost::json::object rendered{{"ok", report->ok}, {"entries", report->entries}};
  if (!report->ok) {
    rendered["first_bad_seq"] = report->first_bad_seq;
    rendered["problem"] = report->problem;
  }
  return reportVerification(rendered, options.common.json);
}

int verifyAudit(const AuditVerifyOptions& options) {
  if (options.offline) {
    return verifyAuditFile(options);
  }
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", apiTarget({"audit", "verify"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  if (!response->is_object()) {
    printError("the audit verification response is not a JSON object");
    return kExitFailure;
  }
  return reportVerification(response->as_object(), options.common.json);
}

}  // namespace

void addAuditCommands(CLI::App& app, int& exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "List and verify the hash-chained audit trail");
  audit->require_subcommand(1);

  auto list_options = std::make_shared<AuditListOptions>();
  CLI::App* list =
      audit->add_subcommand("list", "List the organization's audit entries, newest first");
  list->add_option("--project", list_options->project, "Only entries of this project (id or name)");
  list->add_option("--since", list_options->since,
                   "Only entries at or after this time: RFC 3339, or a duration ago such as 24h");
  list->add_option("--until", list_options->until, "Only entries before this time");
  list->add_option("--action", list_options->action, "Only this action, e.g. token.revoke");
  list->add_option("--limit", list_options->limit, "Entries per page, 1 to 1000 (default 100)");
  list->add_option("--cursor", list_options->cursor,
                   "Continue after a previous page (its next_cursor)");
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listAudit(*list_options); });
  });

  auto verify_options = std::make_shared<AuditVerifyOptions>();
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Check the audit hash chain; exit status 1 when an entry was edited, removed or "
      "reordered. With --data-dir (or KEYSTORE_DATA_DIR) the database file is read directly, "
      "without the server");
  addCommonOptions(*verify, verify_options->common);
  verify->callback([verify, verify_options, &exit_code] {
    verify_options->offline = verify->get_option("--data-dir")->count() > 0;
    runCommand(exit_code, [&] { return verifyAudit(*verify_options); });
  });
}

}  // namespace keystore::cli
