// Usage reports, monthly invoices and metered ledger rows through the management API, over
// ledger rows appended to the store directly so that every sum is known exactly.
#include <map>
#include <tuple>

#include "admin_fixture.h"

namespace keystore::admin {
namespace {

int64_t at(std::string_view rfc3339) {
  std::optional<int64_t> time = parseRfc3339(rfc3339);
  EXPECT_TRUE(time.has_value()) << rfc3339;
  return time.value_or(0);
}

class UsageRoutesTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    project_ = createProject("demo");
    first_agent_ = createAgent("demo", "first");
    second_agent_ = createAgent("demo", "second");
  }

  store::LedgerRow row(std::string_view time, const std::string& agent,
                       const std::string& provider) {
    store::LedgerRow row;
    row.time = at(time);
    row.request_id = "req_" + std::to_string(++request_count_);
    row.project_id = project_;
    row.agent_id = agent;
    row.token_id = "tok_test";
    row.provider = provider;
    row.mode = "marketplace";
    row.method = "POST";
    row.path = "/v1/chat/completions";
    row.upstream_status = 200;
    row.outcome = "ok";
    row.usage_reported = true;
    return row;
  }

  // Appends the fixed rows that the report and invoice tests sum, listed below by day, agent,
  // provider, mode, model, units and cost. One more row belongs to another organization.
  //   2026-03-10 first  openai    marketplace gpt-4o-mini  1000 in, 500 out    450 micros
  //   2026-03-10 first  openai    upstream error, no usage, no price           0
  //   2026-03-11 second openai    marketplace gpt-4o-mini  2000 in, 1000 out   900
  //   2026-03-11 first  anthropic byok        claude-x     3000 in, 100 out    10500 (list)
  //   2026-03-12 second resend    marketplace              2 emails            800
  //   2026-04-01 first  openai    marketplace gpt-4o-mini  1000000 in          150000
  void appendRows() {
    std::vector<store::LedgerRow> rows;

    store::LedgerRow first = row("2026-03-10T12:00:00Z", first_agent_, "openai");
    first.model = "gpt-4o-mini";
    first.units.input_tokens = 1000;
    first.units.output_tokens = 500;
    first.units.requests = 1;
    first.prices = R"({"input_tokens":150000,"output_tokens":600000})";
    first.cost_micros = 450;
    first.billable = true;
    rows.push_back(first);

    store::LedgerRow failed = row("2026-03-10T13:00:00Z", first_agent_, "openai");
    failed.upstream_status = 502;
    failed.outcome = "upstream_error";
    failed.usage_reported = false;
    rows.push_back(failed);

    store::LedgerRow second = row("2026-03-11T08:00:00Z", second_agent_, "openai");
    second.model = "gpt-4o-mini";
    second.units.input_tokens = 2000;
    second.units.output_tokens = 1000;
    second.units.requests = 1;
    second.prices = R"({"input_tokens":150000,"output_tokens":600000})";
    second.cost_micros = 900;
    second.billable = true;
    rows.push_back(second);

    store::LedgerRow byok = row("2026-03-11T09:30:00Z", first_agent_, "anthropic");
    byok.mode = "byok";
    byok.model = "claude-x";
    byok.units.input_tokens = 3000;
    byok.units.output_tokens = 100;
    byok.units.requests = 1;
    byok.prices = R"({"input_tokens":3000000,"output_tokens":15000000})";
    byok.cost_micros = 10500;
    byok.billable = false;
    rows.push_back(byok);

    store::LedgerRow email = row("2026-03-12T23:59:59.999Z", second_agent_, "resend");
    email.units.emails = 2;
    email.units.requests = 1;
    email.prices = R"({"emails":400000000})";
    email.cost_micros = 800;
    email.billable = true;
    rows.push_back(email);

    store::LedgerRow april = row("2026-04-01T00:00:00Z", first_agent_, "openai");
    april.model = "gpt-4o-mini";
    april.units.input_tokens = 1000000;
    april.units.requests = 1;
    april.prices = R"({"input_tokens":150000})";
    april.cost_micros = 150000;
    april.billable = true;
    rows.push_back(april);

    auto other_project = callWithKey(key_b_, "POST", "/api/v1/projects", R"({"name":"demo"})");
    ASSERT_EQ(other_project.response.status, 201) << other_project.response.body;
    store::LedgerRow other = row("2026-03-10T12:00:00Z", "agt_other", "openai");
    other.project_id = other_project.str("/id");
    other.units.input_tokens = 7;
    other.prices = R"({"input_tokens":150000})";
    other.cost_micros = 1;
    other.billable = true;
    rows.push_back(other);

    auto appended = store_->appendLedger(rows);
    ASSERT_TRUE(appended.has_value()) << appended.error().message;
  }

