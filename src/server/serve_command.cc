#include "server/serve_command.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "admin/admin_api.h"
#include "catalog/catalog.h"
#include "common/clock.h"
#include "common/private_file.h"
#include "common/random.h"
#include "common/secure_zero.h"
#include "limits/budget_tracker.h"
#include "limits/utc_calendar.h"
#include "marketplace/credential_health.h"
#include "metering/ledger_writer.h"
#include "metering/month_spend.h"
#include "proxy/proxy_server.h"
#include "proxy/snapshot.h"
#include "redis/redis_connection.h"
#include "server/admin_listener.h"
#include "server/master_key_rotation.h"
#include "store/sqlite/sqlite_store.h"
#include "telemetry/proxy_metrics.h"
#include "tokens/agent_token.h"
#include "vault/master_key.h"
#include "vault/vault.h"
#include "webhooks/dispatcher.h"
#include "webhooks/publisher.h"

namespace keystore::server {

namespace {

void fatal(std::string_view message) {
  std::fprintf(stderr, "keystore: %.*s\n", static_cast<int>(message.size()), message.data());
}

void setUpLogging(const std::string& level) {
  spdlog::init_thread_pool(8192, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("keystore", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::block);
  // Request lines are JSON objects already; other lines get a time and level prefix.
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

// Creates the default organization and the owner's admin API key on first start; the key
// goes to a 0600 file and is never printed.
Result<void> bootstrapAdminKey(store::Store& store, const std::string& data_dir) {
  auto count = store.countAdminKeys();
  if (!count) {
    return std::unexpected(count.error());
  }
  if (*count > 0) {
    return {};
  }
  auto organizations = store.listOrganizations();
  if (!organizations) {
    return std::unexpected(organizations.error());
  }
  store::Organization organization;
  if (organizations->empty()) {
    organization.id = newId("org");
    organization.name = "default";
    organization.created_at = nowUnixMillis();
    auto created = store.createOrganization(organization);
    if (!created) {
      return std::unexpected(created.error());
    }
  } else {
    organization = organizations->front();
  }

  Secret key = tokens::generateAdminKey();
  std::string path = data_dir + "/admin.key";
  std::string contents(key.reveal());
  contents.push_back('\n');
  auto written = writePrivateFile(path, contents);
  secureZero(contents.data(), contents.size());
  if (!written) {
    return std::unexpected(written.error());
  }
  store::AdminKey record;
  record.id = newId("ksak");
  record.key_hash = tokens::hashToken(key.reveal());
  record.name = "owner";
  record.role = "owner";
  record.organization_id = organization.id;
  record.is_operator = true;  // the installing user runs the marketplace
  record.created_at = nowUnixMillis();
  auto stored = store.createAdminKey(record);
  if (!stored) {
    return std::unexpected(stored.error());
  }
  std::printf("created the first admin API key in %s (mode 0600)\n", path.c_str());
  return {};
}

// The provider of a marketplace credential in `snapshot`, for labelling circuit changes.
std::string providerOfPoolCredential(const proxy::Snapshot& snapshot,
                                     const std::string& credential_id) {
  auto holds = [&credential_id](const proxy::PoolCredentials& credentials) {
    return std::any_of(credentials.begin(), credentials.end(),
                       [&credential_id](const auto& entry) { return entry->id == credential_id; });
  };
  for (const auto& [provider, credentials] : snapshot.shared_pools) {
    if (holds(credentials)) {
      return provider;
    }
  }
  for (const auto& [project_id, project] : snapshot.projects) {
    for (const auto& [provider, setting] : project.providers) {
      if (holds(setting.dedicated)) {
        return provider;
      }
    }
  }
  return "other";
}

// The projects that a marketplace credential's circuit change concerns: its project when it
// is dedicated, and for a shared credential every project that uses the provider in
// marketplace mode, since any of them may be served by it. Sets `provider` and `scope`.
std::vector<std::string> projectsOfPoolCredential(const proxy::Snapshot& snapshot,
                                                  const std::string& credential_id,
                                                  std::string& provider, std::string& scope) {
  auto holds = [&credential_id](const proxy::PoolCredentials& credentials) {
    return std::any_of(credentials.begin(), credentials.end(),
                       [&credential_id](const auto& entry) { return entry->id == credential_id; });
  };
  for (const auto& [project_id, project] : snapshot.projects) {
    for (const auto& [provider_id, setting] : project.providers) {
      if (holds(setting.dedicated)) {
        provider = provider_id;
        scope = "dedicated";
        return {project_id};
      }
    }
  }
  std::vector<std::string> projects;
  for (const auto& [provider_id, credentials] : snapshot.shared_pools) {
    if (!holds(credentials)) {
      continue;
    }
    provider = provider_id;
    scope = "shared";
    for (const auto& [project_id, project] : snapshot.projects) {
      auto setting = project.providers.find(provider_id);
      if (setting != project.providers.end() && setting->second.mode == "marketplace") {
        projects.push_back(project_id);
      }
    }
  }
  return projects;
}

// The webhook event for a ProxyEvent. rate_limited events are sampled by the caller.
webhooks::Event webhookEventOf(const proxy::ProxyEvent& proxy_event) {
  webhooks::Event event;
  event.type = proxy_event.type;
  event.project_id = proxy_event.project_id;
  event.data["agent_id"] = proxy_event.agent_id;
  event.data["provider"] = proxy_event.provider;
  event.data["request_id"] = proxy_event.request_id;
  if (!proxy_event.scope.empty()) {
    event.data["scope"] = proxy_event.scope;
  }
  if (!proxy_event.limit_type.empty()) {
    event.data["limit_type"] = proxy_event.limit_type;
  }
  return event;
}

// Brings the month's spend up to date from the ledger (the rows appended since the last call,
// or the whole month after start-up and when the UTC month changes) and seeds the budgets.
Result<void> seedBudgetSpend(metering::MonthSpend& month_spend, limits::BudgetTracker& budgets) {
  int64_t now = nowUnixMillis();
  auto refreshed = month_spend.refresh(limits::utcMonthStart(now), limits::utcNextMonthStart(now));
  if (!refreshed) {
    return std::unexpected(refreshed.error());
  }
  budgets.seedSpend(now, month_spend.totals().by_agent, month_spend.totals().by_project);
  return {};
}

Result<catalog::Catalog> loadCatalog(const ServeConfig& config) {
  Result<catalog::Catalog> catalog = config.catalog_file.empty()
                                         ? catalog::Catalog::builtIn()
                                         : catalog::Catalog::load(config.catalog_file);
  if (!catalog) {
    return catalog;
  }
  catalog::UpstreamPolicy policy{config.allow_private_upstreams};
  for (const auto& entry : config.upstreams) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(
          ErrorCode::kInvalidRequest,
          "--upstream '" + entry + "' must be PROVIDER=URL, e.g. openai=https://api.openai.com");
    }
    auto overridden = catalog->overrideBaseUrl(entry.substr(0, eq), entry.substr(eq + 1), policy);
    if (!overridden) {
      return std::unexpected(overridden.error());
    }
  }
  return catalog;
}

Result<void> checkMasterKey(store::Store& store, const vault::Vault& vault) {
  auto stored = store.getSetting(std::string(kCheckValueSetting));
  if (!stored) {
    return std::unexpected(stored.error());
  }
  if (!stored->has_value()) {
    return store.putSetting(std::string(kCheckValueSetting), vault.makeCheckValue());
  }
  return vault.verifyCheckValue(**stored);
}

std::atomic<int> g_signal{0};

void onSignal(int signal) {
  g_signal.store(signal);
}

}  // namespace

namespace {

// Reads a TOML config file into `config`. A key sets its option only when neither the
// command line nor the environment did, so flags win over the environment, which wins over
// the file. Keys are option names with '-' or '_'; unknown keys are errors, so a typo
// cannot silently leave a setting at its default.
Result<void> applyConfigFile(const std::string& path, CLI::App& serve, ServeConfig& config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    return fail(ErrorCode::kInvalidRequest,
                "config file " + path + " is not valid TOML: " + std::string(error.description()));
  }
  using Setter = std::function<bool(const toml::node&)>;
  auto text = [](std::string& field) {
    return Setter([&field](const toml::node& node) {
      if (auto value = node.value<std::string>()) {
        field = *value;
        return true;
      }
      return false;
    });
  };
  auto integer = [](auto& field) {
    return Setter([&field](const toml::node& node) {
      if (auto value = node.value<int64_t>(); value && *value >= 0) {
        field = static_cast<std::remove_reference_t<decltype(field)>>(*value);
        return true;
      }
      return false;
    });
  };
  const std::vector<std::pair<std::string, Setter>> setters = {
      {"data-dir", text(config.data_dir)},
      {"listen", text(config.listen)},
      {"admin-listen", text(config.admin_listen)},
      {"master-key-file", text(config.master_key_file)},
      {"previous-master-key-file", text(config.previous_master_key_file)},
      {"upstream-ca-file", text(config.upstream_ca_file)},
      {"catalog-file", text(config.catalog_file)},
      {"log-level", text(config.log_level)},
      {"ledger-sync", text(config.ledger_sync)},
      {"ledger-flush-ms", integer(config.ledger_flush_ms)},
      {"max-request-bytes", integer(config.max_request_bytes)},
      {"threads", integer(config.threads)},
      {"circuit-failures", integer(config.circuit_failures)},
      {"circuit-cooldown", text(config.circuit_cooldown)},
      {"upstream-timeout", text(config.upstream_timeout)},
      {"stream-idle-timeout", text(config.stream_idle_timeout)},
      {"client-header-timeout", text(config.client_header_timeout)},
      {"abort-drain-timeout", text(config.abort_drain_timeout)},
      {"redis", text(config.redis_url)},
      {"session-ttl", text(config.session_ttl)},
      {"session-idle-timeout", text(config.session_idle_timeout)},
      {"webhook-retry-base", text(config.webhook_retry_base)},
      {"webhook-retry-window", text(config.webhook_retry_window)},
      {"allow-private-webhooks",
       [&config](const toml::node& node) {
         if (auto value = node.value<bool>()) {
           config.allow_private_webhooks = *value;
           return true;
         }
         return false;
       }},
      {"allow-private-upstreams",
       [&config](const toml::node& node) {
         if (auto value = node.value<bool>()) {
           config.allow_private_upstreams = *value;
           return true;
         }
         return false;
       }},
      {"upstream",
       [&config](const toml::node& node) {
         const toml::array* entries = node.as_array();
         if (entries == nullptr) {
           return false;
         }
         config.upstreams.clear();
         for (const auto& entry : *entries) {
           auto value = entry.value<std::string>();
           if (!value) {
             return false;
           }
           config.upstreams.push_back(*value);
         }
         return true;
       }},
  };
  for (const auto& [raw_key, node] : table) {
    std::string key(raw_key.str());
    std::replace(key.begin(), key.end(), '_', '-');
    auto setter = std::find_if(setters.begin(), setters.end(),
                               [&key](const auto& entry) { return entry.first == key; });
    if (setter == setters.end()) {
      return fail(ErrorCode::kInvalidRequest,
                  "config file " + path + " has the unknown key '" + key + "'");
    }
    CLI::Option* option = serve.get_option_no_throw("--" + key);
    if (option != nullptr && option->count() > 0) {
      continue;  // set on the command line or in the environment
    }
    if (!setter->second(node)) {
      return fail(ErrorCode::kInvalidRequest,
                  "config file " + path + ": key '" + key + "' has a value of the wrong type");
    }
  }
  return {};
}

}  // namespace

