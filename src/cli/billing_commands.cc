// `keystore price …`, `keystore usage` and `keystore invoice`: the operator's price table, a
// project's usage report and its monthly invoice. Money arrives as integer micro-dollars and
// is printed with exact decimals.
#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/command_support.h"
#include "cli/report_format.h"
#include "cli/table.h"
#include "common/clock.h"

namespace keystore::cli {

namespace {

// The metered units, as the product contract names them, in report column order.
constexpr std::array<std::string_view, 8> kUnits = {
    "input_tokens", "cached_input_tokens", "output_tokens", "requests", "emails",
    "messages",     "read_units",          "write_units",
};

struct PriceSetOptions {
  CommonOptions common;
  std::string provider;
  std::string unit;
  std::string model;
  std::string usd_per_million;
  std::string effective_from;
};

struct PriceListOptions {
  CommonOptions common;
  std::string provider;
  bool current = false;
};

struct UsageOptions {
  CommonOptions common;
  std::string project;
  std::string agent;
  std::string since;
  std::string until;
  std::string group_by = "day";
  std::string format = "table";
};

struct InvoiceOptions {
  CommonOptions common;
  std::string project;
  std::string month;
  std::string format = "table";
};

// The integer member `name` of an object; 0 when absent or not an integer.
int64_t integerMember(const boost::json::value& object, std::string_view name) {
  const boost::json::object* fields = object.if_object();
  const boost::json::value* value = fields != nullptr ? fields->if_contains(name) : nullptr;
  return value != nullptr && value->is_int64() ? value->as_int64() : 0;
}

const boost::json::value& member(const boost::json::value& object, std::string_view name) {
  static const boost::json::value kNull;
  const boost::json::object* fields = object.if_object();
  const boost::json::value* value = fields != nullptr ? fields->if_contains(name) : nullptr;
  return value != nullptr ? *value : kNull;
}

// The invoice's lines, or an empty array when the member is missing.
const boost::json::array& invoiceLines(const boost::json::value& invoice) {
  static const boost::json::array kEmpty;
  const boost::json::value& lines = member(invoice, "lines");
  return lines.is_array() ? lines.as_array() : kEmpty;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string upperCase(std::string_view text) {
  std::string upper(text);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return upper;
}

// A dollar amount as the price table takes it: digits, optionally '.' and 1 to 6 decimals.
// The server parses it again; this only catches typos before a request.
bool isDollarAmount(std::string_view text) {
  size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  std::string_view fraction = point == std::string_view::npos ? "" : text.substr(point + 1);
  auto digits = [](std::string_view part) {
    return std::all_of(part.begin(), part.end(), isDigit);
  };
  bool fraction_ok = point == std::string_view::npos || (!fraction.empty() && fraction.size() <= 6);
  return !whole.empty() && digits(whole) && digits(fraction) && fraction_ok;
}

bool isTimeBound(const std::string& text) {
  return parseRfc3339(text).has_value() || parseDurationMillis(text).has_value();
}

// The output format from --format and --json, or nullopt (after printing why) when they
// disagree.
std::optional<std::string> outputFormat(const CommonOptions& common, const std::string& format) {
  if (!common.json) {
    return format;
  }
  if (format != "table" && format != "json") {
    printError("--json asks for JSON but --format asks for " + format + "; give only one");
    return std::nullopt;
  }
  return "json";
}

// A price's model, or "default" for the price of every model without one of its own.
std::string modelText(const boost::json::value& entry) {
  return stringField(entry, "model", "default");
}

int setPrice(const PriceSetOptions& options) {
  if (!isDollarAmount(options.usd_per_million)) {
    printError(
        "--usd-per-million must be a dollar amount such as 0.15 (digits, optionally a "
        "'.' and up to 6 decimals), not \"" +
        options.usd_per_million + "\"");
    return kExitUsage;
  }
  if (!options.effective_from.empty() && !parseRfc3339(options.effective_from)) {
    printError(
        "--effective-from must be an RFC 3339 time such as 2026-01-01T00:00:00Z or a "
        "date such as 2026-01-01");
    return kExitUsage;
  }

  boost::json::object fields{{"provider", options.provider},
                             {"unit", options.unit},
                             {"usd_per_million", options.usd_per_million}};
  if (!options.model.empty()) {
    fields["model"] = options.model;
  }
  if (!options.effective_from.empty()) {
    fields["effective_from"] = options.effective_from;
  }

  int exit_code = kExitOk;
  auto price = callApi(options.common, "POST", apiTarget({"prices"}),
                       boost::json::serialize(fields), exit_code);
  if (!price) {
    return exit_code;
  }
  if (options.common.json) {
    printJson(*price);
  } else {
    std::cout << "price " << integerMember(*price, "id") << ": " << stringField(*price, "provider")
              << " " << modelText(*price) << " " << stringField(*price, "unit") << " at $"
              << stringField(*price, "usd_per_million") << " per million from "
              << stringField(*price, "effective_from") << "\n";
  }
  return kExitOk;
}

int listPrices(const PriceListOptions& options) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!options.provider.empty()) {
    query.emplace_back("provider", options.provider);
  }
  std::string target =
      options.current ? apiTarget({"prices", "current"}, query) : apiTarget({"prices"}, query);
  int exit_code = kExitOk;
  auto response = callApi(options.common, "GET", target, {}, exit_code);
  if (!response) {
    return exit_code;
  }
  const boost::json::array& prices = dataArray(*response);
  if (options.common.json) {
    printJson(prices);
    return kExitOk;
  }
  if (prices.empty()) {
    std::cout << "no prices; set one with: keystore price set PROVIDER --unit UNIT "
                 "--usd-per-million AMOUNT\n";
    return kExitOk;
  }

  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& price : prices) {
    rows.push_back({std::to_string(integerMember(price, "id")), stringField(price, "provider"),
                    modelText(price), stringField(price, "unit"),
                    "$" + stringField(price, "usd_per_million"),
                    shortTime(price, "effective_from")});
  }
  std::cout << formatTable({"ID", "PROVIDER", "MODEL", "UNIT", "USD/MILLION", "EFFECTIVE"}, rows);
  return kExitOk;
}