  // The usage rows of a report, keyed by their key.
  static std::map<std::string, boost::json::object> byKey(const CallResult& result) {
    std::map<std::string, boost::json::object> rows;
    for (const boost::json::value& entry : result.json.at("data").as_array()) {
      rows[std::string(entry.at("key").as_string())] = entry.as_object();
    }
    return rows;
  }

  static int64_t integer(const boost::json::object& object, std::string_view name) {
    return object.at(name).as_int64();
  }
  static int64_t unit(const boost::json::object& object, std::string_view name) {
    return object.at("units").at(name).as_int64();
  }

  std::string project_;
  std::string first_agent_;
  std::string second_agent_;
  int request_count_ = 0;
};

TEST_F(UsageRoutesTest, ReportByProviderSumsExactly) {
  appendRows();
  CallResult result = call("GET",
                           "/api/v1/projects/demo/usage?group_by=provider&since=2026-03-01&until="
                           "2026-04-01T00:00:00Z");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/project_id"), project_);
  EXPECT_EQ(result.str("/group_by"), "provider");
  EXPECT_EQ(result.str("/since"), "2026-03-01T00:00:00.000Z");
  EXPECT_EQ(result.str("/until"), "2026-04-01T00:00:00.000Z");
  EXPECT_TRUE(result.json.at("agent_id").is_null());

  auto rows = byKey(result);
  ASSERT_EQ(rows.size(), 3u);
  const boost::json::object& openai = rows.at("openai");
  EXPECT_EQ(integer(openai, "requests"), 3);
  EXPECT_EQ(unit(openai, "input_tokens"), 3000);
  EXPECT_EQ(unit(openai, "output_tokens"), 1500);
  EXPECT_EQ(unit(openai, "requests"), 2);
  EXPECT_EQ(unit(openai, "emails"), 0);
  EXPECT_EQ(openai.at("units").as_object().size(), 8u);
  EXPECT_EQ(integer(openai, "cost_micros"), 1350);
  EXPECT_EQ(integer(openai, "billable_micros"), 1350);
  EXPECT_EQ(integer(openai, "byok_micros"), 0);

  const boost::json::object& anthropic = rows.at("anthropic");
  EXPECT_EQ(integer(anthropic, "requests"), 1);
  EXPECT_EQ(unit(anthropic, "input_tokens"), 3000);
  EXPECT_EQ(integer(anthropic, "cost_micros"), 10500);
  EXPECT_EQ(integer(anthropic, "billable_micros"), 0);
  EXPECT_EQ(integer(anthropic, "byok_micros"), 10500);

  const boost::json::object& resend = rows.at("resend");
  EXPECT_EQ(unit(resend, "emails"), 2);
  EXPECT_EQ(integer(resend, "cost_micros"), 800);

  const boost::json::object& total = result.json.at("total").as_object();
  EXPECT_FALSE(total.contains("key"));
  EXPECT_EQ(integer(total, "requests"), 5);
  EXPECT_EQ(unit(total, "input_tokens"), 6000);
  EXPECT_EQ(unit(total, "output_tokens"), 1600);
  EXPECT_EQ(unit(total, "emails"), 2);
  EXPECT_EQ(integer(total, "cost_micros"), 12650);
  EXPECT_EQ(integer(total, "billable_micros"), 2150);
  EXPECT_EQ(integer(total, "byok_micros"), 10500);
}

