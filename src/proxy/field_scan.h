// Lookups of header fields by a scan of the field list.
//
// Beast's find, count, equal_range and operator[] walk a tree ordered by case-insensitive name
// comparison, which compares names character by character at every node. The relay's messages
// carry a handful of fields, and a scan that compares Beast's field codes, plain integers,
// costs less. Beast keeps fields of one name together and in insertion order in
// the list, so a scan finds them in the order the tree lookups would.
//
// Names without a field code (http::field::unknown) are compared case-insensitively.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/container/small_vector.hpp>
#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "proxy/header_arena.h"

namespace keystore::proxy {

// Calls `visit(value)` for every field with code `name`, in order.
template <typename Visit>
void forEachValue(const Fields& fields, boost::beast::http::field name, Visit&& visit) {
  for (const auto& field : fields) {
    if (field.name() == name) {
      visit(std::string_view(field.value()));
    }
  }
}

// Returns the value of the first field with code `name`, or empty when there is none.
inline std::string_view firstValue(const Fields& fields, boost::beast::http::field name) {
  for (const auto& field : fields) {
    if (field.name() == name) {
      return field.value();
    }
  }
  return {};
}

// Returns how many fields have code `name`.
inline size_t countFields(const Fields& fields, boost::beast::http::field name) {
  size_t count = 0;
  for (const auto& field : fields) {
    count += field.name() == name ? 1 : 0;
  }
  return count;
}

// Removes every field whose name, in any case, is one of `names`, in one pass.
inline void eraseNamed(Fields& fields, std::initializer_list<std::string_view> names) {
  boost::container::small_vector<Fields::const_iterator, 4> matches;
  for (auto field = fields.begin(); field != fields.end(); ++field) {
    std::string_view name = field->name_string();
    for (std::string_view candidate : names) {
      if (boost::beast::iequals(name, candidate)) {
        matches.push_back(field);
        break;
      }
    }
  }
  // Erasing one field leaves iterators to the others valid.
  for (auto field : matches) {
    fields.erase(field);
  }
}

}  // namespace keystore::proxy
