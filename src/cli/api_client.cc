// The CLI's HTTP client, the only translation unit of the CLI that includes Beast.
#include "cli/api_client.h"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <utility>

#include "common/secure_zero.h"

namespace keystore::cli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// Management API responses are small, so this limit bounds memory when the address points
// at another kind of server.
constexpr uint64_t kMaxReplyBytes = 16 * 1024 * 1024;

constexpr auto kAwait = asio::use_awaitable;

std::string lowerFirst(std::string text) {
  if (!text.empty()) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

bool isIpLiteral(const std::string& host) {
  boost::system::error_code error;
  asio::ip::make_address(host, error);
  return !error;
}

struct Exchange {
  const ServerAddress& address;
  http::request<http::string_body>& request;
  std::chrono::seconds timeout;
};

Error transportError(const Exchange& exchange, std::string_view stage,
                     const beast::error_code& error) {
  const std::string& server = exchange.address.text;
  if (error == beast::error::timeout) {
    return Error{ErrorCode::kUpstreamTimeout,
                 "the Keystore server at " + server + " did not answer within " +
                     std::to_string(exchange.timeout.count()) +
                     " s; check that the address is right and the server is not overloaded"};
  }
  if (stage == "connect" || stage == "resolve") {
    return Error{ErrorCode::kUpstreamUnreachable, "cannot reach the Keystore server at " + server +
                                                      ": " + lowerFirst(error.message()) +
                                                      "; is `keystore serve` running?"};
  }
  if (stage == "handshake") {
    return Error{ErrorCode::kUpstreamUnreachable,
                 "TLS handshake with the Keystore server at " + server + " failed: " +
                     lowerFirst(error.message()) + "; check that its certificate is valid for " +
                     exchange.address.host + " and trusted by this system"};
  }
  return Error{ErrorCode::kUpstreamUnreachable,
               "the request to the Keystore server at " + server + " failed while trying to " +
                   std::string(stage) + ": " + lowerFirst(error.message())};
}

// Writes the request and reads the whole response on a connected stream.
template <typename Stream>
asio::awaitable<Result<HttpReply>> roundTrip(Stream& stream, const Exchange& exchange) {
  beast::error_code error;
  co_await http::async_write(stream, exchange.request, asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "send the request", error));
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "read the response", error));
  }
  co_return HttpReply{static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
}

asio::awaitable<Result<tcp::resolver::results_type>> resolve(const Exchange& exchange) {
  beast::error_code error;
  tcp::resolver resolver(co_await asio::this_coro::executor);
  auto endpoints = co_await resolver.async_resolve(exchange.address.host, exchange.address.port,
                                                   asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "resolve", error));
  }
  co_return endpoints;
}

asio::awaitable<Result<HttpReply>> exchangePlain(const Exchange& exchange) {
  Result<tcp::resolver::results_type> endpoints = co_await resolve(exchange);
  if (!endpoints) {
    co_return std::unexpected(endpoints.error());
  }

  beast::error_code error;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(exchange.timeout);
  co_await stream.async_connect(*endpoints, asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "connect", error));
  }

  Result<HttpReply> reply = co_await roundTrip(stream, exchange);
  stream.socket().shutdown(tcp::socket::shutdown_both, error);
  co_return reply;
}

asio::awaitable<Result<HttpReply>> exchangeTls(const Exchange& exchange) {
  Result<tcp::resolver::results_type> endpoints = co_await resolve(exchange);
  if (!endpoints) {
    co_return std::unexpected(endpoints.error());
  }

  beast::error_code error;
  ssl::context context(ssl::context::tls_client);
  context.set_default_verify_paths(error);
  if (error) {
    co_return std::unexpected(
        Error{ErrorCode::kInternal,
              "cannot load this system's trusted certificates: " + error.message()});
  }
  context.set_verify_mode(ssl::verify_peer);

  const std::string& host = exchange.address.host;
  beast::ssl_stream<beast::tcp_stream> stream(co_await asio::this_coro::executor, context);
  // SNI carries host names only (RFC 6066), so an IP literal is checked against the
  // certificate's IP entries instead.
  if (!isIpLiteral(host) && !SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
    co_return std::unexpected(Error{ErrorCode::kInternal, "cannot set the TLS server name"});
  }
  stream.set_verify_callback(ssl::host_name_verification(host));

  beast::get_lowest_layer(stream).expires_after(exchange.timeout);
  co_await beast::get_lowest_layer(stream).async_connect(*endpoints,
                                                         asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "connect", error));
  }
  co_await stream.async_handshake(ssl::stream_base::client, asio::redirect_error(kAwait, error));
  if (error) {
    co_return std::unexpected(transportError(exchange, "handshake", error));
  }

  Result<HttpReply> reply = co_await roundTrip(stream, exchange);
  // The whole response is read, so a failed close_notify changes nothing.
  co_await stream.async_shutdown(asio::redirect_error(kAwait, error));
  co_return reply;
}

