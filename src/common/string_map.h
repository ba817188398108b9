// Unordered maps keyed by std::string that take std::string_view probes, so a lookup on the
// request path builds no std::string (heterogeneous lookup).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace keystore {

// Hashes std::string keys and std::string_view probes alike.
struct StringKeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringKeyHash, std::equal_to<>>;

// Returns the entry for `key`, inserting a default-constructed one when there is none. Unlike
// operator[], it copies the key only on insertion.
template <typename Value>
Value& entryFor(StringMap<Value>& map, std::string_view key) {
  auto found = map.find(key);
  if (found != map.end()) {
    return found->second;
  }
  return map.try_emplace(std::string(key)).first->second;
}

}  // namespace keystore
