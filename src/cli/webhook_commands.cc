// `keystore webhook …`: webhook endpoints, their signing secrets and delivery logs.
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/table.h"

namespace keystore::cli {

namespace {

struct WebhookProjectOptions {
  CommonOptions common;
  std::string project;
};

struct WebhookCreateOptions {
  CommonOptions common;
  std::string project;
  std::string url;
  std::string description;
  std::vector<std::string> events;
  bool disabled = false;
};

struct WebhookOptions {
  CommonOptions common;
  std::string webhook;
};

struct WebhookUpdateOptions {
  WebhookOptions target;
  std::string url;
  std::string description;
  std::vector<std::string> events;
  bool all_events = false;
  std::string status;
  CLI::Option* description_option = nullptr;
};

struct DeliveryListOptions {
  WebhookOptions target;
  int limit = 20;
  std::string before;
};

std::string eventsText(const boost::json::value& webhook) {
  const boost::json::value* events = webhook.as_object().if_contains("events");
  if (events == nullptr || !events->is_array() || events->as_array().empty()) {
    return "all";
  }
  std::string text;
  for (const boost::json::value& event : events->as_array()) {
    if (event.is_string()) {
      text += (text.empty() ? "" : ",") + std::string(event.as_string());
    }
  }
  return text;
}

void printWebhook(const boost::json::value& webhook) {
  std::cout << formatTable(
      {"ID", "URL", "EVENTS", "STATUS", "DESCRIPTION", "CREATED"},
      {{stringField(webhook, "id"), stringField(webhook, "url"), eventsText(webhook),
        stringField(webhook, "status"), stringField(webhook, "description", ""),
        shortTime(webhook, "created_at")}});
}

// Prints the endpoint and its new secret, which the server shows only in this response.
int printWithSecret(const CommonOptions& common, const boost::json::value& webhook,
                    std::string_view verb) {
  if (common.json) {
    printJson(webhook);
    return kExitOk;
  }
  std::cout << verb << " webhook " << stringField(webhook, "id") << "\n";
  std::cout << "signing secret (shown only now; store it in the receiver): "
            << stringField(webhook, "secret") << "\n";
  return kExitOk;
}

int createWebhook(const WebhookCreateOptions& options) {
  boost::json::array events;
  for (const std::string& event : options.events) {
    events.emplace_back(event);
  }
  boost::json::object fields{{"url", options.url},
                             {"description", options.description},
                             {"events", std::move(events)},
                             {"status", options.disabled ? "disabled" : "active"}};
  int exit_code = kExitOk;
  auto webhook =
      callApi(options.common, "POST", apiTarget({"projects", options.project, "webhooks"}),
              boost::json::serialize(fields), exit_code);
  if (!webhook) {
    return exit_code;
  }
  return printWithSecret(options.common, *webhook, "created");
}

int listWebhooks(const WebhookProjectOptions& options) {
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET",
                          apiTarget({"projects", options.project, "webhooks"}), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& webhooks = dataArray(*response);
  if (options.common.json) {
    printJson(webhooks);
    return kExitOk;
  }
  if (webhooks.empty()) {
    std::cout << "no webhooks in project " << options.project
              << "; create one with: keystore webhook create --project " << options.project
              << " --url URL\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& webhook : webhooks) {
    rows.push_back({stringField(webhook, "id"), stringField(webhook, "url"), eventsText(webhook),
                    stringField(webhook, "status"), stringField(webhook, "description", ""),
                    shortTime(webhook, "created_at")});
  }
  std::cout << formatTable({"ID", "URL", "EVENTS", "STATUS", "DESCRIPTION", "CREATED"}, rows);
  return kExitOk;
}

int getWebhook(const WebhookOptions& options) {
  int exit_code = kExitOk;
  auto webhook =
      callApi(options.common, "GET", apiTarget({"webhooks", options.webhook}), {}, exit_code);
  if (!webhook) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*webhook);
  } else {
    printWebhook(*webhook);
  }
  return kExitOk;
}

