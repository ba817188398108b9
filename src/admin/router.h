// Route matching for the management API: a path template such as
// "/api/v1/projects/{}/agents" against the decoded segments of a request path.
//
// Free functions on values, thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::admin {

// Splits a route template into its segments ("/a/{}/b" becomes "a", "{}", "b").
std::vector<std::string_view> templateSegments(std::string_view path_template);

// Whether `segments` fit the template. Each "{}" captures one segment into `params`, in
// order. `params` is left empty when the segments do not match.
bool matchTemplate(std::string_view path_template, std::span<const std::string> segments,
                   std::vector<std::string>& params);

struct RouteLookup {
  enum class Outcome { kFound, kMethodNotAllowed, kNotFound };
  Outcome outcome = Outcome::kNotFound;
  size_t index = 0;                 // kFound: the matching entry of the table
  std::vector<std::string> params;  // kFound: captured segments
  std::string allow;                // kMethodNotAllowed: the Allow header value, e.g. "GET, POST"
};

// Finds the entry of `routes` whose method and template match. Each entry needs the members
// `method` and `path`.
template <typename Route>
RouteLookup findRoute(std::span<const Route> routes, std::string_view method,
                      std::span<const std::string> segments) {
  RouteLookup lookup;
  for (size_t i = 0; i < routes.size(); ++i) {
    std::vector<std::string> params;
    if (!matchTemplate(routes[i].path, segments, params)) {
      continue;
    }
    if (routes[i].method == method) {
      return RouteLookup{RouteLookup::Outcome::kFound, i, std::move(params), {}};
    }
    lookup.outcome = RouteLookup::Outcome::kMethodNotAllowed;
    if (!lookup.allow.empty()) {
      lookup.allow += ", ";
    }
    lookup.allow += routes[i].method;
  }
  return lookup;
}

}  // namespace keystore::admin
