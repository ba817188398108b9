// JsonScanner: runs Boost.JSON's incremental SAX parser (boost::json::basic_parser) over JSON text
// that arrives in pieces, and reports each value to a JsonVisitor together with its path from
// the document root. It keeps no copy of the document.
//
// Memory is bounded whatever the document size: one frame per open container (at most
// kMaxDepth), each holding a key prefix of at most kMaxKeyBytes, plus one string prefix of at
// most kMaxStringBytes. Longer keys never match a path; longer strings are reported cut, with
// `truncated` set. Frames and key buffers are reused. For a document nested no deeper than
// kJsonInlineDepth they need no allocation after the scanner's construction, and deeper levels
// allocate once per scanner.
//
// Thread-safety: a scanner and its visitor belong to one document stream; not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keystore::metering {

// Documents nested deeper than this fail to parse; provider responses nest far less.
inline constexpr std::size_t kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxJsonKeyBytes = 64;
inline constexpr std::size_t kMaxJsonStringBytes = 256;
// Nesting levels whose frames and keys are allocated with the scanner.
inline constexpr std::size_t kJsonInlineDepth = 8;

// One open container on the path: an array with the index of its current element, or an
// object with the key of its current member.
struct JsonPathFrame {
  bool is_array = false;
  std::size_t index = 0;
  // The key prefix, in a buffer the scanner owns, valid while the frame is open.
  std::string_view key;
  bool key_too_long = false;
};

// The position of a value: the open containers from the root down to it. The root value has
// an empty path.
class JsonPath {
 public:
  explicit JsonPath(std::span<const JsonPathFrame> frames) : frames_(frames) {}

  std::size_t size() const { return frames_.size(); }
  bool empty() const { return frames_.empty(); }
  std::span<const JsonPathFrame> frames() const { return frames_; }

  // True when the path has exactly these segments. A segment is an object key, or "[]" for
  // any array element: is({"choices", "[]", "delta"}).
  bool is(std::initializer_list<std::string_view> segments) const;
  // True when the path begins with these segments (same notation as is()).
  bool startsWith(std::initializer_list<std::string_view> segments) const;
  // The path without its first `count` segments.
  JsonPath suffix(std::size_t count) const;
  // The key of the innermost segment; empty for the root, an array element or a key longer
  // than kMaxJsonKeyBytes.
  std::string_view lastKey() const;

 private:
  bool matchesPrefix(std::initializer_list<std::string_view> segments) const;

  std::span<const JsonPathFrame> frames_;
};

// A scalar value. Numbers that are integral and fit in int64 (including doubles such as 5.0)
// are kInteger; other numbers are kNumber.
struct JsonScalar {
  enum class Type { kString, kInteger, kNumber, kBool, kNull };

  Type type = Type::kNull;
  int64_t integer = 0;
  bool boolean = false;
  std::string_view
      text;  // kString: the value, cut at kMaxJsonStringBytes and valid during the call only
  bool truncated = false;  // kString: the value was longer than kMaxJsonStringBytes

  bool isString() const { return type == Type::kString; }
  // A complete string value (not cut).
  bool isFullString() const { return type == Type::kString && !truncated; }
  bool isNonNegativeInteger() const { return type == Type::kInteger && integer >= 0; }
};

// Receives the values of a scanned document. Called synchronously from JsonScanner::write().
class JsonVisitor {
 public:
  virtual ~JsonVisitor() = default;

  virtual void onScalar(const JsonPath& path, const JsonScalar& value) = 0;
  // An object or array begins at `path`.
  virtual void onContainerBegin(const JsonPath& /*path*/, bool /*is_array*/) {}
  // The object or array at `path` ended with `size` members or elements.
  virtual void onContainerEnd(const JsonPath& /*path*/, bool /*is_array*/, std::size_t /*size*/) {}
  // Checked after each callback; returning true ends the scan in state kStopped.
  virtual bool stopRequested() const { return false; }
  // Returns whether the scan reports what lies in member `key` of a root object. For a declined
  // member the scanner still parses the value but reports nothing of it, which spares a visitor
  // that reads only a few members the path work on the rest (message text, vectors). Keys
  // longer than kMaxJsonKeyBytes are always reported.
  virtual bool wantsRootMember(std::string_view /*key*/) { return true; }
};

class JsonScanner {
 public:
  enum class State {
    kParsing,   // more input is expected
    kComplete,  // a whole document was parsed
    kFailed,    // the input is not one JSON document (or nests deeper than kMaxJsonDepth)
    kStopped,   // the visitor asked to stop
  };

  explicit JsonScanner(JsonVisitor& visitor);
  ~JsonScanner();

  JsonScanner(const JsonScanner&) = delete;
  JsonScanner& operator=(const JsonScanner&) = delete;

  // Parses the next piece of the document. Pieces may split the text anywhere, even inside a
  // number, string or escape. Input after a failure or stop is ignored; non-whitespace after a
  // complete document fails it.
  void write(std::string_view bytes);
  // Marks the end of the input. A document still open fails (a bare number completes).
  State finish();
  // Discards all state, to scan a new document.
  void reset();

  State state() const { return state_; }

 private:
  class Parser;

  // A parser carries several kilobytes of buffers, so a finished scanner leaves its parser,
  // reset, to the next scanner on the same thread instead of freeing it. A request keeps its
  // scanner from admission to its last byte, so a thread needs one per request in flight. 64
  // cover 64 connections per thread, for a few hundred kilobytes at most.
  static constexpr std::size_t kIdleParsersPerThread = 64;
  // Returns the calling thread's idle parsers, or null once they were destroyed at thread exit.
  static std::vector<std::unique_ptr<Parser>>* idleParsers();

  std::unique_ptr<Parser> parser_;
  State state_ = State::kParsing;
};

}  // namespace keystore::metering
