#include "limits/budget_tracker.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "limits/utc_calendar.h"

namespace keystore::limits {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return kInt64Max;
  }
  return sum;
}

// "$12.345678": micro-dollars as dollars with every digit kept.
std::string formatDollars(int64_t micros) {
  char text[40];
  std::snprintf(text, sizeof(text), "$%lld.%06lld", static_cast<long long>(micros / 1'000'000),
                static_cast<long long>(micros % 1'000'000));
  return text;
}

// Whether spend + reserved + request <= cap, computed without overflow.
bool fits(int64_t spent, int64_t reserved, int64_t request, int64_t cap) {
  return static_cast<__int128>(spent) + reserved + request <= cap;
}

}  // namespace

int64_t centsToMicros(int64_t cents) {
  if (cents <= 0) {
    return 0;
  }
  if (cents > kInt64Max / kMicrosPerCent) {
    return kInt64Max;
  }
  return cents * kMicrosPerCent;
}

Error BudgetRefusal::toError() const {
  std::string scope_name = scope == BudgetScope::kAgent ? "agent" : "project";
  return Error{ErrorCode::kBudgetExceeded,
               "The " + scope_name + "'s monthly budget of " + formatDollars(cap_micros) +
                   " cannot cover this request, which may cost up to " +
                   formatDollars(requested_micros) + ": " + formatDollars(spent_micros) +
                   " is spent and " + formatDollars(reserved_micros) +
                   " is reserved by requests in flight. The budget resets at 00:00 UTC on the "
                   "first day of next month."};
}

void BudgetTracker::rollTo(Account& account, int64_t month_index) {
  if (month_index <= account.month_index) {
    return;
  }
  account.month_index = month_index;
  account.spent = 0;
  account.warned = false;
  account.exceeded = false;
}

void BudgetTracker::addSpend(Account& account, int64_t micros, const BudgetCap& cap, bool& warning,
                             bool& exceeded) {
  account.spent = saturatingAdd(account.spent, micros);
  if (!cap.cents) {
    return;
  }
  const int64_t cap_micros = centsToMicros(*cap.cents);
  if (cap.warn_percent && !account.warned &&
      static_cast<__int128>(account.spent) * 100 >=
          static_cast<__int128>(cap_micros) * *cap.warn_percent) {
    account.warned = true;
    warning = true;
  }
  if (!account.exceeded && account.spent >= cap_micros) {
    account.exceeded = true;
    exceeded = true;
  }
}

void BudgetTracker::seedSpend(int64_t month_time_ms,
                              const std::map<std::string, int64_t>& agent_spend,
                              const std::map<std::string, int64_t>& project_spend) {
  const int64_t month_index = utcMonthIndex(month_time_ms);
  std::lock_guard lock(mutex_);
  auto seed = [month_index](StringMap<Account>& accounts,
                            const std::map<std::string, int64_t>& spend) {
    for (const auto& [id, micros] : spend) {
      Account& account = entryFor(accounts, id);
      rollTo(account, month_index);
      if (account.month_index == month_index) {
        account.spent = std::max(account.spent, micros);
      }
    }
  };
  seed(agents_, agent_spend);
  seed(projects_, project_spend);
}

