// Sender: POSTs one webhook request over http or https and reports the status code.
//
// Each send resolves the host afresh and connects only to addresses that pass the SSRF rules
// (see webhook_url.h). https verifies the certificate chain against the system store plus an
// optional extra CA file, and the host name (or IP literal) against the certificate. One
// deadline covers resolving, connecting, the handshake, writing and reading the response
// header. Redirects are never followed: a 3xx is reported like any other status. The
// response body is never read, so nothing the receiver returns reaches a log or the store.
//
// Thread-safety: send() may be called from several threads at once; each call uses its own
// io_context and connection, and the TLS context is only read after construction.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "webhooks/webhook_url.h"

namespace keystore::webhooks {

struct SenderOptions {
  bool allow_private = false;
  std::string extra_ca_file;  // PEM bundle trusted in addition to the system store
  std::chrono::milliseconds timeout{10'000};
};

struct SendOutcome {
  int status_code = 0;  // 0 when no response header arrived
  std::string error;    // empty when a response arrived; otherwise why not, without secrets
};

class Sender {
 public:
  // Throws std::runtime_error when the CA file cannot be loaded; call it at start-up.
  explicit Sender(SenderOptions options);

  SendOutcome send(const WebhookUrl& url,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   const std::string& body) const;

 private:
  SenderOptions options_;
  mutable boost::asio::ssl::context tls_;
};

}  // namespace keystore::webhooks
