// Secret: owned bytes of a key, token or password that must not leak.
//
// A Secret never prints its value: streaming or formatting it yields "[redacted]". It has no
// implicit conversion to a string; `reveal()` is the one explicit, greppable way to read it.
// The buffer is zeroed (secureZero) when the Secret is destroyed or overwritten.
// Not thread-safe for mutation; concurrent const access is fine.
#pragma once

#include <fmt/format.h>

#include <ostream>
#include <string>
#include <string_view>

namespace keystore {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const char* data, size_t size) : value_(data, size) {}
  ~Secret() { wipe(); }

  Secret(const Secret& other) : value_(other.value_) {}
  Secret(Secret&& other) noexcept;
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;

  // The plaintext. Keep the returned view no longer than this Secret lives.
  std::string_view reveal() const { return value_; }
  // Writable access for code that fills a secret in place (key derivation, decryption).
  std::string& revealMutable() { return value_; }

  size_t size() const { return value_.size(); }
  bool empty() const { return value_.empty(); }

  // Constant-time comparison, so a mismatch position cannot be timed.
  bool equals(std::string_view other) const;

 private:
  void wipe();

  std::string value_;
};

inline std::ostream& operator<<(std::ostream& out, const Secret&) {
  return out << "[redacted]";
}

// A view of secret bytes that something else owns and wipes (a request header, a Secret). Like
// Secret, it never prints its value, and `reveal()` reads it.
class SecretView {
 public:
  SecretView() = default;
  explicit SecretView(std::string_view value) : value_(value) {}

  std::string_view reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

  // Constant-time comparison, so a mismatch position cannot be timed.
  bool equals(std::string_view other) const;

 private:
  std::string_view value_;
};

inline std::ostream& operator<<(std::ostream& out, const SecretView&) {
  return out << "[redacted]";
}

}  // namespace keystore

template <>
struct fmt::formatter<keystore::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const keystore::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("[redacted]", ctx);
  }
};

template <>
struct fmt::formatter<keystore::SecretView> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const keystore::SecretView&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format("[redacted]", ctx);
  }
};
