// ApiClient: a small synchronous HTTP/1.1 client for the management API, used by the CLI.
//
// Each call opens one connection (plain TCP for http://, TLS for https:// verified against the
// system's trusted certificates and the server's host name), sends one request with the
// admin key as a bearer token, reads the whole response and closes. Every stage shares one
// deadline. Not thread-safe, because the CLI makes one call at a time.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/secret.h"

namespace keystore::cli {

// The address of the management API, parsed from --addr or KEYSTORE_ADDR.
struct ServerAddress {
  std::string text;  // as shown in messages, e.g. "http://127.0.0.1:8081"
  bool tls = false;
  std::string host;       // without brackets for IPv6 literals
  std::string port;       // "8081"
  std::string base_path;  // "" or "/prefix" without a trailing slash
};

// Parses "http://HOST[:PORT][/PREFIX]", "https://…", or "HOST:PORT" (taken as http). Returns
// kInvalidRequest naming the text when it matches none of these.
Result<ServerAddress> parseServerAddress(std::string_view text);

struct HttpReply {
  int status = 0;
  std::string body;
};

class ApiClient {
 public:
  ApiClient(ServerAddress address, Secret admin_key,
            std::chrono::seconds timeout = std::chrono::seconds(30));

  // Sends `method` to `target` (path and query below the base path) with a JSON `body` when it
  // is not empty. Transport failures return kUpstreamUnreachable or kUpstreamTimeout with a
  // message that names the server and suggests the fix. Any HTTP status is a reply.
  Result<HttpReply> send(std::string_view method, std::string_view target,
                         std::string_view body = {});

  const ServerAddress& address() const { return address_; }

 private:
  ServerAddress address_;
  Secret admin_key_;
  std::chrono::seconds timeout_;
};

}  // namespace keystore::cli