std::expected<Reservation, BudgetRefusal> BudgetTracker::reserve(std::string_view agent_id,
                                                                 std::string_view project_id,
                                                                 int64_t worst_case_micros,
                                                                 const BudgetCaps& caps,
                                                                 int64_t now_ms) {
  const int64_t request = std::max<int64_t>(worst_case_micros, 0);
  const int64_t month_index = utcMonthIndex(now_ms);
  std::lock_guard lock(mutex_);
  Account& agent = entryFor(agents_, agent_id);
  Account& project = entryFor(projects_, project_id);
  rollTo(agent, month_index);
  rollTo(project, month_index);

  struct Check {
    BudgetScope scope;
    const Account& account;
    const BudgetCap& cap;
  };
  for (const Check& check : {Check{BudgetScope::kAgent, agent, caps.agent},
                             Check{BudgetScope::kProject, project, caps.project}}) {
    if (!check.cap.cents || request == 0) {
      continue;
    }
    const int64_t cap_micros = centsToMicros(*check.cap.cents);
    if (!fits(check.account.spent, check.account.reserved, request, cap_micros)) {
      return std::unexpected(BudgetRefusal{.scope = check.scope,
                                           .cap_micros = cap_micros,
                                           .spent_micros = check.account.spent,
                                           .reserved_micros = check.account.reserved,
                                           .requested_micros = request,
                                           .resets_at_ms = utcNextMonthStart(now_ms)});
    }
  }

  agent.reserved = saturatingAdd(agent.reserved, request);
  project.reserved = saturatingAdd(project.reserved, request);
  Reservation reservation{.id = next_id_++, .agent_id = {}, .project_id = {}, .micros = request};
  outstanding_.emplace(reservation.id, AccountHold{&agent, &project, request});
  return reservation;
}

Result<BudgetEvents> BudgetTracker::settle(const Reservation& reservation, int64_t actual_micros,
                                           const BudgetCaps& caps, int64_t now_ms) {
  const int64_t actual = std::max<int64_t>(actual_micros, 0);
  const int64_t month_index = utcMonthIndex(now_ms);
  std::lock_guard lock(mutex_);
  auto found = outstanding_.find(reservation.id);
  if (found == outstanding_.end()) {
    return fail(ErrorCode::kNotFound,
                "budget reservation " + std::to_string(reservation.id) + " is not outstanding");
  }
  const AccountHold hold = found->second;
  outstanding_.erase(found);

  BudgetEvents events;
  Account& agent = *hold.agent;
  Account& project = *hold.project;
  agent.reserved -= hold.micros;
  project.reserved -= hold.micros;
  rollTo(agent, month_index);
  rollTo(project, month_index);
  // A cost from a month that has ended for the account is that month's, not this one's.
  if (agent.month_index == month_index) {
    addSpend(agent, actual, caps.agent, events.agent_warning, events.agent_exceeded);
  }
  if (project.month_index == month_index) {
    addSpend(project, actual, caps.project, events.project_warning, events.project_exceeded);
  }
  return events;
}

Result<void> BudgetTracker::release(const Reservation& reservation) {
  std::lock_guard lock(mutex_);
  auto found = outstanding_.find(reservation.id);
  if (found == outstanding_.end()) {
    return fail(ErrorCode::kNotFound,
                "budget reservation " + std::to_string(reservation.id) + " is not outstanding");
  }
  found->second.agent->reserved -= found->second.micros;
  found->second.project->reserved -= found->second.micros;
  outstanding_.erase(found);
  return {};
}

BudgetUsage BudgetTracker::usageOf(const StringMap<Account>& accounts, std::string_view id,
                                   int64_t now_ms) {
  auto found = accounts.find(id);
  if (found == accounts.end()) {
    return BudgetUsage{};
  }
  const Account& account = found->second;
  const int64_t month_index = utcMonthIndex(now_ms);
  return BudgetUsage{.month_index = std::max(account.month_index, month_index),
                     .spent_micros = month_index > account.month_index ? 0 : account.spent,
                     .reserved_micros = account.reserved};
}

BudgetUsage BudgetTracker::agentUsage(std::string_view agent_id, int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  return usageOf(agents_, agent_id, now_ms);
}

BudgetUsage BudgetTracker::projectUsage(std::string_view project_id, int64_t now_ms) const {
  std::lock_guard lock(mutex_);
  return usageOf(projects_, project_id, now_ms);
}

size_t BudgetTracker::outstandingReservations() const {
  std::lock_guard lock(mutex_);
  return outstanding_.size();
}

}  // namespace keystore::limits
