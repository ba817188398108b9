#include "webhooks/webhook_url.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

#include "catalog/upstream_url.h"

namespace keystore::webhooks {

namespace ip = boost::asio::ip;

Result<WebhookUrl> parseWebhookUrl(std::string_view text) {
  constexpr size_t kMaxUrlLength = 2048;
  if (text.size() > kMaxUrlLength) {
    return fail(ErrorCode::kInvalidRequest, "webhook URL is longer than 2048 characters");
  }
  auto parsed = boost::urls::parse_absolute_uri(text);
  std::string shown(text);
  if (!parsed) {
    return fail(ErrorCode::kInvalidRequest,
                "webhook URL '" + shown + "' is not a valid absolute URL without a fragment");
  }

  WebhookUrl url;
  url.text = shown;
  std::string scheme(parsed->scheme());
  if (scheme == "https") {
    url.tls = true;
    url.port = 443;
  } else if (scheme == "http") {
    url.tls = false;
    url.port = 80;
  } else {
    return fail(ErrorCode::kInvalidRequest,
                "webhook URL '" + shown + "' must use http or https, not " + scheme);
  }
  if (parsed->has_userinfo()) {
    return fail(ErrorCode::kInvalidRequest, "webhook URL must not contain user information");
  }

  bool ipv6 = parsed->host_type() == boost::urls::host_type::ipv6;
  url.host = ipv6 || parsed->host_name().empty() ? std::string(parsed->host_address())
                                                 : std::string(parsed->host_name());
  for (char& c : url.host) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (url.host.empty()) {
    return fail(ErrorCode::kInvalidRequest, "webhook URL '" + shown + "' has no host");
  }
  if (parsed->has_port()) {
    if (parsed->port_number() == 0) {
      return fail(ErrorCode::kInvalidRequest, "webhook URL '" + shown + "' has an invalid port");
    }
    url.port = parsed->port_number();
  }

  url.target = std::string(parsed->encoded_path());
  if (url.target.empty()) {
    url.target = "/";
  }
  if (parsed->has_query()) {
    url.target += "?" + std::string(parsed->encoded_query());
  }
  std::string bracketed = ipv6 ? "[" + url.host + "]" : url.host;
  bool default_port = url.port == (url.tls ? 443 : 80);
  url.host_header = default_port ? bracketed : bracketed + ":" + std::to_string(url.port);
  return url;
}

Result<std::vector<ip::address>> resolveWebhookHost(const WebhookUrl& url, bool allow_private) {
  std::vector<ip::address> addresses;
  boost::system::error_code error;
  ip::address literal = ip::make_address(url.host, error);
  if (!error) {
    addresses.push_back(literal);
  } else {
    boost::asio::io_context context;
    ip::tcp::resolver resolver(context);
    auto results = resolver.resolve(url.host, std::to_string(url.port), error);
    if (error) {
      return fail(ErrorCode::kInvalidRequest,
                  "cannot resolve webhook host " + url.host + ": " + error.message());
    }
    for (const auto& entry : results) {
      addresses.push_back(entry.endpoint().address());
    }
  }
  if (addresses.empty()) {
    return fail(ErrorCode::kInvalidRequest, "webhook host " + url.host + " has no address");
  }

  if (!allow_private) {
    for (const ip::address& address : addresses) {
      if (catalog::isPrivateAddress(address)) {
        return fail(ErrorCode::kInvalidRequest,
                    "webhook URL host " + url.host + " is or resolves to the private address " +
                        address.to_string() +
                        "; use a public host, or start the server with "
                        "--allow-private-webhooks to permit private targets");
      }
    }
  }
  return addresses;
}

Result<WebhookUrl> checkWebhookUrl(std::string_view text, bool allow_private) {
  Result<WebhookUrl> url = parseWebhookUrl(text);
  if (!url) {
    return url;
  }
  auto addresses = resolveWebhookHost(*url, allow_private);
  if (!addresses) {
    return std::unexpected(addresses.error());
  }
  return url;
}

}  // namespace keystore::webhooks
