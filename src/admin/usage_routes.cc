// Routes for a project's usage reports and monthly invoices, summed by the store in exact
// integer micro-dollars.
#include <boost/json/array.hpp>
#include <chrono>

#include "admin/admin_api.h"
#include "admin/json_render.h"
#include "admin/request_context.h"

namespace keystore::admin {

namespace {

// The UTC calendar month named "YYYY-MM", as [start, end) in Unix milliseconds.
struct MonthPeriod {
  int64_t start = 0;
  int64_t end = 0;
};

bool allDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

Result<MonthPeriod> parseMonth(std::string_view text) {
  bool shaped = text.size() == 7 && text[4] == '-' && allDigits(text.substr(0, 4)) &&
                allDigits(text.substr(5));
  int year = shaped ? std::stoi(std::string(text.substr(0, 4))) : 0;
  unsigned month = shaped ? static_cast<unsigned>(std::stoi(std::string(text.substr(5)))) : 0;
  if (!shaped || year < 1970 || month < 1 || month > 12) {
    return fail(ErrorCode::kInvalidRequest,
                "the invoice month must be YYYY-MM with a year from 1970, such as 2026-01");
  }

  using std::chrono::sys_days;
  std::chrono::year_month first{std::chrono::year{year}, std::chrono::month{month}};
  auto toMillis = [](sys_days day) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(day.time_since_epoch()).count();
  };
  return MonthPeriod{toMillis(sys_days(first / 1)),
                     toMillis(sys_days((first + std::chrono::months(1)) / 1))};
}

bool isGrouping(std::string_view group_by) {
  return group_by == "day" || group_by == "provider" || group_by == "agent" || group_by == "model";
}

// Adds `value` to `sum`; false instead of overflowing.
bool addChecked(int64_t& sum, int64_t value) {
  return !__builtin_add_overflow(sum, value, &sum);
}

// Sums every row into one, with overflow checked, so the response can show
// the totals and renderUsageRow may add each row's costs safely.
Result<store::UsageReportRow> sumRows(const std::vector<store::UsageReportRow>& rows) {
  store::UsageReportRow total;
  bool fits = true;
  for (const store::UsageReportRow& row : rows) {
    int64_t row_cost = row.billable_cost_micros;
    fits = fits && addChecked(row_cost, row.byok_cost_micros);
    fits = fits && addChecked(total.request_count, row.request_count);
    for (auto field : store::kUnitCountFields) {
      fits = fits && addChecked(total.units.*field, row.units.*field);
    }
    fits = fits && addChecked(total.billable_cost_micros, row.billable_cost_micros);
    fits = fits && addChecked(total.byok_cost_micros, row.byok_cost_micros);
  }
  int64_t total_cost = total.billable_cost_micros;
  fits = fits && addChecked(total_cost, total.byok_cost_micros);
  if (!fits) {
    return fail(ErrorCode::kInternal, "a usage report total does not fit in int64");
  }
  return total;
}

}  // namespace

Result<ApiResponse> AdminApi::usageReport(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }

  store::UsageQuery query;
  query.project_id = project->id;
  query.group_by = context.queryValue("group_by").value_or("day");
  if (!isGrouping(query.group_by)) {
    return fail(ErrorCode::kInvalidRequest,
                "query parameter group_by must be day, provider, agent or model");
  }
  if (std::optional<std::string> since = context.queryValue("since")) {
    Result<int64_t> time = parseTimeBound("since", *since, context.now);
    if (!time) {
      return std::unexpected(time.error());
    }
    query.since = *time;
  }
  if (std::optional<std::string> until = context.queryValue("until")) {
    Result<int64_t> time = parseTimeBound("until", *until, context.now);
    if (!time) {
      return std::unexpected(time.error());
    }
    query.until = *time;
  }
  if (query.until != 0 && query.until <= query.since) {
    return fail(ErrorCode::kInvalidRequest, "query parameter until must be later than since");
  }
  if (std::optional<std::string> agent_name = context.queryValue("agent")) {
    Result<store::Agent> agent = store_.findAgent(project->id, *agent_name);
    if (!agent || agent->project_id != project->id) {
      if (!agent && agent.error().code != ErrorCode::kNotFound) {
        return std::unexpected(agent.error());
      }
      return fail(ErrorCode::kNotFound,
                  "agent " + *agent_name + " not found in project " + project->name);
    }
    query.agent_id = agent->id;
  }

  Result<std::vector<store::UsageReportRow>> rows = store_.usageReport(query);
  if (!rows) {
    return std::unexpected(rows.error());
  }
  Result<store::UsageReportRow> total = sumRows(*rows);
  if (!total) {
    return std::unexpected(total.error());
  }

  boost::json::array items;
  for (const store::UsageReportRow& row : *rows) {
    items.push_back(renderUsageRow(row));
  }
  return jsonResponse(200,
                      boost::json::object{
                          {"project_id", project->id},
                          {"agent_id", query.agent_id.empty() ? boost::json::value(nullptr)
                                                              : boost::json::value(query.agent_id)},
                          {"group_by", query.group_by},
                          {"since", renderTime(query.since)},
                          {"until", renderTime(query.until)},
                          {"data", std::move(items)},
                          {"total", renderUsageTotal(*total)},
                      });
}

Result<ApiResponse> AdminApi::getInvoice(const RequestContext& context) {
  Result<store::Project> project = findProject(context, context.params[0]);
  if (!project) {
    return std::unexpected(project.error());
  }
  Result<MonthPeriod> period = parseMonth(context.params[1]);
  if (!period) {
    return std::unexpected(period.error());
  }

  Result<store::Invoice> invoice = store_.invoice(project->id, period->start, period->end);
  if (!invoice) {
    return std::unexpected(invoice.error());
  }
  int64_t list_total = invoice->billed_micros;
  if (!addChecked(list_total, invoice->byok_list_micros)) {
    return fail(ErrorCode::kInternal, "the invoice of project " + project->id +
                                          " has a list-price total that does not fit in int64");
  }
  return jsonResponse(200, renderInvoice(*invoice, context.params[1]));
}

}  // namespace keystore::admin
