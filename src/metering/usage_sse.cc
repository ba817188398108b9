#include "metering/usage_sse.h"

namespace keystore::metering {

std::size_t SseParser::parseEvent(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    char c = bytes[i];
    if (line_feed_pending_) {
      line_feed_pending_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }

    switch (state_) {
      case State::kLineStart:
        if (c == '\r' || c == '\n') {
          line_feed_pending_ = c == '\r';
          ++i;
          std::string type;
          type.swap(event_type_);
          event_has_data_ = false;
          in_event_ = false;
          handler_.onEventEnd(type);
          return i;
        }
        in_event_ = true;
        field_name_.clear();
        field_name_too_long_ = false;
        state_ = State::kFieldName;
        break;

      case State::kFieldName: {
        std::size_t end = bytes.find_first_of(":\r\n", i);
        std::size_t stop = end == std::string_view::npos ? bytes.size() : end;
        std::string_view part = bytes.substr(i, stop - i);
        std::size_t room = kMaxSseFieldNameBytes - field_name_.size();
        field_name_too_long_ = field_name_too_long_ || part.size() > room;
        field_name_.append(part.substr(0, room));
        i = stop;
        if (end == std::string_view::npos) {
          break;
        }
        beginValue();
        if (bytes[i] == ':') {
          ++i;
          state_ = State::kValueStart;
        } else {
          // A line without a colon is a field with an empty value.
          endLine(bytes[i]);
          ++i;
        }
        break;
      }

      case State::kValueStart:
        if (c == ' ') {
          ++i;
        }
        state_ = State::kValue;
        break;

      case State::kValue: {
        std::size_t end = bytes.find_first_of("\r\n", i);
        std::size_t stop = end == std::string_view::npos ? bytes.size() : end;
        std::string_view part = bytes.substr(i, stop - i);
        if (!part.empty() && field_ == Field::kData) {
          handler_.onData(part);
        } else if (field_ == Field::kEvent) {
          event_type_.append(part.substr(0, kMaxSseEventTypeBytes - event_type_.size()));
        }
        i = stop;
        if (end != std::string_view::npos) {
          endLine(bytes[i]);
          ++i;
        }
        break;
      }
    }
  }
  return i;
}

void SseParser::parse(std::string_view bytes) {
  while (!bytes.empty()) {
    bytes.remove_prefix(parseEvent(bytes));
  }
}

void SseParser::beginValue() {
  field_ = Field::kIgnored;
  if (field_name_too_long_) {
    return;
  }
  if (field_name_ == "data") {
    field_ = Field::kData;
    handler_.onDataLine(!event_has_data_);
    event_has_data_ = true;
  } else if (field_name_ == "event") {
    field_ = Field::kEvent;
    event_type_.clear();
  }
}

void SseParser::endLine(char terminator) {
  line_feed_pending_ = terminator == '\r';
  state_ = State::kLineStart;
}

}  // namespace keystore::metering
