// Site: the web dashboard as the admin listener serves it. It owns no files: the assets are
// byte tables compiled into the binary from web/dist (see builtinAssets()), so the dashboard
// needs nothing on disk at run time and always matches the binary's API.
//
// respond() decides whether a request is for the dashboard and builds the whole response,
// headers included: a strict Content-Security-Policy, nosniff, no framing, immutable caching
// for content-hashed files under /assets/ and revalidation for everything else. Any other GET
// that accepts HTML gets index.html, so client-side paths such as /agents survive a reload.
//
// Thread-safety: immutable after construction; respond() may be called from any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keystore::dashboard {

// One file of web/dist: its URL path ("/index.html", "/assets/index-3f2a.js") and its bytes.
struct Asset {
  std::string_view path;
  std::string_view body;
};

// The files of web/dist as found at build time; empty when the dashboard was not built.
std::span<const Asset> builtinAssets();

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // static data; points into the asset table or a constant
};

// The Content-Type for a file name by its extension; application/octet-stream when unknown.
std::string_view contentTypeFor(std::string_view path);

inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

class Site {
 public:
  explicit Site(std::span<const Asset> assets);

  // Returns the dashboard's response to `method` `target`, or nullopt when the request belongs
  // to the management API, the metrics or health endpoints, or is not a page request.
  // `accept` is the request's Accept header; HEAD gets the headers of GET and an empty body.
  std::optional<Response> respond(std::string_view method, std::string_view target,
                                  std::string_view accept) const;

  bool built() const { return index_ != nullptr; }

 private:
  const Asset* find(std::string_view path) const;
  Response serve(const Asset& asset, bool head) const;
  Response notBuilt(bool head) const;

  std::span<const Asset> assets_;
  const Asset* index_ = nullptr;
};

}  // namespace keystore::dashboard
