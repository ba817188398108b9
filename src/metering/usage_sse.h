// SseParser: splits a server-sent event stream (text/event-stream) into fields and events as
// its bytes arrive. It follows the event-stream rules of the WHATWG HTML standard. Lines end in
// CR LF, LF or a lone CR. A blank line ends an event, and a line starting with ':' is a
// comment. One space after a field's colon is dropped.
//
// The parser buffers no event: `data` values are handed to the handler piece by piece as they
// arrive. It keeps only a field-name prefix (kMaxSseFieldNameBytes) and the `event` type prefix
// (kMaxSseEventTypeBytes), so memory is bounded whatever the event size.
//
// Thread-safety: one parser per stream; not shared.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace keystore::metering {

inline constexpr std::size_t kMaxSseFieldNameBytes = 16;
inline constexpr std::size_t kMaxSseEventTypeBytes = 64;

class SseParser {
 public:
  // Receives the stream's data and event boundaries. Called synchronously from parse().
  class Handler {
   public:
    virtual ~Handler() = default;
    // A `data` line begins; `first` is true for the first data line of the event. The event's
    // data is its data line values joined with "\n".
    virtual void onDataLine(bool first) = 0;
    // The next bytes of the current data line's value, without the line terminator.
    virtual void onData(std::string_view bytes) = 0;
    // A blank line ended an event. `type` is the event's last `event` field (empty when none),
    // cut at kMaxSseEventTypeBytes. Also called for an event without data lines.
    virtual void onEventEnd(std::string_view type) = 0;
  };

  explicit SseParser(Handler& handler) : handler_(handler) {}

  // Parses bytes up to and including the line terminator that ends the next event, or all of
  // them when no event ends in `bytes`. Returns the number of bytes consumed.
  std::size_t parseEvent(std::string_view bytes);
  // Parses all of `bytes`.
  void parse(std::string_view bytes);

  // True when the last byte parsed was a CR that ended a line, so a LF that follows belongs to
  // that line terminator.
  bool lineFeedPending() const { return line_feed_pending_; }
  // True when bytes of an unfinished event were parsed.
  bool inEvent() const { return in_event_; }

 private:
  enum class State { kLineStart, kFieldName, kValueStart, kValue };
  enum class Field { kData, kEvent, kIgnored };

  void beginValue();
  void endLine(char terminator);

  Handler& handler_;
  State state_ = State::kLineStart;
  Field field_ = Field::kIgnored;
  std::string field_name_;
  bool field_name_too_long_ = false;
  std::string event_type_;
  bool event_has_data_ = false;
  bool in_event_ = false;
  bool line_feed_pending_ = false;
};

}  // namespace keystore::metering
