#include "metering/month_spend.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "store/sqlite/sqlite_store.h"

namespace keystore::metering {
namespace {

using Spend = std::map<std::string, int64_t>;

constexpr int64_t kMarchStart = 1'000;
constexpr int64_t kAprilStart = 2'000;
constexpr int64_t kMayStart = 3'000;

class MonthSpendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("month-spend-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto opened = store::openSqliteStore((directory_ / "keystore.db").string());
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    store_ = std::move(*opened);
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

  void append(int64_t time, const std::string& project_id, const std::string& agent_id,
              int64_t cost_micros) {
    store::LedgerRow row;
    row.time = time;
    row.request_id = "req";
    row.project_id = project_id;
    row.agent_id = agent_id;
    row.upstream_status = 200;
    row.cost_micros = cost_micros;
    auto appended = store_->appendLedger({row});
    ASSERT_TRUE(appended.has_value()) << appended.error().message;
  }

  std::filesystem::path directory_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(MonthSpendTest, FirstRefreshSumsWholeMonth) {
  append(kMarchStart - 1, "p1", "a1", 1);
  append(kMarchStart, "p1", "a1", 10);
  append(kMarchStart + 5, "p1", "a2", 20);
  append(kAprilStart, "p1", "a1", 100);

  MonthSpend spend(*store_);
  auto refreshed = spend.refresh(kMarchStart, kAprilStart);
  ASSERT_TRUE(refreshed.has_value()) << refreshed.error().message;
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 10}, {"a2", 20}}));
  EXPECT_EQ(spend.totals().by_project, (Spend{{"p1", 30}}));
  EXPECT_EQ(spend.cursor(), 4);
}

TEST_F(MonthSpendTest, LaterRefreshAddsNewRowsOnce) {
  append(kMarchStart, "p1", "a1", 10);
  MonthSpend spend(*store_);
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());

  append(kMarchStart + 1, "p1", "a1", 5);
  append(kMarchStart + 2, "p2", "a3", 7);
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 15}, {"a3", 7}}));
  EXPECT_EQ(spend.totals().by_project, (Spend{{"p1", 15}, {"p2", 7}}));
  EXPECT_EQ(spend.cursor(), 3);

  // Nothing new: the totals stay as they are rather than adding the month again.
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 15}, {"a3", 7}}));
  EXPECT_EQ(spend.totals().by_project, (Spend{{"p1", 15}, {"p2", 7}}));
  EXPECT_EQ(spend.cursor(), 3);
}

TEST_F(MonthSpendTest, NewMonthRereadsFromStart) {
  append(kMarchStart, "p1", "a1", 10);
  // Written during March with an April time (another instance's clock runs ahead), so its id
  // is below the cursor when April begins.
  append(kAprilStart + 1, "p1", "a1", 300);
  MonthSpend spend(*store_);
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 10}}));

  append(kAprilStart + 2, "p1", "a1", 40);
  ASSERT_TRUE(spend.refresh(kAprilStart, kMayStart).has_value());
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 340}}));
  EXPECT_EQ(spend.totals().by_project, (Spend{{"p1", 340}}));
  EXPECT_EQ(spend.cursor(), 3);
}

TEST_F(MonthSpendTest, FailedRefreshRereadsWholeMonth) {
  append(kMarchStart, "p1", "a1", 10);
  MonthSpend spend(*store_);
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());

  // An inverted window makes the store fail, which drops the totals.
  auto failed = spend.refresh(kAprilStart, kMarchStart);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kInvalidRequest);
  EXPECT_TRUE(spend.totals().by_agent.empty());
  EXPECT_EQ(spend.cursor(), 0);

  append(kMarchStart + 1, "p1", "a1", 5);
  ASSERT_TRUE(spend.refresh(kMarchStart, kAprilStart).has_value());
  EXPECT_EQ(spend.totals().by_agent, (Spend{{"a1", 15}}));
  EXPECT_EQ(spend.cursor(), 2);
}

}  // namespace
}  // namespace keystore::metering
