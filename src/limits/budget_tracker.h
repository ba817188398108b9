// BudgetTracker: monthly spending caps per agent and per project, enforced in memory by
// reserving each request's worst-case cost before it is forwarded.
//
// For every agent and project it keeps, for the current UTC calendar month, the cost spent
// (seeded from the ledger at start-up, then grown by settle) and the sum of outstanding
// reservations. Costs are micro-dollars; caps come in cents, the unit budgets are configured in.
//
// Lifecycle of a request: reserve() its worst-case cost, then call exactly one of settle() with
// the actual cost (the request reached the upstream) or release() (it never did). A
// reservation that is neither settled nor released keeps its amount reserved until the
// process ends.
//
// Admission: reserve() admits only when spent + reserved + worst_case <= cap holds for the
// agent and for the project, and adds worst_case to both reserved sums in the same locked step.
// A missing cap is unlimited. Both billable and BYOK costs count: a budget caps what an agent
// costs, whoever bills it. A request whose worst case is 0 is admitted even at the cap, since
// it cannot add to the spend.
//
// Overshoot bound. Let excess(r) = max(0, actual(r) - reserved(r)) for a settled request r.
// The tracker keeps, for each agent and project and month,
//     spent + reserved <= cap + sum of excess(r) over the month's settled requests,
// provided the cap did not shrink during the month and the seeded spend was within it. So:
// - concurrent requests can never together pass a cap: their reservations are counted before
//   any of them is admitted;
// - if no request costs more than its estimate, spend never exceeds the cap;
// - otherwise spend exceeds the cap by at most the sum of those requests' excesses, and only
//   requests admitted before spent + reserved reached the cap can contribute, because none is
//   admitted after that. With n requests in flight, the overshoot is at most n times the
//   largest excess of one request.
//
// Month rollover: the first call at a time in a later month than an agent's or project's state
// resets its spend and its warning flags. Outstanding reservations stay reserved, because their
// requests are still in flight, and settle counts a cost in the month of the `now` it is given,
// which should be the time of the request's ledger row. A settle whose `now` lies in a month
// that has already ended for that agent or project only releases the reservation.
//
// This tracker sees only this process's requests. Several instances sharing a database each
// enforce the caps on their own traffic plus what seedSpend() last loaded; see seedSpend().
//
// Thread-safety: every method may be called from any thread; one mutex serializes them, and
// each holds it for a few map lookups.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/error.h"
#include "common/string_map.h"

namespace keystore::limits {

inline constexpr int64_t kMicrosPerCent = 10'000;

// One agent's or project's budget as configured: nullopt cents = no cap; nullopt warn_percent
// = no warning.
struct BudgetCap {
  std::optional<int64_t> cents;
  std::optional<int64_t> warn_percent;  // 1-100
};

struct BudgetCaps {
  BudgetCap agent;
  BudgetCap project;
};

// An admitted request's hold on the budgets. Copyable, so it can travel with the request.
struct Reservation {
  uint64_t id = 0;
  // Set by trackers that find their counters by id when settling (the Redis one). Empty from
  // BudgetTracker, which keeps the accounts of each outstanding reservation itself.
  std::string agent_id;
  std::string project_id;
  int64_t micros = 0;
  // The start of the UTC month whose counters hold the reservation; set by trackers that key
  // counters by month (the Redis one), 0 otherwise.
  int64_t month_start_ms = 0;
};

enum class BudgetScope {
  kAgent,
  kProject,
};

// Why reserve() rejected a request: the first scope (agent before project) whose cap the
// worst case would pass.
struct BudgetRefusal {
  BudgetScope scope = BudgetScope::kAgent;
  int64_t cap_micros = 0;
  int64_t spent_micros = 0;
  int64_t reserved_micros = 0;
  int64_t requested_micros = 0;
  int64_t resets_at_ms = 0;  // the start of the next UTC month