// The column that names a usage group, e.g. "day" for group_by=day.
std::vector<std::string> usageCsvHeader(const std::string& group_by) {
  std::vector<std::string> header = {group_by, "request_count"};
  for (std::string_view unit : kUnits) {
    header.emplace_back(unit);
  }
  for (std::string_view column : {"cost_usd", "billable_usd", "byok_usd"}) {
    header.emplace_back(column);
  }
  return header;
}

void printUsageCsv(const boost::json::value& report, const std::string& group_by) {
  std::cout << csvRecord(usageCsvHeader(group_by));
  for (const boost::json::value& row : dataArray(report)) {
    std::vector<std::string> fields = {stringField(row, "key", ""),
                                       std::to_string(integerMember(row, "requests"))};
    for (std::string_view unit : kUnits) {
      fields.push_back(std::to_string(integerMember(member(row, "units"), unit)));
    }
    for (std::string_view cost : {"cost_micros", "billable_micros", "byok_micros"}) {
      fields.push_back(decimalMicros(integerMember(row, cost)));
    }
    std::cout << csvRecord(fields);
  }
}

// A table with one row per group and a total row. Unit columns appear only for units that
// some group used, so an LLM report is not padded with email and message columns.
void printUsageTable(const boost::json::value& report, const UsageOptions& options) {
  const boost::json::array& groups = dataArray(report);
  if (groups.empty()) {
    std::cout << "no usage in project " << options.project << " for this period\n";
    return;
  }
  const boost::json::value& total = member(report, "total");
  std::vector<std::string_view> units;
  for (std::string_view unit : kUnits) {
    if (integerMember(member(total, "units"), unit) != 0) {
      units.push_back(unit);
    }
  }

  std::vector<std::string> headers = {upperCase(options.group_by), "REQUEST_COUNT"};
  for (std::string_view unit : units) {
    headers.push_back(upperCase(unit));
  }
  headers.insert(headers.end(), {"COST", "BILLED", "BYOK"});

  auto cells = [&](std::string key, const boost::json::value& row) {
    std::vector<std::string> line = {key.empty() ? "-" : key,
                                     std::to_string(integerMember(row, "requests"))};
    for (std::string_view unit : units) {
      line.push_back(std::to_string(integerMember(member(row, "units"), unit)));
    }
    for (std::string_view cost : {"cost_micros", "billable_micros", "byok_micros"}) {
      line.push_back(dollarsFromMicros(integerMember(row, cost)));
    }
    return line;
  };
  std::vector<std::vector<std::string>> rows;
  for (const boost::json::value& row : groups) {
    rows.push_back(cells(printableText(stringField(row, "key", "")), row));
  }
  rows.push_back(cells("TOTAL", total));
  std::cout << formatTable(headers, rows);
}

