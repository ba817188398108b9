// Reading management API request bodies: a JSON object whose members are checked one by one,
// each error naming the member at fault.
//
// Free functions on values, thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::admin {

// A member that may be absent, null or set. PATCH bodies tell "leave alone" (absent) from
// "clear" (null).
template <typename T>
struct OptionalField {
  bool present = false;    // the member exists, possibly as null
  std::optional<T> value;  // empty when absent or null
};

// Parses a request body. An empty body reads as an empty object. Anything that is not JSON is
// kInvalidJson, and JSON other than an object is kInvalidRequest.
Result<boost::json::object> parseObjectBody(std::string_view body);

// kInvalidRequest naming the first member that is not in `allowed`, so a misspelt member
// ("apikey") is reported rather than silently ignored.
Result<void> rejectUnknownMembers(const boost::json::object& body,
                                  std::initializer_list<std::string_view> allowed);

// Readers for one member. A member of the wrong type is kInvalidRequest naming it, and null is
// accepted only where `allow_null` is set.
Result<OptionalField<std::string>> readString(const boost::json::object& body,
                                              std::string_view name, bool allow_null = false);
Result<std::string> readRequiredString(const boost::json::object& body, std::string_view name);
Result<OptionalField<int64_t>> readInteger(const boost::json::object& body, std::string_view name,
                                           bool allow_null = false);

// Moves a string member into a Secret and wipes the parsed copy, for credentials. Absent is
// nullopt, and any type other than a string is kInvalidRequest.
Result<std::optional<Secret>> takeSecretString(boost::json::object& body, std::string_view name);

}  // namespace keystore::admin