std::string hostHeader(const ServerAddress& address) {
  std::string host =
      address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host;
  bool default_port = address.port == (address.tls ? "443" : "80");
  return default_port ? host : host + ":" + address.port;
}

}  // namespace

Result<ServerAddress> parseServerAddress(std::string_view text) {
  auto invalid = [&] {
    return fail(ErrorCode::kInvalidRequest, "invalid server address \"" + std::string(text) +
                                                "\"; expected a URL such as http://127.0.0.1:8081");
  };

  std::string candidate(text);
  if (candidate.find("://") == std::string::npos) {
    candidate = "http://" + candidate;
  }
  boost::system::result<boost::urls::url_view> url = boost::urls::parse_absolute_uri(candidate);
  if (!url || url->has_userinfo() || url->has_query() || url->has_fragment()) {
    return invalid();
  }

  ServerAddress address;
  if (url->scheme_id() == boost::urls::scheme::https) {
    address.tls = true;
  } else if (url->scheme_id() != boost::urls::scheme::http) {
    return fail(ErrorCode::kInvalidRequest, "invalid server address \"" + std::string(text) +
                                                "\"; it must start with http:// or https://");
  }

  if (url->host_type() == boost::urls::host_type::ipv6) {
    address.host = url->host_ipv6_address().to_string();
  } else {
    address.host = url->host();
  }
  if (address.host.empty()) {
    return invalid();
  }
  address.port = url->has_port() ? std::string(url->port()) : (address.tls ? "443" : "80");

  address.base_path = url->path();
  while (address.base_path.ends_with('/')) {
    address.base_path.pop_back();
  }
  address.text = std::string(url->scheme()) + "://" + std::string(url->encoded_host_and_port()) +
                 address.base_path;
  return address;
}

ApiClient::ApiClient(ServerAddress address, Secret admin_key, std::chrono::seconds timeout)
    : address_(std::move(address)), admin_key_(std::move(admin_key)), timeout_(timeout) {}

Result<HttpReply> ApiClient::send(std::string_view method, std::string_view target,
                                  std::string_view body) {
  http::request<http::string_body> request;
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    request.method_string(method);
  } else {
    request.method(verb);
  }
  request.target(address_.base_path + std::string(target));
  request.version(11);
  request.set(http::field::host, hostHeader(address_));
  request.set(http::field::user_agent, "keystore-cli/0.1.0");
  request.set(http::field::accept, "application/json");
  // Sign-in itself is the one call made without a credential.
  if (!admin_key_.reveal().empty()) {
    request.set(http::field::authorization, "Bearer " + std::string(admin_key_.reveal()));
  }
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.prepare_payload();

  Exchange exchange{address_, request, timeout_};
  Result<HttpReply> result = fail(ErrorCode::kInternal, "the request did not run");
  asio::io_context io;
  auto finish = [&](std::exception_ptr exception, Result<HttpReply> reply) {
    if (!exception) {
      result = std::move(reply);
      return;
    }
    try {
      std::rethrow_exception(exception);
    } catch (const std::exception& caught) {
      result = fail(ErrorCode::kInternal,
                    "the request to " + address_.text + " failed: " + caught.what());
    }
  };
  if (address_.tls) {
    asio::co_spawn(io, exchangeTls(exchange), finish);
  } else {
    asio::co_spawn(io, exchangePlain(exchange), finish);
  }
  io.run();

  // The body may carry a provider key, so the copy that was sent is wiped.
  secureZero(request.body().data(), request.body().size());
  return result;
}

}  // namespace keystore::cli
