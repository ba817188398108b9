#include "server/rotate_command.h"

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "audit/audit_log.h"
#include "server/master_key_rotation.h"
#include "store/sqlite/sqlite_store.h"
#include "vault/master_key.h"
#include "vault/vault.h"

namespace keystore::server {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct RotateConfig {
  std::string data_dir = "./keystore-data";
  std::string master_key_file;
  std::string previous_master_key_file;
  std::string new_master_key_file;
  size_t batch_size = 16;
  size_t limit = 0;
  bool finish = false;
  bool json = false;
};

void printError(const std::string& message) {
  std::fprintf(stderr, "keystore: %s\n", message.c_str());
}

Secret environmentSecret(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? Secret(std::string(value)) : Secret();
}

vault::MasterKeyOptions keyOptions(const RotateConfig& config) {
  vault::MasterKeyOptions options;
  options.env_value = environmentSecret("KEYSTORE_MASTER_KEY");
  options.key_file = config.master_key_file;
  options.data_dir = config.data_dir;
  options.previous_env_value = environmentSecret("KEYSTORE_PREVIOUS_MASTER_KEY");
  options.previous_key_file = config.previous_master_key_file;
  return options;
}

// The keyring this run rotates to: the new key first, then every key that may still wrap a
// data key. For the data directory's own key this also writes the key files.
Result<std::vector<vault::MasterKey>> rotationKeys(const RotateConfig& config, store::Store& store,
                                                   bool& resumed) {
  vault::MasterKeyOptions options = keyOptions(config);
  auto loaded = vault::loadMasterKeyring(options);
  if (!loaded) {
    return std::unexpected(loaded.error());
  }
  // Checked before any file changes, so a run with the wrong key leaves everything as it was.
  auto check_value = store.getSetting(std::string(kCheckValueSetting));
  if (!check_value) {
    return std::unexpected(check_value.error());
  }
  if (check_value->has_value()) {
    vault::Vault known(*loaded, {});
    if (auto done = known.verifyCheckValue(**check_value); !done) {
      return std::unexpected(done.error());
    }
  }

  if (config.new_master_key_file.empty()) {
    return prepareDataDirRotation(store, config.data_dir, resumed);
  }
  auto next = vault::readMasterKeyFile(config.new_master_key_file);
  if (!next) {
    return std::unexpected(next.error());
  }
  std::vector<vault::MasterKey> keys{std::move(*next)};
  for (vault::MasterKey& key : *loaded) {
    if (key.id != keys.front().id) {
      keys.push_back(std::move(key));
    }
  }
  resumed = false;
  return keys;
}

void printReport(const RotateConfig& config, const RotationReport& report,
                 const std::vector<std::string>& old_ids, bool resumed) {
  bool complete = report.remaining == 0;
  if (config.json) {
    boost::json::array previous;
    for (const std::string& id : old_ids) {
      previous.emplace_back(id);
    }
    boost::json::object out{{"master_key_id", report.target_key_id},
                            {"previous_master_key_ids", std::move(previous)},
                            {"moved", report.moved},
                            {"remaining", report.remaining},
                            {"complete", complete},
                            {"resumed", resumed}};
    std::cout << boost::json::serialize(out) << "\n";
    return;
  }

  std::printf("moved %zu data keys to master key %s\n", report.moved, report.target_key_id.c_str());
  if (!complete) {
    std::printf(
        "%zu data keys are still under the old master key; run the command again to "
        "continue\n",
        report.remaining);
    return;
  }
  std::printf("every data key and the check value now use %s\n", report.target_key_id.c_str());
  if (config.new_master_key_file.empty()) {
    std::printf(
        "the old key stays in %s until every instance has restarted or reloaded its "
        "keys; then run 'keystore rotate master-key --finish'\n",
        vault::previousMasterKeyPath(config.data_dir).c_str());
  } else {
    std::printf(
        "start every instance with the new key alone (KEYSTORE_MASTER_KEY or "
        "--master-key-file) and drop the previous key from its configuration\n");
  }
}

int finish(const RotateConfig& config, store::Store& store) {
  auto removed = finishDataDirRotation(store, config.data_dir);
  if (!removed) {
    printError(removed.error().message);
    return kExitFailure;
  }
  if (config.json) {
    std::cout << boost::json::serialize(boost::json::object{{"removed_master_key_id", *removed}})
              << "\n";
  } else if (removed->empty()) {
    std::printf("no previous master key to remove\n");
  } else {
    std::printf("removed the previous master key %s\n", removed->c_str());
  }
  return kExitOk;
}


// The master key belongs to the whole installation, so every organization's trail records the
// rotation: key ids and counts only.
Result<void> recordRotation(store::Store& store, const RotationReport& report,
                            const std::vector<std::string>& old_ids) {
  Result<std::vector<store::Organization>> organizations = store.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  boost::json::array previous;
  for (const std::string& id : old_ids) {
    previous.emplace_back(id);
  }
  return store.inTransaction([&]() -> Result<void> {
    for (const store::Organization& organization : *organizations) {
      store::AuditEntry entry;
      entry.organization_id = organization.id;
      entry.action = "master_key.rotate";
      entry.target = report.target_key_id;
      entry.details = boost::json::serialize(boost::json::object{
          {"previous_master_key_ids", previous},
          {"data_keys_moved", static_cast<int64_t>(report.moved)}});
      if (auto appended = audit::appendOperatorEntry(store, entry); !appended) {
        return std::unexpected(appended.error());
      }
    }
    return {};
  });
}

int rotateMasterKey(const RotateConfig& config) {
  bool external_key = !config.master_key_file.empty() || std::getenv("KEYSTORE_MASTER_KEY");
  if (external_key && config.new_master_key_file.empty() && !config.finish) {
    printError(
        "the master key comes from KEYSTORE_MASTER_KEY or --master-key-file, so this "
        "command cannot replace it; generate a key file and pass it as "
        "--new-master-key-file");
    return kExitUsage;
  }
  std::string database = config.data_dir + "/keystore.db";
  if (!std::filesystem::exists(database)) {
    printError("no database at " + database + "; pass the server's --data-dir");
    return kExitUsage;
  }
  auto opened = store::openSqliteStore(database);
  if (!opened) {
    printError("cannot open the database: " + opened.error().message);
    return kExitFailure;
  }
  std::unique_ptr<store::Store> store = std::move(*opened);
  if (config.finish) {
    return finish(config, *store);
  }

  bool resumed = false;
  auto keys = rotationKeys(config, *store, resumed);
  if (!keys) {
    printError(keys.error().message);
    return kExitFailure;
  }
  std::vector<std::string> old_ids;
  for (size_t i = 1; i < keys->size(); ++i) {
    old_ids.push_back((*keys)[i].id);
  }
  vault::Vault keyring(std::move(*keys), {});
  if (!config.json) {
    std::printf("%s the rotation to master key %s\n", resumed ? "resuming" : "starting",
                keyring.masterKeyId().c_str());
  }

  RotationOptions options{config.batch_size, config.limit};
  auto progress = [&config](size_t moved, size_t remaining) {
    if (!config.json) {
      std::printf("re-wrapped %zu data keys, %zu left\n", moved, remaining);
      std::fflush(stdout);
    }
  };
  auto report = rewrapAllDataKeys(*store, keyring, options, progress);
  if (!report) {
    printError(report.error().message + "; run the command again to resume");
    return kExitFailure;
  }
  if (auto recorded = recordRotation(*store, *report, old_ids); !recorded) {
    printError("the rotation finished but could not be recorded in the audit trail: " +
               recorded.error().message);
    return kExitFailure;
  }
  printReport(config, *report, old_ids, resumed);
  return kExitOk;
}

}  // namespace