int updateWebhook(const WebhookUpdateOptions& options) {
  boost::json::object fields;
  if (!options.url.empty()) {
    fields["url"] = options.url;
  }
  if (options.description_option->count() > 0) {
    fields["description"] = options.description;
  }
  if (!options.status.empty()) {
    fields["status"] = options.status;
  }
  if (options.all_events || !options.events.empty()) {
    boost::json::array events;
    for (const std::string& event : options.events) {
      events.emplace_back(event);
    }
    fields["events"] = std::move(events);
  }
  if (fields.empty()) {
    printError("nothing to change; give --url, --description, --event, --all-events or --status");
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto webhook =
      callApi(options.target.common, "PATCH", apiTarget({"webhooks", options.target.webhook}),
              boost::json::serialize(fields), exit_code);
  if (!webhook) {
    return exit_code;
  }
  if (options.target.common.json) {
    printJson(*webhook);
  } else {
    printWebhook(*webhook);
  }
  return kExitOk;
}

int deleteWebhook(const WebhookOptions& options) {
  int exit_code = kExitOk;
  auto deleted =
      callApi(options.common, "DELETE", apiTarget({"webhooks", options.webhook}), {}, exit_code);
  if (!deleted) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*deleted);
  } else {
    std::cout << "deleted webhook " << stringField(*deleted, "id") << " and its delivery log\n";
  }
  return kExitOk;
}

int rotateSecret(const WebhookOptions& options) {
  int exit_code = kExitOk;
  auto webhook =
      callApi(options.common, "POST", apiTarget({"webhooks", options.webhook, "rotate-secret"}),
              "{}", exit_code);
  if (!webhook) {
    return exit_code;
  }
  return printWithSecret(options.common, *webhook, "rotated the signing secret of");
}

int listDeliveries(const DeliveryListOptions& options) {
  std::vector<std::pair<std::string, std::string>> query = {
      {"limit", std::to_string(options.limit)}};
  if (!options.before.empty()) {
    query.emplace_back("before", options.before);
  }
  int exit_code = kExitOk;
  auto response =
      callApi(options.target.common, "GET",
              apiTarget({"webhooks", options.target.webhook, "deliveries"}, query), {}, exit_code);
  if (!response) {
    return exit_code;
  }
  if (options.target.common.json) {
    printJson(*response);
    return kExitOk;
  }
  const boost::json::array& deliveries = dataArray(*response);
  if (deliveries.empty()) {
    std::cout << "no deliveries for webhook " << options.target.webhook << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& delivery : deliveries) {
    const boost::json::object& fields = delivery.as_object();
    const boost::json::value* code = fields.if_contains("last_status_code");
    const boost::json::value* attempts = fields.if_contains("attempts");
    rows.push_back(
        {stringField(delivery, "id"), stringField(delivery, "event_type"),
         stringField(delivery, "status"),
         attempts != nullptr && attempts->is_int64() ? std::to_string(attempts->as_int64()) : "-",
         code != nullptr && code->is_int64() ? std::to_string(code->as_int64()) : "-",
         stringField(delivery, "last_error", ""), shortTime(delivery, "created_at")});
  }
  std::cout << formatTable(
      {"ID", "EVENT", "STATUS", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "CREATED"}, rows);
  std::string next = stringField(*response, "next_cursor", "");
  if (!next.empty()) {
    std::cout << "more: keystore webhook deliveries " << options.target.webhook << " --before "
              << next << "\n";
  }
  return kExitOk;
}

int testWebhook(const WebhookOptions& options) {
  int exit_code = kExitOk;
  auto queued = callApi(options.common, "POST", apiTarget({"webhooks", options.webhook, "test"}),
                        "{}", exit_code);
  if (!queued) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*queued);
  } else {
    std::cout << "queued test delivery " << stringField(*queued, "delivery_id")
              << "; follow it with: keystore webhook deliveries " << options.webhook << "\n";
  }
  return kExitOk;
}

void addWebhookTarget(CLI::App& command, WebhookOptions& options) {
  command.add_option("WEBHOOK", options.webhook, "Webhook id (whk_…)")->required();
  addCommonOptions(command, options.common);
}

}  // namespace

