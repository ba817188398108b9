// Usage reporting for streamed OpenAI-style chat completions, which carry no usage unless the
// request sets `stream_options.include_usage`. The proxy adds that option to the request with
// addStreamUsageOption. UsageChunkFilter then removes the resulting usage chunk from the
// client-bound stream. So the client sees the stream it requested, while the metering still
// reads the usage from the upstream bytes.
//
// Thread-safety: addStreamUsageOption is a pure function; a UsageChunkFilter belongs to one
// response and is not shared.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "metering/usage_json.h"
#include "metering/usage_sse.h"

namespace keystore::metering {

// Returns `body` with `stream_options.include_usage` set to true, when `body` is a JSON object
// whose `stream` is true and whose `stream_options` has no `include_usage` or a single one that
// is `false`. Returns nullopt when no rewrite is needed or the body is not one valid JSON
// object (the body is then forwarded as it is).
//
// Only the needed bytes change: `,"stream_options":{"include_usage":true}` is inserted before
// the final '}', or `"include_usage":true` at the start of an existing `stream_options` object,
// or the object in place of `"stream_options":null`, or `true` in place of the client's
// `false`. Every other byte, member and member order is kept. The caller must send the new
// Content-Length. A body with `stream_options` twice, or with a `stream_options` that is not an
// object or null, is not rewritten.
std::optional<std::string> addStreamUsageOption(std::string_view body);

// The request body's streaming settings that addStreamUsageOption reads, for a caller that
// parsed the body itself. Member names below are top-level members of a JSON object body.
struct StreamOptionsFacts {
  enum class Options { kAbsent, kNull, kObject, kOther };

  bool root_is_object = false;
  bool stream = false;                 // the last `stream` member is `true`
  int options_count = 0;               // `stream_options` members
  Options options = Options::kAbsent;  // the type of the last `stream_options`
  std::size_t options_members = 0;     // members of the last `stream_options` object
  int include_usage_count = 0;         // `stream_options.include_usage` members, of any type
  bool include_usage_false = false;    // the last of them is `false`

  // Records one `stream_options.include_usage` member.
  void countIncludeUsage(bool is_false) {
    ++include_usage_count;
    include_usage_false = is_false;
  }
};

// addStreamUsageOption for a body already parsed into `facts` as one complete JSON document.
// Gives the same bytes as addStreamUsageOption(body).
std::optional<std::string> addStreamUsageOption(std::string_view body,
                                                const StreamOptionsFacts& facts);

// Removes from an upstream chat-completion event stream the usage-only chunk: a `data` event
// whose JSON object has `choices` as an empty array and a non-null `usage` object. Every other
// byte passes through unchanged and at once. The exception is an unfinished event that may
// still turn out to be that chunk. Its bytes are held until the event ends or is ruled out,
// and an event held past kMaxHeldBytes is passed on, since a usage chunk is far smaller.
//
// Create one only for a request whose body addStreamUsageOption rewrote; when the client asked
// for usage itself, its stream is relayed unfiltered. Other chunks keep the `"usage":null`
// member the option makes the upstream add.
class UsageChunkFilter : private SseParser::Handler, private JsonVisitor {
 public:
  static constexpr std::size_t kMaxHeldBytes = 64 * 1024;

  UsageChunkFilter();

  // Appends to `client` the bytes of `upstream` that can go to the client now. `client` may
  // stay empty; do not send an empty chunk for it.
  void write(std::string_view upstream, std::string& client);
  // Appends the bytes still held once the upstream stream has ended.
  void finish(std::string& client);

  // Bytes held back so far, for tests and metrics.
  std::size_t heldBytes() const { return held_.size(); }

 private:
  void onDataLine(bool first) override;
  void onData(std::string_view bytes) override;
  void onEventEnd(std::string_view type) override;

  void onScalar(const JsonPath& path, const JsonScalar& value) override;
  void onContainerBegin(const JsonPath& path, bool is_array) override;
  bool stopRequested() const override { return ruled_out_; }

  void feedScanner(std::string_view bytes);
  bool isUsageChunk();
  void startEvent();
  void releaseHeld(std::string& client);

  SseParser event_parser_;
  JsonScanner scanner_;
  std::string held_;
  // Set at each event end: the next LF may still belong to the CR that ended that event.
  bool at_event_boundary_ = false;
  bool last_event_removed_ = false;
  bool event_ended_ = false;

  // What the current event's data has shown so far.
  bool has_data_ = false;
  bool ruled_out_ = false;
  bool root_is_object_ = false;
  bool choices_is_array_ = false;
  bool usage_is_object_ = false;
};

}  // namespace keystore::metering
