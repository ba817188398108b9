// Pagination of the management API's plain lists ({"data": [...]}), applied in one place
// after a list route's handler ran, so every such list pages the same way.
//
// A caller asks for a page with ?limit=N (1-1000) and continues with ?cursor=C, the
// next_cursor of the previous page. Without either parameter the whole list is returned, as
// before. The cursor is opaque to callers and encodes the position after the page. Lists
// ordered oldest first (projects, agents, tokens, keys, members) grow at the end and page
// exactly. NOTE: in lists ordered newest first (prices, concierge requests), an item added
// between two requests moves the rest down, so the next page repeats an item.
//
// Free functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace keystore::admin {

// Whether the route (method and path template) returns a plain list that pages here. Lists
// with their own cursors (audit entries, webhook deliveries) and reports are not among them.
bool isPagedList(std::string_view method, std::string_view path_template);

// Cuts `body` (a serialized {"data": [...]}) to the page that `limit` and `cursor` select and
// adds "next_cursor" (null on the last page). kInvalidRequest for a limit outside 1-1000 or a
// cursor this function did not produce.
Result<std::string> pageList(const std::string& body, const std::optional<std::string>& limit,
                             const std::optional<std::string>& cursor);

}  // namespace keystore::admin