void addWebhookCommands(CLI::App& app, int& exit_code) {
  CLI::App* webhook =
      app.add_subcommand("webhook", "Manage webhook endpoints, their secrets and deliveries");
  webhook->require_subcommand(1);

  auto list_options = std::make_shared<WebhookProjectOptions>();
  CLI::App* list = webhook->add_subcommand("list", "List a project's webhook endpoints");
  list->add_option("--project", list_options->project, "Project id or name")->required();
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listWebhooks(*list_options); });
  });

  auto create_options = std::make_shared<WebhookCreateOptions>();
  CLI::App* create = webhook->add_subcommand(
      "create", "Create a webhook endpoint; its signing secret is printed only once");
  create->add_option("--project", create_options->project, "Project id or name")->required();
  create->add_option("--url", create_options->url, "http or https URL that receives events")
      ->required();
  create->add_option("--description", create_options->description, "Free text, up to 256 chars");
  create->add_option("--event", create_options->events,
                     "Event type to deliver, repeatable (default: every type)");
  create->add_flag("--disabled", create_options->disabled, "Create the endpoint disabled");
  addCommonOptions(*create, create_options->common);
  create->callback([create_options, &exit_code] {
    runCommand(exit_code, [&] { return createWebhook(*create_options); });
  });

  auto get_options = std::make_shared<WebhookOptions>();
  CLI::App* get = webhook->add_subcommand("get", "Show a webhook endpoint (never its secret)");
  addWebhookTarget(*get, *get_options);
  get->callback([get_options, &exit_code] {
    runCommand(exit_code, [&] { return getWebhook(*get_options); });
  });

  auto update_options = std::make_shared<WebhookUpdateOptions>();
  CLI::App* update = webhook->add_subcommand("update", "Change a webhook endpoint");
  addWebhookTarget(*update, update_options->target);
  update->add_option("--url", update_options->url, "New http or https URL");
  update_options->description_option =
      update->add_option("--description", update_options->description, "New description");
  update->add_option("--event", update_options->events,
                     "Event type to deliver, repeatable; replaces the current list");
  update->add_flag("--all-events", update_options->all_events, "Deliver every event type");
  update->add_option("--status", update_options->status, "active or disabled")
      ->check(CLI::IsMember({"active", "disabled"}));
  update->callback([update_options, &exit_code] {
    runCommand(exit_code, [&] { return updateWebhook(*update_options); });
  });

  auto delete_options = std::make_shared<WebhookOptions>();
  CLI::App* remove =
      webhook->add_subcommand("delete", "Delete a webhook endpoint and its delivery log");
  addWebhookTarget(*remove, *delete_options);
  remove->callback([delete_options, &exit_code] {
    runCommand(exit_code, [&] { return deleteWebhook(*delete_options); });
  });

  auto rotate_options = std::make_shared<WebhookOptions>();
  CLI::App* rotate = webhook->add_subcommand(
      "rotate-secret", "Replace a webhook's signing secret; the new one is printed only once");
  addWebhookTarget(*rotate, *rotate_options);
  rotate->callback([rotate_options, &exit_code] {
    runCommand(exit_code, [&] { return rotateSecret(*rotate_options); });
  });

  auto deliveries_options = std::make_shared<DeliveryListOptions>();
  CLI::App* deliveries =
      webhook->add_subcommand("deliveries", "List a webhook's deliveries, newest first");
  addWebhookTarget(*deliveries, deliveries_options->target);
  deliveries->add_option("--limit", deliveries_options->limit, "Deliveries per page (1-100)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  deliveries->add_option("--before", deliveries_options->before,
                         "Show deliveries older than this delivery id (whd_…)");
  deliveries->callback([deliveries_options, &exit_code] {
    runCommand(exit_code, [&] { return listDeliveries(*deliveries_options); });
  });

  auto test_options = std::make_shared<WebhookOptions>();
  CLI::App* test = webhook->add_subcommand("test", "Send a webhook.test event to one endpoint");
  addWebhookTarget(*test, *test_options);
  test->callback([test_options, &exit_code] {
    runCommand(exit_code, [&] { return testWebhook(*test_options); });
  });
}

}  // namespace keystore::cli