TEST_F(UsageRoutesTest, ReportByDayCoversAllTime) {
  appendRows();
  CallResult result = call("GET", "/api/v1/projects/demo/usage");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/group_by"), "day");
  EXPECT_TRUE(result.json.at("since").is_null());
  EXPECT_TRUE(result.json.at("until").is_null());

  const boost::json::array& data = result.json.at("data").as_array();
  ASSERT_EQ(data.size(), 4u);
  std::vector<std::string> keys;
  for (const boost::json::value& entry : data) {
    keys.emplace_back(entry.at("key").as_string());
  }
  EXPECT_EQ(keys,
            (std::vector<std::string>{"2026-03-10", "2026-03-11", "2026-03-12", "2026-04-01"}));
  EXPECT_EQ(integer(data[0].as_object(), "requests"), 2);
  EXPECT_EQ(integer(data[0].as_object(), "cost_micros"), 450);
  EXPECT_EQ(integer(data[1].as_object(), "cost_micros"), 11400);
  EXPECT_EQ(integer(data[1].as_object(), "billable_micros"), 900);
  EXPECT_EQ(integer(data[1].as_object(), "byok_micros"), 10500);
  EXPECT_EQ(integer(data[2].as_object(), "cost_micros"), 800);
  EXPECT_EQ(integer(data[3].as_object(), "cost_micros"), 150000);
  EXPECT_EQ(integer(result.json.at("total").as_object(), "cost_micros"), 162650);
  EXPECT_EQ(integer(result.json.at("total").as_object(), "requests"), 6);
}

TEST_F(UsageRoutesTest, ReportFiltersByAgent) {
  appendRows();
  for (const std::string& agent : {std::string("first"), first_agent_}) {
    CallResult result = call(
        "GET", "/api/v1/projects/demo/usage?group_by=agent&agent=" + agent + "&until=2026-04-01");
    ASSERT_EQ(result.response.status, 200) << result.response.body;
    EXPECT_EQ(result.str("/agent_id"), first_agent_);
    auto rows = byKey(result);
    ASSERT_EQ(rows.size(), 1u) << agent;
    const boost::json::object& first = rows.at(first_agent_);
    EXPECT_EQ(integer(first, "requests"), 3);
    EXPECT_EQ(integer(first, "cost_micros"), 10950);
    EXPECT_EQ(integer(first, "billable_micros"), 450);
    EXPECT_EQ(integer(first, "byok_micros"), 10500);
  }
}

TEST_F(UsageRoutesTest, ReportByModel) {
  appendRows();
  CallResult result = call("GET", "/api/v1/projects/demo/usage?group_by=model&since=2026-03-01");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  auto rows = byKey(result);
  ASSERT_EQ(rows.size(), 3u);
  // Requests that named no model share the empty key.
  EXPECT_EQ(integer(rows.at(""), "requests"), 2);
  EXPECT_EQ(integer(rows.at(""), "cost_micros"), 800);
  EXPECT_EQ(integer(rows.at("gpt-4o-mini"), "requests"), 3);
  EXPECT_EQ(integer(rows.at("gpt-4o-mini"), "cost_micros"), 151350);
  EXPECT_EQ(integer(rows.at("claude-x"), "cost_micros"), 10500);
}

TEST_F(UsageRoutesTest, EmptyReportHasZeroTotals) {
  CallResult result = call("GET", "/api/v1/projects/demo/usage?group_by=provider");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_TRUE(result.json.at("data").as_array().empty());
  const boost::json::object& total = result.json.at("total").as_object();
  EXPECT_EQ(integer(total, "requests"), 0);
  EXPECT_EQ(integer(total, "cost_micros"), 0);
  EXPECT_EQ(unit(total, "write_units"), 0);
}

TEST_F(UsageRoutesTest, InvalidReportQueriesRejected) {
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"group_by=week", 400, "query parameter group_by must be day, provider, agent or model"},
      {"since=yesterday", 400,
       "query parameter since must be an RFC 3339 time such as 2025-01-31T12:00:00Z or a "
       "duration such as 24h"},
      {"until=2026-13-01", 400,
       "query parameter until must be an RFC 3339 time such as 2025-01-31T12:00:00Z or a "
       "duration such as 24h"},
      {"since=2026-03-02&until=2026-03-01", 400, "query parameter until must be later than since"},
      {"since=2026-03-01&until=2026-03-01", 400, "query parameter until must be later than since"},
      {"agent=nobody", 404, "agent nobody not found in project demo"},
  };
  for (const auto& [query, status, message] : cases) {
    CallResult result = call("GET", "/api/v1/projects/demo/usage?" + query);
    EXPECT_EQ(result.response.status, status) << query;
    EXPECT_EQ(result.errorMessage(), message) << query;
  }
}

