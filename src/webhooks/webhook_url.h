// WebhookUrl: a parsed webhook endpoint URL, and the SSRF rules it must pass.
//
// Only http and https URLs with a host and no user information or fragment are accepted.
// Unless private targets are allowed (serve --allow-private-webhooks), a host that is, or
// resolves to, a loopback, private, link-local, CGNAT, unique-local, multicast or
// unspecified address (IPv4-mapped and other IPv4-embedding IPv6 forms included) is
// rejected. The sender resolves the host again before every attempt and connects only to
// addresses that pass, so a name re-pointed at 127.0.0.1 after creation (DNS rebinding)
// still cannot reach loopback.
//
// Free functions; thread-safe. resolveWebhookHost blocks on DNS.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace keystore::webhooks {

struct WebhookUrl {
  std::string text;  // as given
  bool tls = true;
  std::string host;  // lowercase, IPv6 without brackets
  uint16_t port = 443;
  std::string target;       // path and query, "/" when empty
  std::string host_header;  // "host" or "host:port"
};

// Parses and checks the form only; kInvalidRequest naming the rule that failed.
Result<WebhookUrl> parseWebhookUrl(std::string_view text);

// The addresses of `url`'s host that a delivery may connect to. kInvalidRequest when the name
// does not resolve, or when private targets are not allowed and any resolved address is
// private (a name with one private address is suspect as a whole).
Result<std::vector<boost::asio::ip::address>> resolveWebhookHost(const WebhookUrl& url,
                                                                 bool allow_private);

// parseWebhookUrl followed by resolveWebhookHost, for endpoint creation and updates.
Result<WebhookUrl> checkWebhookUrl(std::string_view text, bool allow_private);

}  // namespace keystore::webhooks