void addRotateCommand(CLI::App& app, int& exit_code) {
  CLI::App* rotate = app.add_subcommand("rotate", "Rotate installation-wide keys");
  rotate->require_subcommand(1);
  auto config = std::make_shared<RotateConfig>();
  CLI::App* master_key = rotate->add_subcommand(
      "master-key", "Re-wrap every data key under a new master key while servers keep running");
  master_key->add_option("--data-dir", config->data_dir, "The server's data directory")
      ->envname("KEYSTORE_DATA_DIR")
      ->capture_default_str();
  master_key
      ->add_option("--master-key-file", config->master_key_file,
                   "The current master key file, when the server uses one")
      ->envname("KEYSTORE_MASTER_KEY_FILE");
  master_key
      ->add_option("--previous-master-key-file", config->previous_master_key_file,
                   "A key that may still wrap data keys (resuming a rotation)")
      ->envname("KEYSTORE_PREVIOUS_MASTER_KEY_FILE");
  master_key->add_option("--new-master-key-file", config->new_master_key_file,
                         "Move the data keys to this key instead of generating one");
  master_key->add_option("--batch-size", config->batch_size, "Data keys per transaction")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  master_key->add_option("--limit", config->limit,
                         "Stop after this many data keys; run again to continue");
  master_key->add_flag("--finish", config->finish,
                       "Remove master.key.previous once no data key uses it");
  master_key->add_flag("--json", config->json, "Print the result as JSON");
  master_key->callback([config, &exit_code] { exit_code = rotateMasterKey(*config); });
}

}  // namespace keystore::server
