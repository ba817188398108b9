// UpstreamUrl: a parsed provider base URL, and the SSRF rules every upstream must pass.
//
// An upstream is reachable only over http or https, with a host name or IP literal and no
// user info. Targets in loopback, private, link-local (cloud metadata), CGNAT, multicast or
// unspecified ranges are refused unless the operator allowed private upstreams; the same
// check runs again on the resolved addresses at connect time, so a name that resolves to a
// private address is refused too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "common/error.h"

namespace keystore::catalog {

struct UpstreamPolicy {
  bool allow_private = false;
};

struct UpstreamUrl {
  std::string text;       // normalized, e.g. "https://api.openai.com"
  bool tls = true;
  std::string host;       // lowercase, no brackets
  uint16_t port = 443;
  std::string base_path;  // "" or "/prefix" without a trailing slash
  // "host" or "host:port" as the Host header should carry it.
  std::string host_header;
};

// kInvalidRequest with a message naming the URL and the rule it breaks.
Result<UpstreamUrl> parseUpstreamUrl(std::string_view text, const UpstreamPolicy& policy);

// True for loopback, RFC 1918, link-local, CGNAT, unique-local, multicast, unspecified and
// IPv4-mapped forms of these.
bool isPrivateAddress(const boost::asio::ip::address& address);

}  // namespace keystore::catalog
