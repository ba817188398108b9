#include "catalog/upstream_url.h"

#include <netdb.h>
#include <sys/socket.h>

#include <boost/url/parse.hpp>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

namespace keystore::catalog {

namespace {

namespace ip = boost::asio::ip;

bool isPrivateV4(const ip::address_v4& address) {
  uint32_t value = address.to_uint();
  auto in = [value](uint32_t network, int prefix) {
    uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    return (value & mask) == network;
  };
  return in(0x00000000, 8)        // 0.0.0.0/8 "this network"
         || in(0x0A000000, 8)     // 10.0.0.0/8
         || in(0x64400000, 10)    // 100.64.0.0/10 CGNAT
         || in(0x7F000000, 8)     // 127.0.0.0/8 loopback
         || in(0xA9FE0000, 16)    // 169.254.0.0/16 link-local, cloud metadata
         || in(0xAC100000, 12)    // 172.16.0.0/12
         || in(0xC0000000, 24)    // 192.0.0.0/24 IETF protocol assignments
         || in(0xC0A80000, 16)    // 192.168.0.0/16
         || in(0xC6120000, 15)    // 198.18.0.0/15 benchmarking
         || in(0xE0000000, 4)     // 224.0.0.0/4 multicast
         || in(0xF0000000, 4);    // 240.0.0.0/4 reserved and broadcast
}

Result<std::vector<ip::address>> resolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int status = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (status != 0) {
    return fail(ErrorCode::kInvalidRequest,
                "cannot resolve upstream host " + host + ": " + ::gai_strerror(status));
  }
  std::vector<ip::address> addresses;
  for (addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family == AF_INET) {
      auto* v4 = reinterpret_cast<sockaddr_in*>(entry->ai_addr);
      addresses.emplace_back(ip::address_v4(ntohl(v4->sin_addr.s_addr)));
    } else if (entry->ai_family == AF_INET6) {
      auto* v6 = reinterpret_cast<sockaddr_in6*>(entry->ai_addr);
      ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), v6->sin6_addr.s6_addr, bytes.size());
      addresses.emplace_back(ip::address_v6(bytes));
    }
  }
  ::freeaddrinfo(found);
  return addresses;
}

}  // namespace

bool isPrivateAddress(const ip::address& address) {
  if (address.is_v4()) {
    return isPrivateV4(address.to_v4());
  }
  const ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return isPrivateV4(ip::make_address_v4(ip::v4_mapped, v6));
  }
  auto bytes = v6.to_bytes();
  // IPv6 forms that carry an IPv4 address reach that address through a translator or tunnel:
  // NAT64 64:ff9b::/96 (the last 32 bits), 6to4 2002::/16 and IPv4-compatible ::a.b.c.d.
  auto embedded = [&bytes](size_t offset) {
    return ip::address_v4(ip::address_v4::bytes_type{bytes[offset], bytes[offset + 1],
                                                     bytes[offset + 2], bytes[offset + 3]});
  };
  bool nat64 = bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b;
  if (nat64) {
    return isPrivateV4(embedded(12));
  }
  if (bytes[0] == 0x20 && bytes[1] == 0x02) {
    return isPrivateV4(embedded(2));
  }
  bool zero_prefix = std::all_of(bytes.begin(), bytes.begin() + 12, [](auto b) { return b == 0; });
  if (zero_prefix && !v6.is_loopback() && !v6.is_unspecified()) {
    return isPrivateV4(embedded(12));
  }
  bool unique_local = (bytes[0] & 0xfe) == 0xfc;  // fc00::/7
  return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_multicast() ||
         v6.is_site_local() || unique_local;
}

Result<UpstreamUrl> parseUpstreamUrl(std::string_view text, const UpstreamPolicy& policy) {
  auto parsed = boost::urls::parse_uri(text);
  std::string shown(text);
  if (!parsed) {
    return fail(ErrorCode::kInvalidRequest, "upstream URL '" + shown + "' is not a valid URL");
  }
  UpstreamUrl url;
  std::string scheme(parsed->scheme());
  if (scheme == "https") {
    url.tls = true;
    url.port = 443;
  } else if (scheme == "http") {
    url.tls = false;
    url.port = 80;
  } else {
    return fail(ErrorCode::kInvalidRequest,
                "upstream URL '" + shown + "' must use http or https, not " + scheme);
  }
  if (parsed->has_userinfo()) {
    return fail(ErrorCode::kInvalidRequest,
                "upstream URL must not carry user information; store credentials with set-key");
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return fail(ErrorCode::kInvalidRequest,
                "upstream URL '" + shown + "' must not have a query or fragment");
  }
  url.host = parsed->host_name().empty() ? std::string(parsed->host_address())
                                         : std::string(parsed->host_name());
  if (parsed->host_type() == boost::urls::host_type::ipv6) {
    url.host = std::string(parsed->host_address());
  }
  for (auto& c : url.host) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (url.host.empty()) {
    return fail(ErrorCode::kInvalidRequest, "upstream URL '" + shown + "' has no host");
  }
  if (parsed->has_port()) {
    if (parsed->port_number() == 0) {
      return fail(ErrorCode::kInvalidRequest, "upstream URL '" + shown + "' has an invalid port");
    }
    url.port = parsed->port_number();
  }
  url.base_path = std::string(parsed->encoded_path());
  while (!url.base_path.empty() && url.base_path.back() == '/') {
    url.base_path.pop_back();
  }
  bool default_port = url.port == (url.tls ? 443 : 80);
  std::string host_for_header =
      parsed->host_type() == boost::urls::host_type::ipv6 ? "[" + url.host + "]" : url.host;
  url.host_header = default_port ? host_for_header
                                 : host_for_header + ":" + std::to_string(url.port);
  url.text = scheme + "://" + url.host_header + url.base_path;

  if (!policy.allow_private) {
    boost::system::error_code error;
    auto literal = ip::make_address(url.host, error);
    std::vector<ip::address> addresses;
    if (!error) {
      addresses.push_back(literal);
    } else {
      auto resolved = resolveHost(url.host);
      if (!resolved) {
        return std::unexpected(resolved.error());
      }
      addresses = std::move(*resolved);
    }
    for (const auto& address : addresses) {
      if (isPrivateAddress(address)) {
        return fail(ErrorCode::kInvalidRequest,
                    "upstream URL '" + shown + "' points to the private or loopback address " +
                        address.to_string() +
                        "; start the server with --allow-private-upstreams to permit it");
      }
    }
  }
  return url;
}

}  // namespace keystore::catalog