TEST_F(UsageRoutesTest, AgentOfOtherProjectNotFound) {
  createProject("other");
  std::string stranger = createAgent("other", "stranger");
  CallResult result = call("GET", "/api/v1/projects/demo/usage?agent=" + stranger);
  EXPECT_EQ(result.response.status, 404);
  EXPECT_EQ(result.errorCode(), "not_found");
}

TEST_F(UsageRoutesTest, InvoiceBillsMarketplaceOnly) {
  appendRows();
  CallResult result = call("GET", "/api/v1/projects/demo/invoices/2026-03");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_EQ(result.str("/project_id"), project_);
  EXPECT_EQ(result.str("/month"), "2026-03");
  EXPECT_EQ(result.str("/period_start"), "2026-03-01T00:00:00.000Z");
  EXPECT_EQ(result.str("/period_end"), "2026-04-01T00:00:00.000Z");
  EXPECT_EQ(result.json.at("total_billed_micros").as_int64(), 2150);
  EXPECT_EQ(result.json.at("total_list_price_micros").as_int64(), 12650);

  struct Line {
    std::string provider;
    std::string model;  // "" for null
    std::string unit;
    int64_t units;
    int64_t micros_per_million;
    std::string usd_per_million;
    int64_t cost_micros;
    int64_t billed_micros;
    std::string mode;
  };
  // Billable lines first, then by provider, model and unit; the two March gpt-4o-mini rows
  // recorded the same prices, so their units share one line.
  const std::vector<Line> expected = {
      {"openai", "gpt-4o-mini", "input_tokens", 3000, 150000, "0.15", 450, 450, "marketplace"},
      {"openai", "gpt-4o-mini", "output_tokens", 1500, 600000, "0.6", 900, 900, "marketplace"},
      {"resend", "", "emails", 2, 400000000, "400", 800, 800, "marketplace"},
      {"anthropic", "claude-x", "input_tokens", 3000, 3000000, "3", 9000, 0, "byok"},
      {"anthropic", "claude-x", "output_tokens", 100, 15000000, "15", 1500, 0, "byok"},
  };
  const boost::json::array& lines = result.json.at("lines").as_array();
  ASSERT_EQ(lines.size(), expected.size()) << result.response.body;
  for (size_t i = 0; i < expected.size(); ++i) {
    const boost::json::value& line = lines[i];
    const Line& want = expected[i];
    EXPECT_EQ(line.at("provider").as_string(), want.provider) << i;
    if (want.model.empty()) {
      EXPECT_TRUE(line.at("model").is_null()) << i;
    } else {
      EXPECT_EQ(line.at("model").as_string(), want.model) << i;
    }
    EXPECT_EQ(line.at("unit").as_string(), want.unit) << i;
    EXPECT_EQ(line.at("units").as_int64(), want.units) << i;
    EXPECT_EQ(line.at("micros_per_million").as_int64(), want.micros_per_million) << i;
    EXPECT_EQ(line.at("usd_per_million").as_string(), want.usd_per_million) << i;
    EXPECT_EQ(line.at("cost_micros").as_int64(), want.cost_micros) << i;
    EXPECT_EQ(line.at("billed_micros").as_int64(), want.billed_micros) << i;
    EXPECT_EQ(line.at("mode").as_string(), want.mode) << i;
  }
}

TEST_F(UsageRoutesTest, InvoiceOfNextMonth) {
  appendRows();
  CallResult result = call("GET", "/api/v1/projects/" + project_ + "/invoices/2026-04");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  const boost::json::array& lines = result.json.at("lines").as_array();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("units").as_int64(), 1000000);
  EXPECT_EQ(result.json.at("total_billed_micros").as_int64(), 150000);
  EXPECT_EQ(result.json.at("total_list_price_micros").as_int64(), 150000);
}

TEST_F(UsageRoutesTest, EmptyInvoiceHasZeroTotals) {
  CallResult result = call("GET", "/api/v1/projects/demo/invoices/2026-12");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  EXPECT_TRUE(result.json.at("lines").as_array().empty());
  EXPECT_EQ(result.json.at("total_billed_micros").as_int64(), 0);
  EXPECT_EQ(result.json.at("total_list_price_micros").as_int64(), 0);
  EXPECT_EQ(result.str("/period_start"), "2026-12-01T00:00:00.000Z");
  EXPECT_EQ(result.str("/period_end"), "2027-01-01T00:00:00.000Z");
}

