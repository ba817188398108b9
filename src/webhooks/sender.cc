#include "webhooks/sender.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <stdexcept>

namespace keystore::webhooks {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

http::request<http::string_body> buildRequest(
    const WebhookUrl& url, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body) {
  http::request<http::string_body> request{http::verb::post, url.target, 11};
  request.set(http::field::host, url.host_header);
  request.set(http::field::user_agent, "Keystore-Webhooks/1");
  request.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) {
    request.set(name, value);
  }
  request.body() = body;
  request.prepare_payload();
  return request;
}

template <typename Stream>
asio::awaitable<SendOutcome> exchange(Stream& stream, http::request<http::string_body>& request) {
  auto [write_error, written] = co_await http::async_write(stream, request, kNoThrow);
  if (write_error) {
    co_return SendOutcome{0, "sending the request failed: " + write_error.message()};
  }
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  auto [read_error, read] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
  if (read_error) {
    co_return SendOutcome{0, "reading the response failed: " + read_error.message()};
  }
  co_return SendOutcome{static_cast<int>(parser.get().result_int()), ""};
}

}  // namespace

Sender::Sender(SenderOptions options)
    : options_(std::move(options)), tls_(ssl::context::tls_client) {
  boost::system::error_code error;
  tls_.set_default_verify_paths(error);
  if (error) {
    throw std::runtime_error("cannot load the system CA certificates: " + error.message());
  }
  if (!options_.extra_ca_file.empty()) {
    tls_.load_verify_file(options_.extra_ca_file, error);
    if (error) {
      throw std::runtime_error("cannot load the CA file " + options_.extra_ca_file + ": " +
                               error.message());
    }
  }
  tls_.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
}

SendOutcome Sender::send(const WebhookUrl& url,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         const std::string& body) const {
  auto addresses = resolveWebhookHost(url, options_.allow_private);
  if (!addresses) {
    return SendOutcome{0, addresses.error().message};
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& address : *addresses) {
    endpoints.emplace_back(address, url.port);
  }
  http::request<http::string_body> request = buildRequest(url, headers, body);

  asio::io_context context;
  auto run = [&]() -> asio::awaitable<SendOutcome> {
    beast::tcp_stream stream(context);
    // A deadline, not a per-operation timeout: it bounds the whole exchange.
    stream.expires_after(options_.timeout);
    auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, kNoThrow);
    if (connect_error) {
      co_return SendOutcome{
          0, "connecting to " + url.host_header + " failed: " + connect_error.message()};
    }
    if (!url.tls) {
      co_return co_await exchange(stream, request);
    }

    beast::ssl_stream<beast::tcp_stream> secure(std::move(stream), tls_);
    SSL* handle = secure.native_handle();
    boost::system::error_code literal_error;
    auto literal = asio::ip::make_address(url.host, literal_error);
    if (literal_error) {
      SSL_set_tlsext_host_name(handle, url.host.c_str());
      SSL_set1_host(handle, url.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), literal.to_string().c_str());
    }
    auto [handshake_error] = co_await secure.async_handshake(ssl::stream_base::client, kNoThrow);
    if (handshake_error) {
      co_return SendOutcome{
          0, "TLS handshake with " + url.host_header + " failed: " + handshake_error.message()};
    }
    co_return co_await exchange(secure, request);
  };

  SendOutcome outcome{0, "the request did not run"};
  asio::co_spawn(context, run(), [&outcome](std::exception_ptr failure, SendOutcome result) {
    if (failure) {
      outcome = SendOutcome{0, "the request failed unexpectedly"};
      return;
    }
    outcome = std::move(result);
  });
  context.run();
  return outcome;
}

}  // namespace keystore::webhooks
