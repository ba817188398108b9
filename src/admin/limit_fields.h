// Reading rate limits and budgets from management API request bodies, shared by the agent and
// project routes. Each reader accepts an integer in its range or null, which clears the value
// (an agent then falls back to its project's default, a project has no default or budget), and
// rejects anything else with kInvalidRequest naming the member.
//
// Free functions on values, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string_view>

#include "admin/json_body.h"
#include "common/error.h"

namespace keystore::admin {

// Limits above this are surely typos, because a workload that large should not be limited.
inline constexpr int64_t kMaxRateLimit = 1'000'000'000;
// Ten billion dollars. Budgets are compared in micro-dollars (cents * 10,000), and this bound
// keeps that product far from overflowing int64.
inline constexpr int64_t kMaxBudgetCents = 1'000'000'000'000;

// A requests or tokens per minute or per day limit: 1 to kMaxRateLimit.
Result<OptionalField<int64_t>> readRateLimit(const boost::json::object& body,
                                             std::string_view name);
// A monthly budget in cents: 0 (nothing may be spent) to kMaxBudgetCents.
Result<OptionalField<int64_t>> readBudgetCents(const boost::json::object& body,
                                               std::string_view name);
// The share of a budget at which a warning is sent, in percent: 1 to 100.
Result<OptionalField<int64_t>> readWarnPercent(const boost::json::object& body,
                                               std::string_view name);

}  // namespace keystore::admin