  // kBudgetExceeded with a message naming the scope and the amounts in dollars.
  Error toError() const;
};

// Thresholds that a settle() crossed. The tracker reports each at most once per month per
// agent or project, so a caller that raises budget.warning and budget.exceeded events from
// these flags raises each once.
struct BudgetEvents {
  bool agent_warning = false;  // agent spend reached warn_percent of its cap
  bool project_warning = false;
  bool agent_exceeded = false;  // agent spend reached its cap
  bool project_exceeded = false;

  bool operator==(const BudgetEvents&) const = default;
};

// One agent's or project's counters for the month, for display and tests.
struct BudgetUsage {
  int64_t month_index = 0;  // see utcMonthIndex; 0 when there is no state yet
  int64_t spent_micros = 0;
  int64_t reserved_micros = 0;
};

class BudgetTracker {
 public:
  BudgetTracker() = default;
  BudgetTracker(const BudgetTracker&) = delete;
  BudgetTracker& operator=(const BudgetTracker&) = delete;

  // Loads the spend of the month that contains `month_time_ms` (the ledger's monthSpend), for
  // each agent and project. A value never lowers a counter of that month: at start-up it sets
  // the counter, and a later reload (for example to take in other instances' rows) only
  // raises counters that the ledger shows higher. Spend that this process settled but has not
  // yet written to the ledger is counted once either way, because the maximum is kept and not
  // the sum. Seeds for an earlier month than a counter's current one are ignored.
  void seedSpend(int64_t month_time_ms, const std::map<std::string, int64_t>& agent_spend,
                 const std::map<std::string, int64_t>& project_spend);

  // Reserves `worst_case_micros` (negative counts as 0) against the agent's and the project's
  // caps, see the header comment.
  std::expected<Reservation, BudgetRefusal> reserve(std::string_view agent_id,
                                                    std::string_view project_id,
                                                    int64_t worst_case_micros,
                                                    const BudgetCaps& caps, int64_t now_ms);

  // Replaces the reservation by `actual_micros` (negative counts as 0) of spend in the month
  // of `now_ms`, and reports the thresholds this crossed under `caps` for the first time this
  // month. kNotFound when the reservation was already settled or released, or never made by
  // this tracker; nothing changes then.
  Result<BudgetEvents> settle(const Reservation& reservation, int64_t actual_micros,
                              const BudgetCaps& caps, int64_t now_ms);

  // Drops the reservation of a request that never reached the upstream. kNotFound as for
  // settle.
  Result<void> release(const Reservation& reservation);

  // The counters of an agent or project as of `now_ms` (a later month reads as zero spend).
  BudgetUsage agentUsage(std::string_view agent_id, int64_t now_ms) const;
  BudgetUsage projectUsage(std::string_view project_id, int64_t now_ms) const;

  // Reservations neither settled nor released, for metrics and leak checks.
  size_t outstandingReservations() const;

 private:
  struct Account {
    int64_t month_index = 0;
    int64_t spent = 0;
    int64_t reserved = 0;
    bool warned = false;
    bool exceeded = false;
  };

  // Moves the account to `month_index` if that is later, resetting spend and flags.
  static void rollTo(Account& account, int64_t month_index);
  static BudgetUsage usageOf(const StringMap<Account>& accounts, std::string_view id,
                             int64_t now_ms);
  // Adds spend to the account and reports the thresholds newly crossed.
  static void addSpend(Account& account, int64_t micros, const BudgetCap& cap, bool& warning,
                       bool& exceeded);

  // The accounts and amount of one outstanding reservation. Accounts are never erased and the
  // maps are node-based, so the pointers stay valid.
  struct AccountHold {
    Account* agent = nullptr;
    Account* project = nullptr;
    int64_t micros = 0;
  };

  mutable std::mutex mutex_;
  StringMap<Account> agents_;
  StringMap<Account> projects_;
  std::unordered_map<uint64_t, AccountHold> outstanding_;
  uint64_t next_id_ = 1;
};

// Converts a budget in cents to micro-dollars, saturating at INT64_MAX.
int64_t centsToMicros(int64_t cents);

}  // namespace keystore::limits
