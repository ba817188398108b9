#include "proxy/route.h"

#include <array>
#include <string_view>

namespace keystore::proxy {

namespace {

int hexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// RFC 3986 pchar minus '%': unreserved, sub-delims, ':' and '@' need no encoding. A table,
// because every byte of every request path is looked up.
constexpr std::array<bool, 256> kPathSafe = [] {
  std::array<bool, 256> safe{};
  for (int c = 'a'; c <= 'z'; ++c) {
    safe[c] = true;
  }
  for (int c = 'A'; c <= 'Z'; ++c) {
    safe[c] = true;
  }
  for (int c = '0'; c <= '9'; ++c) {
    safe[c] = true;
  }
  for (unsigned char c : std::string_view("-._~!$&'()*+,;=:@")) {
    safe[c] = true;
  }
  return safe;
}();

bool isPathSafe(unsigned char c) {
  return kPathSafe[c];
}

// Returns whether `raw` decodes to itself and encodes back to itself: no byte needs escaping,
// and there is no '%' to decode.
bool isPlainSegment(std::string_view raw) {
  for (char c : raw) {
    if (!isPathSafe(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

Error invalidPath(std::string_view why) {
  return Error{ErrorCode::kInvalidRequest, "invalid request path: " + std::string(why)};
}

// Decodes one raw segment into `decoded`, replacing its contents but keeping its capacity.
// Rejects encoded separators and control characters.
Result<void> decodeSegment(std::string_view raw, std::string& decoded) {
  decoded.clear();
  decoded.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size() || hexDigit(raw[i + 1]) < 0 || hexDigit(raw[i + 2]) < 0) {
        return std::unexpected(invalidPath("malformed percent-encoding"));
      }
      int high = hexDigit(raw[i + 1]);
      int low = hexDigit(raw[i + 2]);
      c = static_cast<char>((high << 4) | low);
      i += 2;
      if (c == '/' || c == '\\') {
        return std::unexpected(invalidPath("encoded slashes are not allowed"));
      }
    } else if (c == '\\') {
      return std::unexpected(invalidPath("backslashes are not allowed"));
    }
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return std::unexpected(invalidPath("control characters are not allowed"));
    }
    decoded.push_back(c);
  }
  if (decoded == "." || decoded == "..") {
    return std::unexpected(invalidPath("'.' and '..' segments are not allowed"));
  }
  return {};
}

void appendEncoded(std::string& out, std::string_view segment) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (char c : segment) {
    auto byte = static_cast<unsigned char>(c);
    if (isPathSafe(byte)) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[byte >> 4]);
      out.push_back(kDigits[byte & 0x0f]);
    }
  }
}

}  // namespace

Result<Route> parseProxyTarget(std::string_view target) {
  constexpr std::string_view kPrefix = "/v1/";
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  Route route;
  if (question != std::string_view::npos) {
    route.query = std::string(target.substr(question + 1));
  }
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    return std::unexpected(invalidPath("proxy paths start with /v1/{provider}/"));
  }
  path.remove_prefix(kPrefix.size());

  size_t slash = path.find('/');
  if (auto decoded = decodeSegment(path.substr(0, slash), route.provider); !decoded) {
    return std::unexpected(decoded.error());
  }
  if (route.provider.empty()) {
    return std::unexpected(invalidPath("missing provider"));
  }

  route.path.reserve(path.size() + 1);
  std::string_view rest =
      slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  // One buffer serves every segment, and it allocates only for a segment longer than any before.
  std::string segment;
  while (true) {
    size_t next = rest.find('/');
    std::string_view raw = rest.substr(0, next);
    route.path.push_back('/');
    if (isPlainSegment(raw)) {
      // The usual segment, copied as it is: the same bytes as decoding and encoding it again.
      if (raw == "." || raw == "..") {
        return std::unexpected(invalidPath("'.' and '..' segments are not allowed"));
      }
      route.path.append(raw);
    } else {
      if (auto decoded = decodeSegment(raw, segment); !decoded) {
        return std::unexpected(decoded.error());
      }
      appendEncoded(route.path, segment);
    }
    if (next == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(next + 1);
  }
  for (char c : route.query) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x21 || byte == 0x7f || c == '#') {
      return std::unexpected(invalidPath("invalid character in the query string"));
    }
  }
  return route;
}

}  // namespace keystore::proxy
