#include "server/admin_listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <optional>

#include "common/encoding.h"
#include "common/random.h"
#include "common/secure_zero.h"
#include "dashboard/site.h"

namespace keystore::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

Result<std::pair<std::string, uint16_t>> parseListenAddress(std::string_view text,
                                                            std::string_view flag) {
  std::string shown(text);
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    return fail(ErrorCode::kInvalidRequest,
                std::string(flag) + " '" + shown + "' must be HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  std::string_view port_text = text.substr(colon + 1);
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    return fail(ErrorCode::kInvalidRequest,
                std::string(flag) + " '" + shown + "' has an invalid port");
  }
  if (host == "localhost") {
    host = "127.0.0.1";
  }
  return std::pair{std::string(host), static_cast<uint16_t>(port)};
}

struct AdminListener::Impl {
  Impl(AdminListenerOptions opts, Handler h)
      : options(std::move(opts)),
        handler(std::move(h)),
        pool(static_cast<size_t>(std::max(1, options.threads))) {}

  AdminListenerOptions options;
  Handler handler;
  dashboard::Site dashboard_site{dashboard::builtinAssets()};
  asio::thread_pool pool;
  std::unique_ptr<tcp::acceptor> acceptor;

  awaitable<void> acceptLoop();
  awaitable<void> runSession(tcp::socket socket);
};

namespace {

// Writes a dashboard response; returns whether the connection stays open.
awaitable<bool> writeDashboardPage(beast::tcp_stream& stream,
                                   const http::request<http::string_body>& request,
                                   const dashboard::Response& page) {
  http::response<http::span_body<const char>> response{static_cast<http::status>(page.status),
                                                       request.version()};
  for (const auto& [name, value] : page.headers) {
    response.set(name, value);
  }
  // Content-Length comes from the page, so that HEAD reports the size of the body it omits.
  response.body() = {page.body.data(), page.body.size()};
  response.keep_alive(request.keep_alive());
  auto [write_error, written] = co_await http::async_write(stream, response, kNoThrow);
  co_return !write_error && response.keep_alive();
}

}  // namespace

awaitable<void> AdminListener::Impl::acceptLoop() {
  while (acceptor && acceptor->is_open()) {
    // Each connection runs on its own strand, because a stream's timer and its read or write
    // completions must not run on two pool threads at once.
    auto [error, socket] = co_await acceptor->async_accept(asio::make_strand(pool), kNoThrow);
    if (error) {
      if (error == asio::error::operation_aborted) {
        break;
      }
      spdlog::warn("admin accept failed: {}", error.message());
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, runSession(std::move(socket)), asio::detached);
  }
}

awaitable<void> AdminListener::Impl::runSession(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  std::string remote;
  boost::system::error_code endpoint_error;
  auto endpoint = stream.socket().remote_endpoint(endpoint_error);
  if (!endpoint_error) {
    remote = endpoint.address().to_string();
  }
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    stream.expires_after(std::chrono::seconds(60));
    auto [read_error, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (read_error) {
      if (read_error == http::error::body_limit) {
        http::response<http::string_body> response{http::status::payload_too_large, 11};
        response.set(http::field::content_type, "application/json");
        response.body() =
            R"({"error":{"type":"keystore_error","code":"payload_too_large","message":"the request body is too large"}})";
        response.keep_alive(false);
        response.prepare_payload();
        co_await http::async_write(stream, response, kNoThrow);
      }
      break;
    }
    auto& request = parser.get();
    std::optional<dashboard::Response> page = dashboard_site.respond(
        request.method_string(), request.target(), request[http::field::accept]);
    if (page) {
      bool keep_alive = co_await writeDashboardPage(stream, request, *page);
      if (!keep_alive) {
        break;
      }
      continue;
    }
    admin::ApiRequest api_request;
    api_request.method = std::string(request.method_string());
    api_request.target = std::string(request.target());
    api_request.authorization = std::string(request[http::field::authorization]);
    api_request.cookie = std::string(request[http::field::cookie]);
    api_request.csrf_token = std::string(request["X-CSRF-Token"]);
    api_request.organization = std::string(request["X-Keystore-Organization"]);
    api_request.tls = false;  // NOTE: the admin listener serves plain HTTP only, for now
    api_request.body = std::move(request.body());
    api_request.remote_address = remote;
    api_request.request_id = "req_" + hexEncode(randomBytes(12));

    admin::ApiResponse api_response = handler(api_request);
    // The body may hold a provider key and the header an admin key; neither outlives the call.
    secureZero(api_request.body.data(), api_request.body.size());
    secureZero(api_request.authorization.data(), api_request.authorization.size());
    secureZero(api_request.cookie.data(), api_request.cookie.size());

    http::response<http::string_body> response{static_cast<http::status>(api_response.status),
                                               request.version()};
    if (!api_response.content_type.empty()) {
      response.set(http::field::content_type, api_response.content_type);
    }
    response.set("x-request-id", api_request.request_id);
    response.set(http::field::cache_control, "no-store");
    // insert, not set: a response may carry several headers of one name (Set-Cookie).
    for (const auto& [name, value] : api_response.headers) {
      response.insert(name, value);
    }
    response.body() = std::move(api_response.body);
    response.keep_alive(request.keep_alive());
    response.prepare_payload();
    auto [write_error, written] = co_await http::async_write(stream, response, kNoThrow);
    if (write_error || !response.keep_alive()) {
      break;
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

AdminListener::AdminListener(AdminListenerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

AdminListener::~AdminListener() {
  stop();
}

Result<std::string> AdminListener::start() {
  boost::system::error_code error;
  auto address = asio::ip::make_address(impl_->options.host, error);
  if (error) {
    return fail(ErrorCode::kInvalidRequest,
                "--admin-listen host '" + impl_->options.host + "' is not an IP address");
  }
  auto acceptor = std::make_unique<tcp::acceptor>(impl_->pool);
  tcp::endpoint endpoint(address, impl_->options.port);
  acceptor->open(endpoint.protocol(), error);
  if (!error) {
    acceptor->set_option(asio::socket_base::reuse_address(true), error);
  }
  if (!error) {
    acceptor->bind(endpoint, error);
  }
  if (!error) {
    acceptor->listen(asio::socket_base::max_listen_connections, error);
  }
  if (error) {
    return fail(ErrorCode::kInvalidRequest, "cannot listen on " + impl_->options.host + ":" +
                                                std::to_string(impl_->options.port) + ": " +
                                                error.message());
  }
  auto bound = acceptor->local_endpoint();
  impl_->acceptor = std::move(acceptor);
  asio::co_spawn(impl_->pool, impl_->acceptLoop(), asio::detached);
  std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                             : bound.address().to_string();
  return host + ":" + std::to_string(bound.port());
}

void AdminListener::stop() {
  if (!impl_) {
    return;
  }
  if (impl_->acceptor) {
    asio::post(impl_->pool, [acceptor = impl_->acceptor.get()] {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    });
  }
  impl_->pool.stop();
  impl_->pool.join();
  impl_->acceptor.reset();
}

}  // namespace keystore::server
