#include "proxy/message_head.h"

#include <charconv>

namespace keystore::proxy {

namespace http = boost::beast::http;

void appendVersion(std::string& out, unsigned version) {
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
}

void appendStatusAndReason(std::string& out, unsigned status) {
  char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                    static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10)};
  out.append(digits, sizeof(digits));
  out.push_back(' ');
  // Beast's table covers the registered codes. For any other, obsolete_reason returns a
  // placeholder that is not a reason phrase, so the phrase stays empty.
  http::status code = http::int_to_status(status);
  if (code != http::status::unknown) {
    out.append(http::obsolete_reason(code));
  }
  out.append("\r\n");
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

ChunkSizeLine::ChunkSizeLine(size_t size) {
  auto [end, error] = std::to_chars(text_, text_ + 16, size, 16);
  (void)error;  // 16 characters hold any 64-bit value in hexadecimal
  end[0] = '\r';
  end[1] = '\n';
  length_ = static_cast<size_t>(end + 2 - text_);
}

}  // namespace keystore::proxy
