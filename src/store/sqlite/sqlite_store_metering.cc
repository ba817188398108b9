// Project limits, the price table, month-to-date spend, usage reports and invoices of
// SqliteStore.
#include <sqlite3.h>

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <map>
#include <string>
#include <tuple>

#include "common/clock.h"
#include "store/sqlite/sqlite_store.h"

namespace keystore::store {
namespace {

using sqlite::collectRows;
using sqlite::describeInvalid;
using sqlite::Statement;

constexpr int64_t kMillisPerDay = 86'400'000;
constexpr int64_t kUnitsPerPrice = 1'000'000;

constexpr std::string_view kProjectLimitColumns =
    "id, default_rpm, default_rpd, default_tpm, budget_cents, budget_warn_percent";
constexpr std::string_view kPriceColumns =
    "id, provider, model, unit, micros_per_million, effective_from, created_at";
// The eight unit sums, in the order of kUsageUnits.
constexpr std::string_view kUnitSums =
    "sum(input_tokens), sum(cached_input_tokens), sum(output_tokens), sum(requests), "
    "sum(emails), sum(messages), sum(read_units), sum(write_units)";

ProjectLimits readProjectLimits(const Statement& row) {
  return ProjectLimits{.project_id = row.text(0),
                       .default_rpm = row.optionalInt64(1),
                       .default_rpd = row.optionalInt64(2),
                       .default_tpm = row.optionalInt64(3),
                       .budget_cents = row.optionalInt64(4),
                       .budget_warn_percent = row.optionalInt64(5)};
}

Price readPrice(const Statement& row) {
  return Price{.id = row.int64(0),
               .provider = row.text(1),
               .model = row.text(2),
               .unit = row.text(3),
               .micros_per_million = row.int64(4),
               .effective_from = row.int64(5),
               .created_at = row.int64(6)};
}

// Reads the eight unit sums starting at column `first`.
UnitCounts readUnitSums(const Statement& row, int first) {
  UnitCounts units;
  for (size_t i = 0; i < kUnitCountFields.size(); ++i) {
    units.*kUnitCountFields[i] = row.int64(first + static_cast<int>(i));
  }
  return units;
}

// The SQL expression a usage report groups by; nullopt for an unknown group_by. Days are
// whole UTC days since the epoch, which both SQLite and PostgreSQL compute by integer
// division, so the database needs no date functions.
std::optional<std::string_view> groupExpression(const std::string& group_by) {
  if (group_by == "day") {
    return "time / 86400000";
  }
  if (group_by == "provider") {
    return "provider";
  }
  if (group_by == "agent") {
    return "agent_id";
  }
  if (group_by == "model") {
    return "model";
  }
  return std::nullopt;
}

std::string usageReportSql(const UsageQuery& query, std::string_view group) {
  std::string sql = "SELECT " + std::string(group) + " AS report_key, count(*), " +
                    std::string(kUnitSums) +
                    ", sum(CASE WHEN billable <> 0 THEN cost_micros ELSE 0 END)"
                    ", sum(CASE WHEN billable = 0 THEN cost_micros ELSE 0 END)"
                    " FROM ledger WHERE time >= ?";
  if (!query.project_id.empty()) {
    sql += " AND project_id = ?";
  }
  if (!query.agent_id.empty()) {
    sql += " AND agent_id = ?";
  }
  if (query.until != 0) {
    sql += " AND time < ?";
  }
  return sql + " GROUP BY report_key ORDER BY report_key";
}

// Adds `value` to `sum`; false on int64 overflow.
bool addChecked(int64_t& sum, int64_t value) {
  return !__builtin_add_overflow(sum, value, &sum);
}

// units at `price` micro-dollars per million, rounded half up; nullopt when it exceeds int64.
std::optional<int64_t> lineCost(int64_t units, int64_t price) {
  __int128 product = static_cast<__int128>(units) * price + kUnitsPerPrice / 2;
  __int128 cost = product / kUnitsPerPrice;
  if (cost > std::numeric_limits<int64_t>::max()) {
    return std::nullopt;
  }
  return static_cast<int64_t>(cost);
}

// Decodes a ledger row's prices text: the unit names of kUsageUnits it contains with their
// prices, indexed like kUsageUnits (-1 = no price). nullopt when the text is not a JSON object
// or a price is not a non-negative integer.
std::optional<std::array<int64_t, 8>> decodePrices(const std::string& text) {
  std::array<int64_t, 8> prices;
  prices.fill(-1);
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_object()) {
    return std::nullopt;
  }
  const boost::json::object& object = value.get_object();
  for (size_t i = 0; i < kUsageUnits.size(); ++i) {
    const boost::json::value* price = object.if_contains(kUsageUnits[i]);
    if (price == nullptr) {
      continue;
    }
    if (price->is_int64() && price->get_int64() >= 0) {
      prices[i] = price->get_int64();
    } else if (price->is_uint64() &&
               price->get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      prices[i] = static_cast<int64_t>(price->get_uint64());
    } else {
      return std::nullopt;
    }
  }
  return prices;
}

// Orders invoice lines: billable first, then provider, model, unit (kUsageUnits order), price.
// Adds the rows of `statement` (project_id, agent_id, sum of cost_micros) to `totals`,
// leaving out empty ids.
Result<void> sumSpendRows(Statement& statement, SpendTotals& totals) {
  for (;;) {
    auto row = statement.step();
    if (!row) {
      return std::unexpected(row.error());
    }
    if (!*row) {
      return {};
    }
    std::string project_id = statement.text(0);
    std::string agent_id = statement.text(1);
    int64_t spent = statement.int64(2);
    if (!project_id.empty() && !addChecked(totals.by_project[project_id], spent)) {
      return fail(ErrorCode::kInternal, "spend of project '" + project_id + "' overflows");
    }
    // Agent ids are unique across projects, so an agent's rows all share one project.
    if (!agent_id.empty() && !addChecked(totals.by_agent[agent_id], spent)) {
      return fail(ErrorCode::kInternal, "spend of agent '" + agent_id + "' overflows");
    }
  }
}

using InvoiceKey = std::tuple<bool, std::string, std::string, size_t, int64_t>;

}  // namespace