int showUsage(const UsageOptions& options) {
  std::optional<std::string> format = outputFormat(options.common, options.format);
  if (!format) {
    return kExitUsage;
  }
  for (const auto& [flag, value] :
       {std::pair{"--since", &options.since}, std::pair{"--until", &options.until}}) {
    if (!value->empty() && !isTimeBound(*value)) {
      printError(std::string(flag) +
                 " must be an RFC 3339 time, a date such as 2026-01-31, or a duration before "
                 "now such as 7d, not \"" +
                 *value + "\"");
      return kExitUsage;
    }
  }

  std::vector<std::pair<std::string, std::string>> query = {{"group_by", options.group_by}};
  for (const auto& [name, value] :
       {std::pair{"agent", &options.agent}, std::pair{"since", &options.since},
        std::pair{"until", &options.until}}) {
    if (!value->empty()) {
      query.emplace_back(name, *value);
    }
  }
  int exit_code = kExitOk;
  auto report = callApi(options.common, "GET",
                        apiTarget({"projects", options.project, "usage"}, query), {}, exit_code);
  if (!report) {
    return exit_code;
  }

  if (*format == "json") {
    printJson(*report);
  } else if (*format == "csv") {
    printUsageCsv(*report, options.group_by);
  } else {
    printUsageTable(*report, options);
  }
  return kExitOk;
}

void printInvoiceCsv(const boost::json::value& invoice) {
  std::cout << csvRecord(
      {"provider", "model", "unit", "units", "usd_per_million", "cost_usd", "billed_usd", "mode"});
  for (const boost::json::value& line : invoiceLines(invoice)) {
    std::cout << csvRecord(
        {stringField(line, "provider", ""), stringField(line, "model", ""),
         stringField(line, "unit", ""), std::to_string(integerMember(line, "units")),
         stringField(line, "usd_per_million", ""),
         decimalMicros(integerMember(line, "cost_micros")),
         decimalMicros(integerMember(line, "billed_micros")), stringField(line, "mode", "")});
  }
}

void printInvoiceTable(const boost::json::value& invoice, const InvoiceOptions& options) {
  std::cout << "invoice of project " << options.project << " for " << options.month << " (UTC)\n";
  const boost::json::array& lines = invoiceLines(invoice);
  if (lines.empty()) {
    std::cout << "no priced usage in this month\n";
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const boost::json::value& line : lines) {
      rows.push_back({stringField(line, "provider"), printableText(stringField(line, "model")),
                      stringField(line, "unit"), std::to_string(integerMember(line, "units")),
                      "$" + stringField(line, "usd_per_million"),
                      dollarsFromMicros(integerMember(line, "cost_micros")),
                      dollarsFromMicros(integerMember(line, "billed_micros")),
                      stringField(line, "mode")});
    }
    std::cout << formatTable(
        {"PROVIDER", "MODEL", "UNIT", "UNITS", "USD/MILLION", "COST", "BILLED", "MODE"}, rows);
  }
  std::cout << "total billed: " << dollarsFromMicros(integerMember(invoice, "total_billed_micros"))
            << "\n"
            << "total at list price, BYOK included: "
            << dollarsFromMicros(integerMember(invoice, "total_list_price_micros")) << "\n";
}

bool isMonth(const std::string& text) {
  bool digits = text.size() == 7 && text[4] == '-' &&
                std::all_of(text.begin(), text.begin() + 4, isDigit) &&
                std::all_of(text.begin() + 5, text.end(), isDigit);
  int month = digits ? std::stoi(text.substr(5)) : 0;
  return digits && month >= 1 && month <= 12;
}

