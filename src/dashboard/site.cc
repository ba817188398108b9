#include "dashboard/site.h"

#include <array>

namespace keystore::dashboard {

namespace {

// Shown at / when web/dist did not exist at build time; a static page needs no script.
constexpr std::string_view kNotBuiltPage =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Keystore</title>"
    "</head><body><h1>The Keystore dashboard was not built</h1><p>This keystore binary was "
    "compiled without web/dist. Run <code>scripts/build.sh</code>, which builds the dashboard "
    "with <code>npm ci &amp;&amp; npm run build</code> in web/ before compiling, and restart "
    "the server. The management API under /api/v1 works without it.</p></body></html>\n";

// Paths that other handlers of the admin listener own, whatever the Accept header contains.
constexpr std::array<std::string_view, 4> kReservedPrefixes = {"/api", "/metrics", "/healthz",
                                                               "/readyz"};

bool isReserved(std::string_view path) {
  for (std::string_view prefix : kReservedPrefixes) {
    if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
      return true;
    }
  }
  return false;
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

void addSecurityHeaders(Response& response) {
  response.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

std::string_view contentTypeFor(std::string_view path) {
  struct Mapping {
    std::string_view extension;
    std::string_view content_type;
  };
  static constexpr Mapping kMappings[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".webmanifest", "application/manifest+json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".webp", "image/webp"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
  };
  for (const Mapping& mapping : kMappings) {
    if (endsWith(path, mapping.extension)) {
      return mapping.content_type;
    }
  }
  return "application/octet-stream";
}

Site::Site(std::span<const Asset> assets) : assets_(assets), index_(find("/index.html")) {}

const Asset* Site::find(std::string_view path) const {
  for (const Asset& asset : assets_) {
    if (asset.path == path) {
      return &asset;
    }
  }
  return nullptr;
}

std::optional<Response> Site::respond(std::string_view method, std::string_view target,
                                      std::string_view accept) const {
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return std::nullopt;
  }
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/' || isReserved(path)) {
    return std::nullopt;
  }

  if (path == "/") {
    return index_ ? serve(*index_, head) : notBuilt(head);
  }
  if (const Asset* asset = find(path)) {
    return serve(*asset, head);
  }
  // A missing hashed file is an outdated reference, never a page. Returning HTML for it
  // would hand a script tag an HTML body.
  if (path.starts_with("/assets/")) {
    Response missing;
    missing.status = 404;
    missing.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    missing.headers.emplace_back("Cache-Control", "no-cache");
    addSecurityHeaders(missing);
    missing.body = head ? std::string_view() : std::string_view("not found\n");
    return missing;
  }
  if (accept.find("text/html") == std::string_view::npos) {
    return std::nullopt;
  }
  return index_ ? serve(*index_, head) : notBuilt(head);
}

Response Site::serve(const Asset& asset, bool head) const {
  Response response;
  response.headers.emplace_back("Content-Type", std::string(contentTypeFor(asset.path)));
  // Vite names files under /assets/ after a hash of their content, so a changed file gets a
  // new URL and the old one may be cached for good. index.html names those URLs and must be
  // revalidated on every load.
  bool hashed = asset.path.starts_with("/assets/");
  response.headers.emplace_back("Cache-Control",
                                hashed ? "public, max-age=31536000, immutable" : "no-cache");
  addSecurityHeaders(response);
  response.body = head ? std::string_view() : asset.body;
  response.headers.emplace_back("Content-Length", std::to_string(asset.body.size()));
  return response;
}

Response Site::notBuilt(bool head) const {
  Response response;
  response.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  response.headers.emplace_back("Cache-Control", "no-cache");
  addSecurityHeaders(response);
  response.body = head ? std::string_view() : kNotBuiltPage;
  response.headers.emplace_back("Content-Length", std::to_string(kNotBuiltPage.size()));
  return response;
}

}  // namespace keystore::dashboard