// Project limits.

Result<ProjectLimits> SqliteStore::getProjectLimits(const std::string& project_id) {
  return read([&]() -> Result<ProjectLimits> {
    auto rows = collectRows(connection_->query("SELECT " + std::string(kProjectLimitColumns) +
                                                   " FROM projects WHERE id = ?",
                                               project_id),
                            readProjectLimits);
    if (!rows) {
      return std::unexpected(rows.error());
    }
    if (rows->empty()) {
      return fail(ErrorCode::kNotFound, "project '" + project_id + "' not found");
    }
    return std::move(rows->front());
  });
}

Result<std::vector<ProjectLimits>> SqliteStore::listProjectLimits() {
  return read([&] {
    return collectRows(connection_->query("SELECT " + std::string(kProjectLimitColumns) +
                                          " FROM projects ORDER BY id"),
                       readProjectLimits);
  });
}

Result<void> SqliteStore::updateProjectLimits(const ProjectLimits& limits) {
  return write([&]() -> Result<void> {
    auto updated = connection_->run(
        "UPDATE projects SET default_rpm = ?, default_rpd = ?, default_tpm = ?, "
        "budget_cents = ?, budget_warn_percent = ? WHERE id = ?",
        limits.default_rpm, limits.default_rpd, limits.default_tpm, limits.budget_cents,
        limits.budget_warn_percent, limits.project_id);
    if (!updated) {
      return std::unexpected(describeInvalid(updated.error(), "project limits"));
    }
    if (connection_->changes() == 0) {
      return fail(ErrorCode::kNotFound, "project '" + limits.project_id + "' not found");
    }
    return bumpConfigGeneration();
  });
}

// Prices.