int showInvoice(const InvoiceOptions& options) {
  std::optional<std::string> format = outputFormat(options.common, options.format);
  if (!format) {
    return kExitUsage;
  }
  if (!isMonth(options.month)) {
    printError("--month must be a month such as 2026-01 (YYYY-MM), not \"" + options.month + "\"");
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto invoice =
      callApi(options.common, "GET",
              apiTarget({"projects", options.project, "invoices", options.month}), {}, exit_code);
  if (!invoice) {
    return exit_code;
  }
  if (*format == "json") {
    printJson(*invoice);
  } else if (*format == "csv") {
    printInvoiceCsv(*invoice);
  } else {
    printInvoiceTable(*invoice, options);
  }
  return kExitOk;
}

std::vector<std::string> unitNames() {
  return std::vector<std::string>(kUnits.begin(), kUnits.end());
}

}  // namespace

void addPriceCommands(CLI::App& app, int& exit_code) {
  CLI::App* price = app.add_subcommand("price", "Set and list the operator's prices");
  price->require_subcommand(1);

  auto set_options = std::make_shared<PriceSetOptions>();
  CLI::App* set = price->add_subcommand(
      "set", "Add a price for a provider's unit; earlier prices stay for past requests");
  set->add_option("PROVIDER", set_options->provider, "Provider id, e.g. openai")->required();
  set->add_option("--unit", set_options->unit, "Metered unit the price applies to")
      ->required()
      ->check(CLI::IsMember(unitNames()));
  set->add_option("--model", set_options->model,
                  "Model the price applies to (default: every model without a price of its own)");
  set->add_option("--usd-per-million", set_options->usd_per_million,
                  "Price in dollars per million units, with up to 6 decimals, e.g. 0.15")
      ->required();
  set->add_option("--effective-from", set_options->effective_from,
                  "When the price takes effect, an RFC 3339 time or a date (default: now)");
  addCommonOptions(*set, set_options->common);
  set->callback(
      [set_options, &exit_code] { runCommand(exit_code, [&] { return setPrice(*set_options); }); });

  auto list_options = std::make_shared<PriceListOptions>();
  CLI::App* list = price->add_subcommand("list", "List prices, newest effective first");
  list->add_option("--provider", list_options->provider, "Only this provider's prices");
  list->add_flag("--current", list_options->current,
                 "Only the price in effect now for each provider, model and unit");
  addCommonOptions(*list, list_options->common);
  list->callback([list_options, &exit_code] {
    runCommand(exit_code, [&] { return listPrices(*list_options); });
  });
}

void addUsageCommands(CLI::App& app, int& exit_code) {
  auto usage_options = std::make_shared<UsageOptions>();
  CLI::App* usage = app.add_subcommand(
      "usage", "Show a project's metered usage and cost, grouped by day, provider, agent or model");
  usage->add_option("--project", usage_options->project, "Project id or name")->required();
  usage->add_option("--agent", usage_options->agent, "Only this agent (id or name)");
  usage->add_option("--since", usage_options->since,
                    "Start (inclusive): an RFC 3339 time, a date, or a duration before now "
                    "such as 7d (default: the first request)");
  usage->add_option("--until", usage_options->until,
                    "End (exclusive), in the same forms as --since (default: now)");
  usage->add_option("--group-by", usage_options->group_by, "Grouping of the rows")
      ->check(CLI::IsMember({"day", "provider", "agent", "model"}))
      ->capture_default_str();
  usage->add_option("--format", usage_options->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  addCommonOptions(*usage, usage_options->common);
  usage->callback([usage_options, &exit_code] {
    runCommand(exit_code, [&] { return showUsage(*usage_options); });
  });

  auto invoice_options = std::make_shared<InvoiceOptions>();
  CLI::App* invoice = app.add_subcommand(
      "invoice",
      "Show a project's invoice for a UTC calendar month: billed marketplace usage "
      "and BYOK usage at list price");
  invoice->add_option("--project", invoice_options->project, "Project id or name")->required();
  invoice->add_option("--month", invoice_options->month, "Month as YYYY-MM, e.g. 2026-01")
      ->required();
  invoice->add_option("--format", invoice_options->format, "Output format")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  addCommonOptions(*invoice, invoice_options->common);
  invoice->callback([invoice_options, &exit_code] {
    runCommand(exit_code, [&] { return showInvoice(*invoice_options); });
  });
}

}  // namespace keystore::cli