TEST_F(UsageRoutesTest, InvalidInvoiceMonthRejected) {
  for (const char* month :
       {"2026-13", "2026-00", "2026-3", "26-03", "2026_03", "2026-03-01", "abcd-ef", "1969-12"}) {
    CallResult result = call("GET", std::string("/api/v1/projects/demo/invoices/") + month);
    EXPECT_EQ(result.response.status, 400) << month;
    EXPECT_EQ(result.errorMessage(),
              "the invoice month must be YYYY-MM with a year from 1970, such as 2026-01")
        << month;
  }
}

TEST_F(UsageRoutesTest, OtherOrganizationProjectNotFound) {
  appendRows();
  for (const std::string& target : {"/api/v1/projects/" + project_ + "/usage",
                                    "/api/v1/projects/" + project_ + "/invoices/2026-03",
                                    "/api/v1/projects/" + project_ + "/ledger"}) {
    CallResult result = callWithKey(key_b_, "GET", target);
    EXPECT_EQ(result.response.status, 404) << target;
    EXPECT_EQ(result.errorCode(), "not_found") << target;
  }
  // Organization B's own project of the same name shows only its own row.
  CallResult own = callWithKey(key_b_, "GET", "/api/v1/projects/demo/invoices/2026-03");
  ASSERT_EQ(own.response.status, 200) << own.response.body;
  ASSERT_EQ(own.json.at("lines").as_array().size(), 1u);
  EXPECT_EQ(own.json.at("lines").as_array()[0].at("units").as_int64(), 7);
}

TEST_F(UsageRoutesTest, ViewerReadsUsageAndInvoice) {
  appendRows();
  std::string viewer = createAdminKey(org_a_, "viewer");
  CallResult usage = callWithKey(viewer, "GET", "/api/v1/projects/demo/usage?group_by=provider");
  EXPECT_EQ(usage.response.status, 200) << usage.response.body;
  CallResult invoice = callWithKey(viewer, "GET", "/api/v1/projects/demo/invoices/2026-03");
  EXPECT_EQ(invoice.response.status, 200) << invoice.response.body;
  EXPECT_EQ(invoice.json.at("total_billed_micros").as_int64(), 2150);
}

TEST_F(UsageRoutesTest, LedgerRowShowsMetering) {
  appendRows();
  CallResult result =
      call("GET", "/api/v1/projects/demo/ledger?since=2026-03-10&until=2026-03-11&limit=10");
  ASSERT_EQ(result.response.status, 200) << result.response.body;
  const boost::json::array& rows = result.json.at("data").as_array();
  ASSERT_EQ(rows.size(), 2u);

  // Newest first: the failed request, then the metered one.
  const boost::json::value& failed = rows[0];
  EXPECT_EQ(failed.at("outcome").as_string(), "upstream_error");
  EXPECT_TRUE(failed.at("model").is_null());
  EXPECT_FALSE(failed.at("usage_reported").as_bool());
  EXPECT_TRUE(failed.at("prices").as_object().empty());
  EXPECT_EQ(failed.at("cost_micros").as_int64(), 0);
  EXPECT_FALSE(failed.at("billable").as_bool());

  const boost::json::value& metered = rows[1];
  EXPECT_EQ(metered.at("model").as_string(), "gpt-4o-mini");
  EXPECT_TRUE(metered.at("usage_reported").as_bool());
  const boost::json::object& units = metered.at("units").as_object();
  EXPECT_EQ(units.size(), 8u);
  EXPECT_EQ(units.at("input_tokens").as_int64(), 1000);
  EXPECT_EQ(units.at("cached_input_tokens").as_int64(), 0);
  EXPECT_EQ(units.at("output_tokens").as_int64(), 500);
  EXPECT_EQ(units.at("requests").as_int64(), 1);
  const boost::json::object& prices = metered.at("prices").as_object();
  EXPECT_EQ(prices.size(), 2u);
  EXPECT_EQ(prices.at("input_tokens").as_int64(), 150000);
  EXPECT_EQ(prices.at("output_tokens").as_int64(), 600000);
  EXPECT_EQ(metered.at("cost_micros").as_int64(), 450);
  EXPECT_TRUE(metered.at("billable").as_bool());
}

}  // namespace
}  // namespace keystore::admin