Result<Price> SqliteStore::putPrice(const Price& price) {
  Price stored = price;
  if (stored.created_at == 0) {
    stored.created_at = nowUnixMillis();
  }
  if (stored.effective_from == 0) {
    stored.effective_from = stored.created_at;
  }

  return write([&]() -> Result<Price> {
    auto inserted = connection_->run(
        "INSERT INTO prices (provider, model, unit, micros_per_million, effective_from, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        stored.provider, stored.model, stored.unit, stored.micros_per_million,
        stored.effective_from, stored.created_at);
    if (!inserted) {
      return std::unexpected(describeInvalid(inserted.error(), "price"));
    }
    stored.id = sqlite3_last_insert_rowid(connection_->handle());
    KS_RETURN_IF_ERROR(bumpConfigGeneration());
    return stored;
  });
}

Result<std::vector<Price>> SqliteStore::listPrices() {
  return read([&] {
    return collectRows(connection_->query("SELECT " + std::string(kPriceColumns) +
                                          " FROM prices ORDER BY effective_from DESC, id DESC"),
                       readPrice);
  });
}

Result<std::vector<Price>> SqliteStore::pricesAt(int64_t time) {
  return read([&] {
    return collectRows(
        connection_->query("SELECT " + std::string(kPriceColumns) + " FROM (SELECT " +
                               std::string(kPriceColumns) +
                               ", row_number() OVER (PARTITION BY provider, model, unit "
                               "ORDER BY effective_from DESC, id DESC) AS position "
                               "FROM prices WHERE effective_from <= ?) "
                               "WHERE position = 1 ORDER BY provider, model, unit",
                           time),
        readPrice);
  });
}

// Spend, reports and invoices.

Result<SpendTotals> SqliteStore::monthSpend(int64_t month_start_ms, int64_t month_end_ms) {
  if (month_end_ms <= month_start_ms) {
    return fail(ErrorCode::kInvalidRequest, "the spend window must end after it starts");
  }

  return read([&]() -> Result<SpendTotals> {
    auto statement = connection_->query(
        "SELECT project_id, agent_id, sum(cost_micros) FROM ledger "
        "WHERE time >= ? AND time < ? AND cost_micros > 0 GROUP BY project_id, agent_id",
        month_start_ms, month_end_ms);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    SpendTotals totals;
    KS_RETURN_IF_ERROR(sumSpendRows(*statement, totals));
    return totals;
  });
}

Result<SpendDelta> SqliteStore::spendSince(int64_t after_id, int64_t month_start_ms,
                                           int64_t month_end_ms) {
  if (month_end_ms <= month_start_ms) {
    return fail(ErrorCode::kInvalidRequest, "the spend window must end after it starts");
  }
  if (after_id < 0) {
    return fail(ErrorCode::kInvalidRequest,
                "the ledger cursor must not be negative, got " + std::to_string(after_id));
  }

  // One read transaction, so the sums and the cursor come from the same snapshot.
  return read([&]() -> Result<SpendDelta> {
    // From cursor 0 the month's rows are found through an index on time. Past a cursor, the
    // partial index ledger_costed lists only the ids of rows that cost something, so rows that
    // cost nothing (every BYOK row without prices) are neither read nor sorted by the grouping.
    auto statement = after_id == 0
                         ? connection_->query(
                               "SELECT project_id, agent_id, sum(cost_micros) FROM ledger "
                               "WHERE time >= ? AND time < ? AND cost_micros > 0 "
                               "GROUP BY project_id, agent_id",
                               month_start_ms, month_end_ms)
                         : connection_->query(
                               "SELECT project_id, agent_id, sum(cost_micros) FROM ledger "
                               "INDEXED BY ledger_costed WHERE id > ? AND time >= ? AND time < ? "
                               "AND cost_micros > 0 GROUP BY project_id, agent_id",
                               after_id, month_start_ms, month_end_ms);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    SpendDelta delta;
    KS_RETURN_IF_ERROR(sumSpendRows(*statement, delta.spend));

    auto last = connection_->query("SELECT coalesce(max(id), 0) FROM ledger");
    if (!last) {
      return std::unexpected(last.error());
    }
    KS_RETURN_IF_ERROR(last->step());
    delta.cursor = std::max(after_id, last->int64(0));
    return delta;
  });
}