int runServer(const ServeConfig& config) {
  // Installed first, so a signal that arrives while starting still ends in a clean stop.
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  std::signal(SIGPIPE, SIG_IGN);
  setUpLogging(config.log_level);
  auto directory = ensurePrivateDirectory(config.data_dir);
  if (!directory) {
    fatal(directory.error().message);
    return 1;
  }

  vault::MasterKeyOptions key_options;
  if (const char* env = std::getenv("KEYSTORE_MASTER_KEY"); env != nullptr && *env != '\0') {
    key_options.env_value = Secret(std::string(env));
  }
  key_options.key_file = config.master_key_file;
  key_options.data_dir = config.data_dir;
  if (const char* env = std::getenv("KEYSTORE_PREVIOUS_MASTER_KEY"); env != nullptr) {
    key_options.previous_env_value = Secret(std::string(env));
  }
  key_options.previous_key_file = config.previous_master_key_file;
  auto master_keys = vault::loadMasterKeyring(key_options);
  if (!master_keys) {
    fatal("cannot load the master key: " + master_keys.error().message);
    return 1;
  }
  for (size_t i = 0; i < master_keys->size(); ++i) {
    const vault::MasterKey& key = (*master_keys)[i];
    std::printf("%s %s from %s\n", i == 0 ? "master key" : "previous master key", key.id.c_str(),
                key.source.c_str());
  }
  // A rotation run while this server is up writes a new key file. The vault reloads the key
  // files when it meets a data key wrapped by an unknown master key.
  vault::Vault vault(std::move(*master_keys),
                     [key_options] { return vault::loadMasterKeyring(key_options); });

  auto opened = store::openSqliteStore(config.data_dir + "/keystore.db");
  if (!opened) {
    fatal("cannot open the database: " + opened.error().message);
    return 1;
  }
  std::unique_ptr<store::Store> store = std::move(*opened);
  if (auto checked = checkMasterKey(*store, vault); !checked) {
    fatal(checked.error().message);
    return 1;
  }
  if (auto bootstrapped = bootstrapAdminKey(*store, config.data_dir); !bootstrapped) {
    fatal("cannot create the first admin API key: " + bootstrapped.error().message);
    return 1;
  }

  auto catalog = loadCatalog(config);
  if (!catalog) {
    fatal(catalog.error().message);
    return 1;
  }

  // The proxy enforces deadlines with a sweep every 100 ms, so at 500 ms or more a timeout fires
  // at most a fifth of its length late.
  auto proxy_timeout = [](const char* flag,
                          const std::string& text) -> std::optional<std::chrono::milliseconds> {
    auto parsed = parseDurationMillis(text);
    if (!parsed || *parsed < 500) {
      fatal(std::string(flag) + " '" + text +
            "' must be a duration of at least 500ms, e.g. 90s or 10m");
      return std::nullopt;
    }
    return std::chrono::milliseconds(*parsed);
  };
  auto upstream_timeout = proxy_timeout("--upstream-timeout", config.upstream_timeout);
  if (!upstream_timeout) {
    return 1;
  }
  auto stream_idle_timeout = proxy_timeout("--stream-idle-timeout", config.stream_idle_timeout);
  if (!stream_idle_timeout) {
    return 1;
  }
  auto client_header_timeout =
      proxy_timeout("--client-header-timeout", config.client_header_timeout);
  if (!client_header_timeout) {
    return 1;
  }

  // Durations elsewhere are positive, but here 0 means something: no drain at all.
  auto abort_drain = parseDurationMillisOrZero(config.abort_drain_timeout);
  if (!abort_drain) {
    fatal("--abort-drain-timeout '" + config.abort_drain_timeout +
          "' must be a duration, e.g. 0s, 30s or 2m");
    return 1;
  }

  auto cooldown = parseDurationMillis(config.circuit_cooldown);
  if (!cooldown || *cooldown < 1000) {
    fatal("--circuit-cooldown '" + config.circuit_cooldown +
          "' must be a duration of at least 1s, e.g. 30s or 2m");
    return 1;
  }
  auto session_ttl = parseDurationMillis(config.session_ttl);
  auto session_idle = parseDurationMillis(config.session_idle_timeout);
  if (!session_ttl || *session_ttl < 60'000) {
    fatal("--session-ttl '" + config.session_ttl + "' must be a duration of at least 1m, e.g. 12h");
    return 1;
  }
  if (!session_idle || *session_idle < 60'000) {
    fatal("--session-idle-timeout '" + config.session_idle_timeout +
          "' must be a duration of at least 1m, e.g. 2h");
    return 1;
  }
  auto retry_base = parseDurationMillis(config.webhook_retry_base);
  auto retry_window = parseDurationMillis(config.webhook_retry_window);
  if (!retry_base || *retry_base < 1) {
    fatal("--webhook-retry-base '" + config.webhook_retry_base +
          "' must be a positive duration, e.g. 30s or 200ms");
    return 1;
  }
  if (!retry_window || *retry_window < *retry_base) {
    fatal("--webhook-retry-window '" + config.webhook_retry_window +
          "' must be a duration no shorter than --webhook-retry-base, e.g. 24h");
    return 1;
  }
  webhooks::DispatcherOptions dispatcher_options;
  dispatcher_options.retry = webhooks::RetryPolicy{*retry_base, *retry_window};
  dispatcher_options.sender.allow_private = config.allow_private_webhooks;
  dispatcher_options.sender.extra_ca_file = config.upstream_ca_file;
  std::unique_ptr<webhooks::Dispatcher> dispatcher;
  try {
    dispatcher = std::make_unique<webhooks::Dispatcher>(*store, vault, dispatcher_options);
  } catch (const std::runtime_error& error) {
    fatal(std::string("cannot set up webhook delivery: ") + error.what());
    return 1;
  }
  webhooks::Publisher publisher(*store, [&dispatcher] { dispatcher->wake(); });
  webhooks::RateLimitSampler rate_limit_sampler;

  marketplace::HealthRegistry credential_health(marketplace::CircuitPolicy{
      .failure_threshold = config.circuit_failures, .cooldown_ms = *cooldown});
  std::vector<std::string> provider_ids;
  for (const auto& spec : catalog->providers()) {
    provider_ids.push_back(spec.id);
  }
  telemetry::ProxyMetrics metrics(provider_ids);
  proxy::SnapshotHolder snapshots(*store, vault, &credential_health);
  credential_health.setListener(
      [&metrics, &snapshots, &publisher](const std::string& credential_id,
                                         marketplace::CircuitState state) {
        std::string_view state_name = marketplace::circuitStateName(state);
        std::shared_ptr<const proxy::Snapshot> snapshot = snapshots.current();
        std::string provider = providerOfPoolCredential(*snapshot, credential_id);
        metrics.circuitChanged(provider, state_name);
        spdlog::warn(R"({{"msg":"circuit {}","credential_id":"{}","provider":"{}"}})", state_name,
                     credential_id, provider);

        // Half-open is a probe, not news: endpoints hear when a circuit opens and closes.
        if (state == marketplace::CircuitState::kHalfOpen) {
          return;
        }
        std::string scope;
        for (const std::string& project_id :
             projectsOfPoolCredential(*snapshot, credential_id, provider, scope)) {
          webhooks::Event event;
          event.type = state == marketplace::CircuitState::kOpen ? "provider.circuit_opened"
                                                                 : "provider.circuit_closed";
          event.project_id = project_id;
          event.data = {{"provider", provider}, {"credential_id", credential_id}, {"scope", scope}};
          publisher.publish(std::move(event));
        }
      });
  if (auto refreshed = snapshots.refresh(true); !refreshed) {
    fatal("cannot load the configuration: " + refreshed.error().message);
    return 1;
  }
  metering::LedgerWriter ledger(*store, std::chrono::milliseconds(config.ledger_flush_ms));

  auto proxy_address = parseListenAddress(config.listen, "--listen");
  auto admin_address = parseListenAddress(config.admin_listen, "--admin-listen");
  if (!proxy_address || !admin_address) {
    fatal(!proxy_address ? proxy_address.error().message : admin_address.error().message);
    return 1;
  }

  proxy::ProxyOptions proxy_options;
  proxy_options.listen_host = proxy_address->first;
  proxy_options.listen_port = proxy_address->second;
  proxy_options.threads = config.threads > 0
                              ? config.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  proxy_options.allow_private_upstreams = config.allow_private_upstreams;
  proxy_options.upstream_ca_file = config.upstream_ca_file;
  proxy_options.max_request_bytes = config.max_request_bytes;
  proxy_options.ledger_strict = config.ledger_sync == "strict";
  proxy_options.response_header_timeout = *upstream_timeout;
  proxy_options.idle_timeout = *stream_idle_timeout;
  proxy_options.client_header_timeout = *client_header_timeout;
  proxy_options.abort_drain_timeout = std::chrono::milliseconds(*abort_drain);
  if (!config.redis_url.empty()) {
    auto endpoint = redis::parseRedisUrl(config.redis_url);
    if (!endpoint) {
      fatal("--redis: " + endpoint.error().message);
      return 2;
    }
    std::printf("rate limits and budgets shared through %s\n", endpoint->display().c_str());
    proxy_options.redis = std::move(*endpoint);
  }
  proxy_options.on_event = [&publisher, &rate_limit_sampler](const proxy::ProxyEvent& event) {
    if (event.type == "rate_limited" &&
        !rate_limit_sampler.shouldReport(event.agent_id, event.provider, nowUnixMillis())) {
      return;
    }
    publisher.publish(webhookEventOf(event));
  };
  limits::BudgetTracker budgets;
  metering::MonthSpend month_spend(*store);
  if (auto seeded = seedBudgetSpend(month_spend, budgets); !seeded) {
    fatal("cannot read this month's spend from the ledger: " + seeded.error().message);
    return 1;
  }
  proxy::ProxyServer proxy(proxy_options, *catalog, snapshots, ledger, budgets, metrics);

  admin::AdminApiOptions api_options;
  api_options.on_config_change = [&snapshots] {
    if (auto refreshed = snapshots.refresh(); !refreshed) {
      spdlog::error("configuration refresh failed: {}", refreshed.error().message);
    }
  };
  api_options.credential_health = [&credential_health](const std::string& credential_id) {
    admin::CredentialHealth health;
    if (auto entry = credential_health.find(credential_id)) {
      marketplace::HealthView view = entry->view(nowUnixMillis());
      health.state = std::string(marketplace::circuitStateName(view.state));
      health.consecutive_failures = view.consecutive_failures;
      health.opened_at = view.opened_at_ms;
    }
    return health;
  };
  api_options.session_ttl_ms = *session_ttl;
  api_options.session_idle_ms = *session_idle;
  api_options.publish_event = [&publisher](webhooks::Event event) {
    publisher.publish(std::move(event));
  };
  api_options.on_webhook_queued = [&dispatcher] { dispatcher->wake(); };
  api_options.allow_private_webhooks = config.allow_private_webhooks;
  admin::AdminApi api(*store, vault, *catalog, api_options);
  AdminListenerOptions admin_options;
  admin_options.host = admin_address->first;
  admin_options.port = admin_address->second;
  // Prometheus scrapes /metrics without a key: its labels name providers, modes and
  // outcomes, never a tenant or a secret, and the admin listener is loopback by default.
  AdminListener admin_listener(admin_options, [&api, &metrics](const admin::ApiRequest& request) {
    if (request.target == "/metrics" && (request.method == "GET" || request.method == "HEAD")) {
      admin::ApiResponse response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = metrics.render();
      return response;
    }
    return api.handle(request);
  });

  publisher.start();
  dispatcher->start();
  auto proxy_bound = proxy.start();
  if (!proxy_bound) {
    fatal(proxy_bound.error().message);
    return 1;
  }
  auto admin_bound = admin_listener.start();
  if (!admin_bound) {
    fatal(admin_bound.error().message);
    proxy.stop(std::chrono::milliseconds(0));
    return 1;
  }
  std::printf("proxy listening on %s\n", proxy_bound->c_str());
  std::printf("admin listening on %s\n", admin_bound->c_str());
  std::fflush(stdout);

  // Other instances sharing the database change it too; polling its generation picks up
  // their changes (a revoked token, a new key) within 200 ms.
  // The month's spend is reloaded less often: it takes in what other instances spent, and
  // reads the ledger rows appended since the last reload.
  auto last_poll = std::chrono::steady_clock::now();
  auto last_spend = last_poll;
  while (g_signal.load() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto now = std::chrono::steady_clock::now();
    if (now - last_poll >= std::chrono::milliseconds(200)) {
      last_poll = now;
      if (auto refreshed = snapshots.refresh(); !refreshed) {
        spdlog::error("configuration refresh failed: {}", refreshed.error().message);
      }
    }
    if (now - last_spend >= std::chrono::seconds(10)) {
      last_spend = now;
      if (auto seeded = seedBudgetSpend(month_spend, budgets); !seeded) {
        spdlog::error("reloading this month's spend failed: {}", seeded.error().message);
      }
      size_t pruned = proxy.pruneRateLimits(nowUnixMillis());
      if (pruned > 0) {
        spdlog::debug("dropped the rate-limit state of {} idle agent and provider pairs", pruned);
      }
    }
  }

  spdlog::info(R"({{"msg":"shutting down","signal":{}}})", g_signal.load());
  admin_listener.stop();
  proxy.stop(std::chrono::seconds(10));
  ledger.flush();
  // Events raised by the last requests are stored before the senders stop. Deliveries not
  // sent yet stay pending for the next start or another instance.
  publisher.stop();
  dispatcher->stop();
  spdlog::shutdown();
  return 0;
}

