#include "admin/pagination.h"

#include <algorithm>
#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

namespace keystore::admin {
namespace {

constexpr int64_t kMaxPageSize = 1000;
// Cursors carry a prefix so that an id or a number pasted by mistake is refused clearly.
constexpr std::string_view kCursorPrefix = "off_";

constexpr std::array<std::string_view, 14> kPagedLists = {
    "/api/v1/projects",
    "/api/v1/catalog",
    "/api/v1/projects/{}/providers",
    "/api/v1/projects/{}/agents",
    "/api/v1/agents/{}/tokens",
    "/api/v1/pools",
    "/api/v1/prices",
    "/api/v1/prices/current",
    "/api/v1/projects/{}/concierge",
    "/api/v1/concierge",
    "/api/v1/admin-keys",
    "/api/v1/organizations",
    "/api/v1/organizations/{}/members",
    "/api/v1/projects/{}/webhooks",
};

std::optional<int64_t> parseCount(std::string_view text) {
  int64_t value = 0;
  auto parsed = std::from_chars(text.data(), text.data() + text.size(), value);
  if (parsed.ec != std::errc{} || parsed.ptr != text.data() + text.size() || text.empty()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

bool isPagedList(std::string_view method, std::string_view path_template) {
  return method == "GET" &&
         std::find(kPagedLists.begin(), kPagedLists.end(), path_template) != kPagedLists.end();
}

Result<std::string> pageList(const std::string& body, const std::optional<std::string>& limit,
                             const std::optional<std::string>& cursor) {
  int64_t page_size = kMaxPageSize;
  if (limit) {
    std::optional<int64_t> parsed = parseCount(*limit);
    if (!parsed || *parsed < 1 || *parsed > kMaxPageSize) {
      return fail(ErrorCode::kInvalidRequest,
                  "query parameter limit must be a whole number from 1 to 1000");
    }
    page_size = *parsed;
  }
  int64_t offset = 0;
  if (cursor) {
    std::optional<int64_t> parsed;
    if (cursor->starts_with(kCursorPrefix)) {
      parsed = parseCount(std::string_view(*cursor).substr(kCursorPrefix.size()));
    }
    if (!parsed || *parsed < 0) {
      return fail(ErrorCode::kInvalidRequest,
                  "query parameter cursor is not a cursor this list returned; pass the "
                  "next_cursor of the previous page");
    }
    offset = *parsed;
  }

  boost::system::error_code error;
  boost::json::value parsed_body = boost::json::parse(body, error);
  if (error || !parsed_body.is_object() || !parsed_body.as_object().contains("data") ||
      !parsed_body.as_object().at("data").is_array()) {
    return fail(ErrorCode::kInternal, "a paged list route returned a body without a data array");
  }
  boost::json::object& object = parsed_body.as_object();
  boost::json::array& items = object["data"].as_array();
  const int64_t total = static_cast<int64_t>(items.size());
  const int64_t begin = std::min(offset, total);
  const int64_t end = std::min(begin + page_size, total);
  boost::json::array page(items.begin() + begin, items.begin() + end);
  object["data"] = std::move(page);
  if (end < total) {
    object["next_cursor"] = std::string(kCursorPrefix) + std::to_string(end);
  } else {
    object["next_cursor"] = nullptr;
  }
  return boost::json::serialize(parsed_body);
}

}  // namespace keystore::admin