Result<std::vector<UsageReportRow>> SqliteStore::usageReport(const UsageQuery& query) {
  std::optional<std::string_view> group = groupExpression(query.group_by);
  if (!group) {
    return fail(ErrorCode::kInvalidRequest, "unknown usage grouping '" + query.group_by +
                                                "'; expected one of day, provider, agent, model");
  }
  const bool by_day = query.group_by == "day";

  return read([&]() -> Result<std::vector<UsageReportRow>> {
    auto statement = connection_->query(usageReportSql(query, *group), query.since);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    if (!query.project_id.empty()) {
      statement->bind(query.project_id);
    }
    if (!query.agent_id.empty()) {
      statement->bind(query.agent_id);
    }
    if (query.until != 0) {
      statement->bind(query.until);
    }
    return collectRows(std::move(statement), [by_day](const Statement& row) {
      std::string key =
          by_day ? formatRfc3339(row.int64(0) * kMillisPerDay).substr(0, 10) : row.text(0);
      return UsageReportRow{.key = std::move(key),
                            .request_count = row.int64(1),
                            .units = readUnitSums(row, 2),
                            .billable_cost_micros = row.int64(10),
                            .byok_cost_micros = row.int64(11)};
    });
  });
}

Result<Invoice> SqliteStore::invoice(const std::string& project_id, int64_t month_start,
                                     int64_t month_end) {
  if (project_id.empty()) {
    return fail(ErrorCode::kInvalidRequest, "an invoice needs a project id");
  }
  if (month_end <= month_start) {
    return fail(ErrorCode::kInvalidRequest, "the invoice period must end after it starts");
  }

  // SQL sums the units of rows that recorded the same prices. Each group's prices text is then
  // split into one line per priced unit, and equal lines of several groups are merged.
  std::map<InvoiceKey, int64_t> units_by_line;
  auto grouped = read([&]() -> Result<void> {
    auto statement = connection_->query(
        "SELECT provider, model, billable, prices, " + std::string(kUnitSums) +
            " FROM ledger WHERE project_id = ? AND time >= ? AND time < ? AND prices <> '' "
            "GROUP BY provider, model, billable, prices",
        project_id, month_start, month_end);
    if (!statement) {
      return std::unexpected(statement.error());
    }
    for (;;) {
      auto row = statement->step();
      if (!row) {
        return std::unexpected(row.error());
      }
      if (!*row) {
        return {};
      }
      std::optional<std::array<int64_t, 8>> prices = decodePrices(statement->text(3));
      if (!prices) {
        return fail(ErrorCode::kInternal, "ledger rows of project '" + project_id +
                                              "' hold prices that are not a JSON object of "
                                              "non-negative integers: " +
                                              statement->text(3));
      }
      UnitCounts units = readUnitSums(*statement, 4);
      bool billable = statement->int64(2) != 0;
      for (size_t i = 0; i < kUsageUnits.size(); ++i) {
        if ((*prices)[i] < 0 || units.*kUnitCountFields[i] == 0) {
          continue;
        }
        InvoiceKey key{!billable, statement->text(0), statement->text(1), i, (*prices)[i]};
        if (!addChecked(units_by_line[key], units.*kUnitCountFields[i])) {
          return fail(ErrorCode::kInternal, "units of project '" + project_id + "' overflow");
        }
      }
    }
  });
  if (!grouped) {
    return std::unexpected(grouped.error());
  }

  Invoice invoice;
  invoice.project_id = project_id;
  invoice.month_start = month_start;
  invoice.month_end = month_end;
  for (const auto& [key, units] : units_by_line) {
    const auto& [not_billable, provider, model, unit_index, price] = key;
    std::optional<int64_t> cost = lineCost(units, price);
    int64_t& total = not_billable ? invoice.byok_list_micros : invoice.billed_micros;
    if (!cost || !addChecked(total, *cost)) {
      return fail(ErrorCode::kInternal, "the invoice of project '" + project_id + "' overflows");
    }
    invoice.lines.push_back(InvoiceLine{.provider = provider,
                                        .model = model,
                                        .unit = std::string(kUsageUnits[unit_index]),
                                        .units = units,
                                        .micros_per_million = price,
                                        .cost_micros = *cost,
                                        .billable = !not_billable,
                                        .billed_micros = not_billable ? 0 : *cost});
  }
  return invoice;
}

}  // namespace keystore::store