void addServeCommand(CLI::App& app, int& exit_code) {
  auto config = std::make_shared<ServeConfig>();
  CLI::App* serve = app.add_subcommand("serve", "Run the proxy and the admin listener");
  auto config_file = std::make_shared<std::string>();
  serve
      ->add_option("--config", *config_file,
                   "TOML config file; its keys are the option names below (data-dir = \"…\")")
      ->envname("KEYSTORE_CONFIG");
  serve->add_option("--data-dir", config->data_dir, "Directory for the database and key files")
      ->envname("KEYSTORE_DATA_DIR")
      ->capture_default_str();
  serve
      ->add_option("--listen", config->listen,
                   "Proxy listener address HOST:PORT (port 0 picks a free port)")
      ->envname("KEYSTORE_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--admin-listen", config->admin_listen,
                   "Admin listener address HOST:PORT (port 0 picks a free port)")
      ->envname("KEYSTORE_ADMIN_LISTEN")
      ->capture_default_str();
  serve
      ->add_option("--master-key-file", config->master_key_file,
                   "File holding the 256-bit master key (mode 0600); default <data dir>/master.key")
      ->envname("KEYSTORE_MASTER_KEY_FILE");
  serve
      ->add_option("--previous-master-key-file", config->previous_master_key_file,
                   "The master key a rotation replaced, while data keys may still use it")
      ->envname("KEYSTORE_PREVIOUS_MASTER_KEY_FILE");
  serve
      ->add_option("--upstream", config->upstreams,
                   "Override a provider's base URL, PROVIDER=URL (repeatable)")
      ->envname("KEYSTORE_UPSTREAM")
      ->delimiter(',');
  serve
      ->add_flag("--allow-private-upstreams", config->allow_private_upstreams,
                 "Allow upstreams in loopback and private address ranges")
      ->envname("KEYSTORE_ALLOW_PRIVATE_UPSTREAMS");
  serve
      ->add_option("--upstream-ca-file", config->upstream_ca_file,
                   "Extra CA certificates (PEM) trusted for upstream TLS")
      ->envname("KEYSTORE_UPSTREAM_CA_FILE");
  serve
      ->add_option("--catalog-file", config->catalog_file,
                   "Provider catalog (JSON) replacing the built-in one")
      ->envname("KEYSTORE_CATALOG_FILE");
  serve->add_option("--log-level", config->log_level, "trace, debug, info, warn, error or off")
      ->envname("KEYSTORE_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  serve
      ->add_option("--ledger-sync", config->ledger_sync,
                   "batch: rows are committed in groups every --ledger-flush-ms; strict: each "
                   "row is durable before its response completes")
      ->envname("KEYSTORE_LEDGER_SYNC")
      ->check(CLI::IsMember({"batch", "strict"}))
      ->capture_default_str();
  serve
      ->add_option("--ledger-flush-ms", config->ledger_flush_ms,
                   "Group-commit window of the ledger in milliseconds (1-100)")
      ->envname("KEYSTORE_LEDGER_FLUSH_MS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  serve
      ->add_option("--max-request-bytes", config->max_request_bytes,
                   "Largest request body the proxy accepts, in bytes")
      ->envname("KEYSTORE_MAX_REQUEST_BYTES")
      ->capture_default_str();
  serve->add_option("--threads", config->threads, "Proxy I/O threads (0 = one per core)")
      ->envname("KEYSTORE_THREADS")
      ->capture_default_str();
  serve
      ->add_option("--circuit-failures", config->circuit_failures,
                   "Consecutive failures that open a marketplace credential's circuit")
      ->envname("KEYSTORE_CIRCUIT_FAILURES")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  serve
      ->add_option("--circuit-cooldown", config->circuit_cooldown,
                   "How long an open circuit waits before probing the credential again")
      ->envname("KEYSTORE_CIRCUIT_COOLDOWN")
      ->capture_default_str();
  serve
      ->add_option("--upstream-timeout", config->upstream_timeout,
                   "How long to wait for a provider's response header after sending the request "
                   "(e.g. 10m); on expiry the agent gets 504 upstream_timeout")
      ->envname("KEYSTORE_UPSTREAM_TIMEOUT")
      ->capture_default_str();
  serve
      ->add_option("--stream-idle-timeout", config->stream_idle_timeout,
                   "Silence allowed between two reads or writes of a request or response body "
                   "(e.g. 5m); a stream that keeps sending is never cut")
      ->envname("KEYSTORE_STREAM_IDLE_TIMEOUT")
      ->capture_default_str();
  serve
      ->add_option("--client-header-timeout", config->client_header_timeout,
                   "How long an agent connection may take to send a request header, and how long "
                   "an idle keep-alive connection stays open (e.g. 60s)")
      ->envname("KEYSTORE_CLIENT_HEADER_TIMEOUT")
      ->capture_default_str();
  serve
      ->add_option("--abort-drain-timeout", config->abort_drain_timeout,
                   "How long to keep reading a provider's response after the agent hung up, to "
                   "meter the usage reported at its end (e.g. 60s); 0s closes the upstream "
                   "connection at once, so the usage may be an estimate")
      ->envname("KEYSTORE_ABORT_DRAIN_TIMEOUT")
      ->capture_default_str();
  serve
      ->add_flag("--allow-private-webhooks", config->allow_private_webhooks,
                 "Allow webhook URLs on loopback and private addresses")
      ->envname("KEYSTORE_ALLOW_PRIVATE_WEBHOOKS");
  serve
      ->add_option("--webhook-retry-base", config->webhook_retry_base,
                   "Wait before the first retry of a failed webhook delivery; each later retry "
                   "waits twice as long, up to 1h")
      ->envname("KEYSTORE_WEBHOOK_RETRY_BASE")
      ->capture_default_str();
  serve
      ->add_option("--webhook-retry-window", config->webhook_retry_window,
                   "How long after an event its delivery is retried before it is marked failed")
      ->envname("KEYSTORE_WEBHOOK_RETRY_WINDOW")
      ->capture_default_str();
  serve
      ->add_option("--session-ttl", config->session_ttl,
                   "How long a management API sign-in lasts, whatever the activity (e.g. 12h)")
      ->envname("KEYSTORE_SESSION_TTL")
      ->capture_default_str();
  serve
      ->add_option("--session-idle-timeout", config->session_idle_timeout,
                   "How long without a request ends a management API session (e.g. 2h)")
      ->envname("KEYSTORE_SESSION_IDLE_TIMEOUT")
      ->capture_default_str();
  CLI::Option* redis_option =
      serve
          ->add_option("--redis", config->redis_url,
                       "Share rate limits and budgets between instances through this Redis "
                       "(redis://host:port/db); put a URL with a password in KEYSTORE_REDIS or "
                       "the config file, never on the command line")
          ->envname("KEYSTORE_REDIS");
  serve->callback([config, config_file, serve, redis_option, &exit_code] {
    // Another user can read a command line in the process list, so a password there is refused.
    if (redis_option->count() > 0 && std::getenv("KEYSTORE_REDIS") == nullptr) {
      auto endpoint = redis::parseRedisUrl(config->redis_url);
      if (endpoint && !endpoint->password.empty()) {
        fatal(
            "--redis must not carry a password on the command line, where other users can "
            "read it; set KEYSTORE_REDIS or redis in the config file instead");
        exit_code = 2;
        return;
      }
    }
    if (!config_file->empty()) {
      auto applied = applyConfigFile(*config_file, *serve, *config);
      if (!applied) {
        fatal(applied.error().message);
        exit_code = 2;
        return;
      }
    }
    exit_code = runServer(*config);
  });
}

}  // namespace keystore::server
