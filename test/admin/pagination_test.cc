// Paging of plain lists: limit and cursor on every list route that has no cursor of its own.
#include "admin/pagination.h"

#include <gtest/gtest.h>

#include "admin_fixture.h"

namespace keystore::admin {
namespace {

TEST(PageListTest, CutsPagesAndEndsWithNullCursor) {
  const std::string body = R"({"data":[1,2,3,4,5]})";
  auto first = pageList(body, "2", std::nullopt);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, R"({"data":[1,2],"next_cursor":"off_2"})");
  auto second = pageList(body, "2", "off_2");
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, R"({"data":[3,4],"next_cursor":"off_4"})");
  auto last = pageList(body, "2", "off_4");
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, R"({"data":[5],"next_cursor":null})");
  auto past_end = pageList(body, "2", "off_9");
  ASSERT_TRUE(past_end);
  EXPECT_EQ(*past_end, R"({"data":[],"next_cursor":null})");
}

TEST(PageListTest, RejectsBadLimitAndForeignCursor) {
  const std::string body = R"({"data":[1]})";
  for (const char* limit : {"0", "1001", "-1", "ten", ""}) {
    auto page = pageList(body, std::string(limit), std::nullopt);
    ASSERT_FALSE(page) << limit;
    EXPECT_EQ(page.error().code, ErrorCode::kInvalidRequest) << limit;
  }
  for (const char* cursor : {"2", "prj_abc", "off_", "off_-1", "off_x"}) {
    auto page = pageList(body, std::nullopt, std::string(cursor));
    ASSERT_FALSE(page) << cursor;
    EXPECT_EQ(page.error().code, ErrorCode::kInvalidRequest) << cursor;
  }
}

TEST_F(AdminApiTest, ProjectListPagesThroughEveryProjectOnce) {
  for (int i = 0; i < 5; ++i) {
    createProject("paged-" + std::to_string(i));
  }
  CallResult whole = call("GET", "/api/v1/projects");
  ASSERT_EQ(whole.response.status, 200);
  const size_t total = whole.json.at("data").as_array().size();
  EXPECT_FALSE(whole.json.as_object().contains("next_cursor"));

  std::vector<std::string> seen;
  std::string target = "/api/v1/projects?limit=2";
  for (int pages = 0; pages < 10; ++pages) {
    CallResult page = call("GET", target);
    ASSERT_EQ(page.response.status, 200) << page.response.body;
    for (const auto& item : page.json.at("data").as_array()) {
      seen.emplace_back(item.at("id").as_string());
    }
    const boost::json::value& next = page.json.at("next_cursor");
    if (next.is_null()) {
      break;
    }
    target = "/api/v1/projects?limit=2&cursor=" + std::string(next.as_string());
  }
  ASSERT_EQ(seen.size(), total);
  for (size_t i = 0; i < total; ++i) {
    EXPECT_EQ(seen[i], whole.json.at("data").as_array()[i].at("id").as_string());
  }

  CallResult bad = call("GET", "/api/v1/projects?limit=5000");
  EXPECT_EQ(bad.response.status, 400);
  EXPECT_EQ(bad.errorCode(), "invalid_request");
}

TEST(PageListTest, ListsWithTheirOwnCursorsAreLeftAlone) {
  EXPECT_TRUE(isPagedList("GET", "/api/v1/projects"));
  EXPECT_FALSE(isPagedList("GET", "/api/v1/audit"));
  EXPECT_FALSE(isPagedList("GET", "/api/v1/webhooks/{}/deliveries"));
  EXPECT_FALSE(isPagedList("POST", "/api/v1/projects"));
}

}  // namespace
}  // namespace keystore::admin
