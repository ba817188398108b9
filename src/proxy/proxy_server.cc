// The Beast-heavy part of the proxy: listeners, client sessions, upstream connections and the
// streaming relay. Kept in one translation unit because instantiating Beast's awaitable
// machinery is expensive to compile.
//
// The relay drives Beast's parsers by hand (parser.put on the bytes read so far) and writes
// message heads it formats itself, together with the body, in one gather write. Beast's
// composed read and write operations would do the same work with several more layers of
// handlers and buffer sequences per request, and that showed as the largest share of the
// proxy's own CPU time under load. Timeouts are deadlines swept by each I/O thread (see
// DeadlineWatch) rather than a timer armed and cancelled around every operation.
#include "proxy/proxy_server.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/encoding.h"
#include "common/random.h"
#include "common/secure_zero.h"
#include "common/thread_name.h"
#include "proxy/admission.h"
#include "proxy/deadline_watch.h"
#include "proxy/field_scan.h"
#include "proxy/header_arena.h"
#include "proxy/header_rules.h"
#include "proxy/message_head.h"
#include "proxy/model_scope.h"
#include "proxy/request_meter.h"
#include "redis/redis_limits.h"

namespace keystore::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using ErrorCodeT = boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// How long an upstream whose connection failed while the request was being written gets to
// deliver the response it sent before closing. Such a response is already received by then,
// so this only bounds the wait when there is none.
constexpr std::chrono::seconds kEarlyResponseWait{1};
constexpr size_t kRelayBufferSize = 16 * 1024;
// How long configuration refreshes may fail before the proxy stops trusting its snapshot.
constexpr int64_t kStaleSnapshotLimitMs = 5'000;
// How often each I/O thread closes the sockets whose deadline passed. Every timeout of the
// proxy is a second or more, so firing up to this much late does not matter.
constexpr std::chrono::milliseconds kDeadlineSweepInterval{100};
// How long a pooled upstream connection may sit idle before it is checked for a close by
// the upstream before reuse.
constexpr std::chrono::milliseconds kProbeAfterIdle{1};
// Bytes asked of one read system call.
constexpr size_t kReadSize = 16 * 1024;
// The largest request or response header (start line and fields) the proxy reads.
constexpr size_t kMaxHeaderBytes = 64 * 1024;

using TlsStream = beast::ssl_stream<tcp::socket>;
// Messages of the relay, with their header fields in the connection's arena.
using Request = http::request<http::string_body, Fields>;
using ClientRequestParser = http::request_parser<http::string_body, FieldAllocator>;
using UpstreamResponseParser = http::response_parser<http::buffer_body, FieldAllocator>;

// One connection to a provider, plain or TLS, with its read buffer and deadline.
struct UpstreamConnection {
  UpstreamConnection(DeadlineWatch& watch, tcp::socket socket, ssl::context* tls)
      : deadline(watch, emplaceStream(std::move(socket), tls)) {}

  std::optional<tcp::socket> plain;
  std::optional<TlsStream> secure;
  Deadline deadline;  // after the streams, whose socket it refers to
  beast::flat_buffer buffer;
  Clock::time_point idle_since{};
  bool reused = false;

  tcp::socket& socket() { return plain ? *plain : secure->next_layer(); }

 private:
  tcp::socket& emplaceStream(tcp::socket socket, ssl::context* tls) {
    if (tls == nullptr) {
      return plain.emplace(std::move(socket));
    }
    return secure.emplace(std::move(socket), *tls).next_layer();
  }
};

// Idle keep-alive connections of one I/O thread, per provider.
class UpstreamPool {
 public:
  explicit UpstreamPool(const ProxyOptions& options) : options_(options) {}

  std::unique_ptr<UpstreamConnection> take(const std::string& provider) {
    auto& idle = idle_[provider];
    while (!idle.empty()) {
      auto connection = std::move(idle.back());
      idle.pop_back();
      auto idle_for = Clock::now() - connection->idle_since;
      // Unsolicited bytes mean the connection is out of step with the upstream, and a closed
      // socket is one whose deadline expired.
      if (idle_for >= options_.pool_idle_timeout || connection->buffer.size() > 0 ||
          !connection->socket().is_open()) {
        continue;
      }
      // A pooled connection that the upstream closed since its last use reads as end of
      // stream. One non-blocking peek detects it before a request is sent on it. A connection
      // back in the pool for less than kProbeAfterIdle is taken without the peek. A server that
      // ends a connection right after a response sends Connection: close, and servers close
      // idle connections after seconds, so at that age the system call would find nothing.
      if (idle_for < kProbeAfterIdle || stillOpen(*connection)) {
        connection->reused = true;
        return connection;
      }
    }
    return nullptr;
  }

  void give(const std::string& provider, std::unique_ptr<UpstreamConnection> connection) {
    auto& idle = idle_[provider];
    if (idle.size() >= options_.max_idle_per_upstream) {
      return;
    }
    connection->idle_since = Clock::now();
    connection->deadline.expiresNever();
    idle.push_back(std::move(connection));
  }

  void clear() { idle_.clear(); }

 private:
  // A pooled connection that the upstream already closed reads as zero bytes or an error.
  // Sending a request on it would fail after the fact, so it is dropped here.
  static bool stillOpen(UpstreamConnection& connection) {
    char probe;
    auto handle = connection.socket().native_handle();
    ssize_t n = ::recv(handle, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  const ProxyOptions& options_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConnection>>> idle_;
};

struct Worker {
  // Only this worker's thread starts and completes I/O on its sockets: other threads reach
  // the worker by posting to it (stop() does), so the reactor's per-socket locks are left out.
  // The scheduler keeps its lock for those posts.
  explicit Worker(const ProxyOptions& options)
      : io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO), sweep_timer(io), pool(options) {
    if (options.redis) {
      shared_limits = std::make_unique<redis::RedisLimits>(io, *options.redis);
    }
  }

  // First, so it outlives every deadline. The io_context destroys the coroutine frames that
  // own client connections, and the pool owns upstream connections.
  DeadlineWatch watch;
  asio::io_context io;
  asio::steady_timer sweep_timer;
  std::unique_ptr<tcp::acceptor> acceptor;
  UpstreamPool pool;
  // Rate limits and budgets shared with other instances; null when counted in memory.
  std::unique_ptr<redis::RedisLimits> shared_limits;
  std::thread thread;
};

// The steady clock (CLOCK_MONOTONIC) at the kernel's tick resolution, a few milliseconds,
// which is read faster than the full clock and is precise enough for deadlines of seconds.
Clock::time_point coarseNow() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return Clock::time_point(std::chrono::seconds(now.tv_sec) +
                           std::chrono::nanoseconds(now.tv_nsec));
}

// Arms a deadline for the lifetime of an operation.
class ArmedDeadline {
 public:
  ArmedDeadline(Deadline& deadline, Clock::time_point expires_at) : deadline_(deadline) {
    deadline_.expiresAt(expires_at);
  }
  ~ArmedDeadline() { deadline_.expiresNever(); }
  ArmedDeadline(const ArmedDeadline&) = delete;
  ArmedDeadline& operator=(const ArmedDeadline&) = delete;

 private:
  Deadline& deadline_;
};

// Feeds `parser` from `buffer`, reading more from `stream` while it needs more, until
// `done(parser)` is true or, for a buffer_body parser, its body buffer is full. Returns
// http::error::end_of_stream when the stream ends before any byte of a message. The deadline
// is armed only while this waits, so time spent elsewhere never counts against it.
template <typename Stream, typename Buffer, typename Parser, typename Done>
awaitable<ErrorCodeT> parseFrom(Stream& stream, Deadline& deadline, Clock::time_point expires_at,
                                Buffer& buffer, Parser& parser, Done done) {
  ArmedDeadline armed(deadline, expires_at);
  while (!done(parser)) {
    if (buffer.size() > 0) {
      ErrorCodeT error;
      size_t used = parser.put(buffer.data(), error);
      if constexpr (Parser::is_request::value) {
        // A client's request carries its agent token. The parser copied what it needs, so the
        // raw bytes are zeroed before the buffer space is reused or freed.
        secureZero(const_cast<void*>(buffer.data().data()), used);
      }
      buffer.consume(used);
      if (error == http::error::need_buffer) {
        co_return ErrorCodeT{};
      }
      if (error && error != http::error::need_more) {
        co_return error;
      }
      if (!error && used > 0) {
        continue;  // done now, or more of the buffer to parse, or the buffer is used up
      }
    }
    if (buffer.size() >= buffer.max_size()) {
      co_return http::error::buffer_overflow;
    }
    auto space = buffer.prepare(std::min(kReadSize, buffer.max_size() - buffer.size()));
    auto [read_error, read] = co_await stream.async_read_some(space, kNoThrow);
    buffer.commit(read);
    if (read_error == asio::error::eof || read_error == asio::ssl::error::stream_truncated) {
      if (!parser.got_some()) {
        co_return http::error::end_of_stream;
      }
      if (read_error != asio::error::eof) {
        co_return read_error;  // a TLS body cut without close_notify may be incomplete
      }
      // A body that runs until the connection closes ends here; anything else is cut short.
      ErrorCodeT eof_error;
      parser.put_eof(eof_error);
      co_return eof_error;
    }
    if (read_error) {
      co_return read_error;
    }
  }
  co_return ErrorCodeT{};
}

asio::const_buffer bytes(std::string_view text) {
  return asio::const_buffer(text.data(), text.size());
}

// Sends what a plain socket takes without blocking and advances `buffers` past it. Returns
// would_block while bytes remain, always on a TLS stream, whose writes go through writeRest.
// The usual small message leaves in this one system call, without a coroutine frame or a trip
// through the scheduler. The hot paths call it directly, and writeRest only when it falls short.
template <typename Stream, size_t N>
ErrorCodeT writeNow(Stream& stream, std::array<asio::const_buffer, N>& buffers) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    ErrorCodeT error;
    size_t written = stream.write_some(buffers, error);
    if (error && error != asio::error::would_block && error != asio::error::try_again) {
      return error;
    }
    for (auto& buffer : buffers) {
      size_t sent = std::min(written, buffer.size());
      buffer += sent;
      written -= sent;
    }
    if (std::all_of(buffers.begin(), buffers.end(),
                    [](const asio::const_buffer& buffer) { return buffer.size() == 0; })) {
      return ErrorCodeT{};
    }
  }
  return asio::error::would_block;
}

// Writes every remaining byte of `buffers`, waiting until `expires_at` at most.
template <typename Stream, size_t N>
awaitable<ErrorCodeT> writeRest(Stream& stream, Deadline& deadline, Clock::time_point expires_at,
                                std::array<asio::const_buffer, N> buffers) {
  ArmedDeadline armed(deadline, expires_at);
  auto [error, written] = co_await asio::async_write(stream, buffers, kNoThrow);
  co_return error;
}

// Writes all of `buffers`: writeNow, then writeRest for whatever remains.
template <typename Stream, size_t N>
awaitable<ErrorCodeT> writeAll(Stream& stream, Deadline& deadline, Clock::time_point expires_at,
                               std::array<asio::const_buffer, N> buffers) {
  ErrorCodeT error = writeNow(stream, buffers);
  if (error == asio::error::would_block) {
    error = co_await writeRest(stream, deadline, expires_at, buffers);
  }
  co_return error;
}

std::string jsonString(std::string_view text) {
  return boost::json::serialize(boost::json::string(text));
}

// Request ids: a random per-process prefix and a counter, unique without a CSPRNG call per
// request.
std::string newRequestId() {
  static const std::string prefix = "req_" + hexEncode(randomBytes(6));
  static std::atomic<uint64_t> counter{0};
  constexpr int kCounterDigits = 12;
  uint64_t number = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  std::string id(prefix.size() + kCounterDigits, '0');
  std::copy(prefix.begin(), prefix.end(), id.begin());
  // The low 48 bits in lowercase hex, most significant digit first.
  for (int digit = kCounterDigits - 1; digit >= 0; --digit, number >>= 4) {
    id[prefix.size() + static_cast<size_t>(digit)] = "0123456789abcdef"[number & 0xf];
  }
  return id;
}

struct RequestRecord {
  std::string request_id;
  // Metering state of a request that got past admission: the meter reading its usage and
  // the budget reservation to settle with the real cost.
  std::optional<RequestMeter> meter;
  std::optional<limits::Reservation> reservation;
  limits::BudgetCaps budget_caps;
  // The worker's shared counters when the reservation was made there, so finish() settles it
  // where it lives.
  redis::RedisLimits* shared_limits = nullptr;
  bool finished = false;  // finish() ran: the row is written, the log line out
  // The fields of a chunked request's header. Beast adds the trailer fields of a chunked body
  // to the same container, each next to any field of the same name, so only the identity of
  // each header field distinguishes it from a trailer.
  std::vector<const void*> header_fields;
  Clock::time_point upstream_sent{};    // when the request was written upstream
  Clock::time_point upstream_header{};  // when the upstream's response header arrived
  // Overhead is counted from when the request body was read, less the time spent waiting
  // for upstream headers in every attempt (a failover makes several).
  Clock::time_point body_read{};
  Clock::duration upstream_waited{};
  std::optional<Clock::duration> overhead;
  std::string method;
  std::string provider;
  std::string path;
  Clock::time_point started = Clock::now();
  int status = 0;
  int upstream_status = 0;
  // The one clock reading that rate limits, the budget reservation and the credential choice
  // are evaluated at.
  int64_t limits_time_ms = 0;
  std::string outcome;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
};

// The content of a rate_limited response: its headers and the body's limit_type member.
struct RateDecisionView {
  limits::RateDecision decision;
  int64_t now_ms = 0;
};

// One agent connection: its socket, deadline, read buffer and the relay's scratch space,
// allocated once per connection rather than once per request.
struct ClientConnection {
  ClientConnection(DeadlineWatch& watch, tcp::socket client_socket)
      : socket(std::move(client_socket)), deadline(watch, socket) {}

  ~ClientConnection() {
    // Lingering close reads whatever the client still sent, a pipelined request with its
    // agent token included, into the relay buffer.
    secureZero(relay.get(), kRelayBufferSize);
    wipeUpstreamHead();
  }

  void wipeUpstreamHead() {
    secureZero(upstream_head.data(), upstream_head.size());
    upstream_head.clear();
  }

  tcp::socket socket;
  Deadline deadline;
  // Raw request bytes. Parsed bytes are zeroed at once, and the heap blocks behind the buffer
  // are zeroed when it grows or goes, so bytes of a request cut short are zeroed too.
  beast::basic_flat_buffer<ResourceAllocator<char>> buffer{ResourceAllocator<char>(wipingHeap())};
  std::string head;  // the message head being written
  // The upstream request head, credential included. Kept for a retry on a fresh connection,
  // and zeroed when forward() ends.
  std::string upstream_head;
  // The buffers of the write in progress: head, chunk size line, data, chunk end, last chunk.
  std::array<asio::const_buffer, 5> out_buffers;
  std::optional<ChunkSizeLine> chunk_size_line;
  std::unique_ptr<char[]> relay{new char[kRelayBufferSize]};

  // The state of the request in progress. It lives here rather than in the request's
  // coroutine frames because Asio recycles frames only up to about 1 KB and allocates larger
  // ones anew for every call.
  std::optional<RequestRecord> record;
  std::optional<AdmissionContext> context;
  // The arena of the header fields of the request in progress: the client's, the upstream
  // request's and the upstream response's. It is declared before them, so it outlives them.
  HeaderArena arena;
  Request upstream_request = withFieldAllocator<Request>(arena.allocator());
  std::optional<UpstreamResponseParser> upstream_parser;
  // The credential of the request in progress and the redactor that reads its needles. The
  // redactor is declared after the credential and reset before it.
  CredentialPlaintextPtr credential;
  std::optional<StreamRedactor> redactor;
  std::string final_bytes;  // the end of a relayed body, with what filters held back
  // The error response of a rejected request. It is kept here, not in a local of the request's
  // coroutines, whose frames must stay small enough for Asio to recycle.
  Error rejection;
  RateDecisionView rate;  // the rate limit decision of the request in progress
  TokenDigestMemo token_memo;
};

// The outcome of one of handleRequest()'s stages.
struct StageResult {
  enum class Next {
    kProceed,
    kReject,       // send ClientConnection::rejection
    kRateLimited,  // the same, with the rate limit fields of ClientConnection::rate
    kUnavailable,  // the shared counters failed, and ClientConnection::rejection contains the cause
  };
  Next next = Next::kProceed;
  bool keep_alive = false;

  bool proceeds() const { return next == Next::kProceed; }
};

// Passes bytes read from the upstream's body through the meter and, unless the client is gone,
// the redactor. Returns the bytes due to the client. At the end of the body (`done`), they
// include whatever the usage filter and the redactor held back.
std::string_view passUpstreamBytes(ClientConnection& client, RequestRecord& record,
                                   std::string_view upstream_bytes, bool client_gone, bool done) {
  std::string_view client_bytes =
      record.meter ? record.meter->onUpstreamBytes(upstream_bytes) : upstream_bytes;
  if (client_gone) {
    return {};
  }
  StreamRedactor& redactor = *client.redactor;
  std::string_view pending = redactor.active() ? redactor.feed(client_bytes) : client_bytes;
  if (!done) {
    return pending;
  }
  // Nothing more will come, so whatever the filter and the redactor held back is final.
  // `pending` is copied before the meter is asked for its tail, because both views may point
  // into buffers that the next call reuses.
  std::string& final_bytes = client.final_bytes;
  final_bytes.assign(pending);
  std::string_view tail = record.meter ? record.meter->finishClientStream() : std::string_view{};
  if (!tail.empty()) {
    final_bytes.append(redactor.active() ? redactor.feed(tail) : tail);
  }
  if (redactor.active()) {
    final_bytes.append(redactor.finish());
  }
  return final_bytes;
}

// The relay plan of exchange() for a response whose final header arrived.
struct ResponsePlan {
  enum class Next {
    kRelay,     // relay the body; the head for the client is in ClientConnection::head
    kFailover,  // drop the response: another marketplace credential takes the request
    kReject,    // send ClientConnection::rejection instead
  };
  Next next = Next::kRelay;
  bool upstream_keep_alive = false;
  bool client_keep_alive = false;
  bool chunked = false;  // the body is re-framed as chunked for the client
};

// Logs the budget thresholds a settlement crossed and hands them to `on_event`. Each threshold
// is reported once a month per agent or project, by the instance that crossed it.
void reportBudgetEvents(const limits::BudgetEvents& events, const std::string& agent_id,
                        const std::string& project_id, const std::string& provider,
                        const std::string& request_id,
                        const std::function<void(const ProxyEvent&)>& on_event) {
  const std::pair<bool, std::string_view> crossed[] = {
      {events.agent_warning, "budget.warning"},
      {events.project_warning, "budget.warning"},
      {events.agent_exceeded, "budget.exceeded"},
      {events.project_exceeded, "budget.exceeded"},
  };
  for (size_t i = 0; i < std::size(crossed); ++i) {
    if (crossed[i].first) {
      bool agent_scope = i % 2 == 0;
      spdlog::warn(R"({{"msg":"{}","scope":"{}","id":"{}","request_id":"{}"}})", crossed[i].second,
                   agent_scope ? "agent" : "project", agent_scope ? agent_id : project_id,
                   request_id);
      if (on_event) {
        on_event(ProxyEvent{.type = std::string(crossed[i].second),
                            .project_id = project_id,
                            .agent_id = agent_id,
                            .provider = provider,
                            .scope = agent_scope ? "agent" : "project",
                            .limit_type = "",
                            .request_id = request_id});
      }
    }
  }
}

// The upstream's judgement of the credential, for the marketplace circuit breaker. Errors
// without a response (connect failures, timeouts) are the host's, not the credential's.
marketplace::Verdict credentialVerdict(const RequestRecord& record) {
  int status = record.upstream_status;
  if (status == 401 || status == 403 || status == 429 || status >= 500) {
    return marketplace::Verdict::kFailure;
  }
  return status >= 200 ? marketplace::Verdict::kSuccess : marketplace::Verdict::kNeutral;
}

// Milliseconds with three decimals, for x-keystore-overhead-ms.
std::string formatMillis(Clock::duration duration) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
  micros = std::max<int64_t>(micros, 0);
  // Formatted by hand because fmt::format cost about 850 instructions per call here
  // (callgrind).
  std::string text = std::to_string(micros / 1000);
  int64_t fraction = micros % 1000;
  text.push_back('.');
  text.push_back(static_cast<char>('0' + fraction / 100));
  text.push_back(static_cast<char>('0' + fraction / 10 % 10));
  text.push_back(static_cast<char>('0' + fraction % 10));
  return text;
}

// Whether an operation failed because its connection's deadline passed.
bool timedOut(const ErrorCodeT& error, const Deadline& deadline) {
  return deadline.expired() || error == asio::error::timed_out;
}

// Lists the identities of the fields in `fields`, for dropTrailers.
template <typename FieldsT>
void listFields(const FieldsT& fields, std::vector<const void*>& identities) {
  identities.clear();
  for (const auto& field : fields) {
    identities.push_back(&field);
  }
}

// Sets the error response for an upstream failure, and the ledger outcome and status that
// match its code.
void describeUpstreamFailure(ErrorCode code, std::string message, RequestRecord& record,
                             Error& rejection) {
  record.status = httpStatus(code);
  record.outcome = std::string(errorCodeName(code));
  rejection = Error{code, std::move(message)};
}

// Sets the error response and ledger outcome for an upstream response body that failed before
// any of it reached the client.
void describeBodyFailure(const ErrorCodeT& body_error, const Deadline& deadline,
                         RequestRecord& record, Error& rejection) {
  if (timedOut(body_error, deadline)) {
    describeUpstreamFailure(ErrorCode::kUpstreamTimeout,
                            "the upstream stopped sending its response body", record, rejection);
  } else {
    describeUpstreamFailure(ErrorCode::kUpstreamInvalidResponse,
                            "the upstream sent an invalid response body", record, rejection);
  }
}

// Removes the trailer fields of a chunked request body: every field not in `header_fields`
// (see listFields). The header was admitted before the body was read, so a trailer that
// reached the upstream as a header field would bypass that check (a method override, say).
template <typename FieldsT>
void dropTrailers(FieldsT& fields, const std::vector<const void*>& header_fields) {
  if (static_cast<size_t>(std::distance(fields.begin(), fields.end())) == header_fields.size()) {
    return;  // no trailer, as almost always
  }
  for (auto field = fields.begin(); field != fields.end();) {
    if (std::find(header_fields.begin(), header_fields.end(), &*field) == header_fields.end()) {
      field = fields.erase(field);
    } else {
      ++field;
    }
  }
}

// Sets the error response and ledger outcome for an upstream response header that could not be
// read.
void describeHeaderFailure(const ErrorCodeT& header_error, const Deadline& deadline,
                           RequestRecord& record, Error& rejection) {
  ErrorCode code = ErrorCode::kUpstreamInvalidResponse;
  std::string_view message = "the upstream sent an invalid response";
  if (timedOut(header_error, deadline)) {
    code = ErrorCode::kUpstreamTimeout;
    message = "the upstream did not respond in time";
  } else if (header_error == http::error::end_of_stream || header_error == asio::error::eof ||
             header_error == asio::error::connection_reset ||
             header_error == asio::ssl::error::stream_truncated) {
    // The request may have reached the provider, so it is never replayed.
    code = ErrorCode::kUpstreamUnreachable;
    message = "the upstream closed the connection without answering";
  }
  describeUpstreamFailure(code, std::string(message), record, rejection);
}

}  // namespace

struct ProxyServer::Impl {
  Impl(ProxyOptions opts, const catalog::Catalog& cat, SnapshotHolder& snaps,
       metering::LedgerWriter& led, limits::BudgetTracker& bud, telemetry::ProxyMetrics& met)
      : options(std::move(opts)),
        catalog(cat),
        snapshots(snaps),
        ledger(led),
        budgets(bud),
        metrics(met),
        tls(ssl::context::tls_client) {}

  ProxyOptions options;
  const catalog::Catalog& catalog;
  SnapshotHolder& snapshots;
  metering::LedgerWriter& ledger;
  limits::BudgetTracker& budgets;
  telemetry::ProxyMetrics& metrics;
  ssl::context tls;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int> active_requests{0};
  limits::RateLimiter rate_limiter;

  Result<void> setUpTls();
  Result<std::string> bind();

  awaitable<void> acceptLoop(Worker& worker);
  awaitable<void> sweepLoop(Worker& worker);
  awaitable<void> runSession(Worker& worker, tcp::socket socket);
  awaitable<bool> handleRequest(Worker& worker, ClientConnection& client,
                                ClientRequestParser& parser);
  // The stages of handleRequest(). Those returning a StageResult tell whether the request
  // proceeds or how it is rejected. A rejected request is already finished (logged and
  // counted), except on kUnavailable, which writeRejection() finishes.
  awaitable<bool> serveHealthCheck(ClientConnection& client, const Request& request,
                                   bool keep_alive);
  awaitable<bool> writeRejection(ClientConnection& client, RequestRecord& record, unsigned version,
                                 StageResult result);
  // Records `error` as the response, finishes the request (with a ledger row only when
  // `write_ledger`, for a request that may have reached the upstream), and returns the result
  // that sends it.
  StageResult reject(ClientConnection& client, RequestRecord& record, Error error, bool keep_alive,
                     bool write_ledger = false);
  StageResult admitHeader(ClientConnection& client, ClientRequestParser& parser,
                          RequestRecord& record, bool keep_alive_on_error);
  void rejectOversizedBody(ClientConnection& client, RequestRecord& record);
  // Sets a 400 invalid_request rejection and returns true when `error` is a parse error of the
  // request body (an invalid chunk size, say), and returns false for a client that went away.
  bool rejectMalformedBody(ClientConnection& client, RequestRecord& record,
                           const ErrorCodeT& error);
  StageResult checkBody(ClientConnection& client, const Request& client_request,
                        RequestRecord& record, bool client_keep_alive);
  // The rate-limit and budget stages come in two forms. Counted in memory, they finish without
  // suspending, so the request's coroutine calls them directly instead of through a coroutine
  // frame of their own. Counted in Redis, they wait for its reply.
  StageResult checkRateLimits(Worker& worker, ClientConnection& client, RequestRecord& record,
                              bool client_keep_alive);
  awaitable<StageResult> checkSharedRateLimits(Worker& worker, ClientConnection& client,
                                               RequestRecord& record, bool client_keep_alive);
  // Sets record.limits_time_ms and record.shared_limits, and returns the rate limits that apply
  // (none when the agent and project set none).
  std::optional<limits::RateLimits> prepareRateLimits(Worker& worker, ClientConnection& client,
                                                      RequestRecord& record);
  limits::RateLimits rateLimitsOf(const AdmissionContext& context) const;
  StageResult rejectIfRateLimited(ClientConnection& client, RequestRecord& record,
                                  bool client_keep_alive);
  StageResult reserveBudget(ClientConnection& client, Request& client_request,
                            RequestRecord& record, bool client_keep_alive);
  awaitable<StageResult> reserveSharedBudget(ClientConnection& client, Request& client_request,
                                             RequestRecord& record, bool client_keep_alive);
  // Starts the request's meter and returns the worst-case cost to reserve (0 without caps).
  int64_t startMetering(ClientConnection& client, Request& client_request, RequestRecord& record);
  StageResult settleReservation(ClientConnection& client, RequestRecord& record,
                                std::expected<limits::Reservation, limits::BudgetRefusal> reserved,
                                bool client_keep_alive);
  // Resolves the credential, sends the request upstream and relays the response, moving to
  // another marketplace credential when the upstream refused or throttled the first.
  awaitable<bool> forward(Worker& worker, ClientConnection& client, Request& client_request,
                          RequestRecord& record, unsigned version, bool client_keep_alive);
  StageResult takeCredential(ClientConnection& client, RequestRecord& record,
                             bool client_keep_alive);
  StageResult buildUpstreamRequest(ClientConnection& client, const Request& client_request,
                                   RequestRecord& record, const Secret& credential);
  awaitable<Result<std::unique_ptr<UpstreamConnection>>> connectUpstream(
      Worker& worker, const catalog::ProviderSpec& provider);

  template <typename Stream>
  awaitable<bool> exchange(Stream& upstream, UpstreamConnection& connection,
                           ClientConnection& client, Request& request,
                           const CredentialPlaintext& credential, unsigned client_version,
                           bool client_keep_alive, RequestRecord& record, bool& reusable,
                           AdmissionContext& context, AdmissionContext* failover,
                           CredentialPlaintextPtr& next_credential);
  // Checks the upstream's final response header and prepares the client's head, the body
  // filters and the redactor. Synchronous, so that its locals stay out of exchange()'s frame.
  ResponsePlan planResponse(UpstreamResponseParser& parser, ClientConnection& client,
                            const CredentialPlaintext& credential, unsigned client_version,
                            bool client_keep_alive, RequestRecord& record,
                            AdmissionContext* failover, CredentialPlaintextPtr& next_credential);

  awaitable<bool> writeError(ClientConnection& client, const Error& error,
                             const RequestRecord& record, unsigned version, bool keep_alive,
                             const RateDecisionView* rate = nullptr);
  // Refuses a request whose limits could not be checked because the shared counters are
  // unreachable. The client learns only that; the log gets the cause.
  awaitable<bool> refuseUnavailable(ClientConnection& client, const Error& error,
                                    RequestRecord& record, const AdmissionContext& context,
                                    unsigned version, bool keep_alive);
  void finish(RequestRecord& record, const AdmissionContext* context, bool write_ledger);
};

Result<void> ProxyServer::Impl::setUpTls() {
  boost::system::error_code error;
  tls.set_default_verify_paths(error);
  if (error) {
    return fail(ErrorCode::kInternal, "cannot load the system CA certificates: " + error.message());
  }
  if (!options.upstream_ca_file.empty()) {
    tls.load_verify_file(options.upstream_ca_file, error);
    if (error) {
      return fail(
          ErrorCode::kInvalidRequest,
          "cannot load the upstream CA file " + options.upstream_ca_file + ": " + error.message());
    }
  }
  tls.set_verify_mode(ssl::verify_peer);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  return {};
}

Result<std::string> ProxyServer::Impl::bind() {
  boost::system::error_code error;
  auto address = asio::ip::make_address(options.listen_host, error);
  if (error) {
    return fail(ErrorCode::kInvalidRequest,
                "--listen host '" + options.listen_host + "' is not an IP address");
  }
  uint16_t port = options.listen_port;
  for (auto& worker : workers) {
    auto acceptor = std::make_unique<tcp::acceptor>(worker->io);
    tcp::endpoint endpoint(address, port);
    acceptor->open(endpoint.protocol(), error);
    if (!error) {
      acceptor->set_option(asio::socket_base::reuse_address(true), error);
    }
    if (!error) {
      int one = 1;
      if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) !=
          0) {
        error = boost::system::error_code(errno, boost::system::system_category());
      }
    }
    if (!error) {
      acceptor->bind(endpoint, error);
    }
    if (!error) {
      acceptor->listen(asio::socket_base::max_listen_connections, error);
    }
    if (error) {
      return fail(ErrorCode::kInvalidRequest, "cannot listen on " + options.listen_host + ":" +
                                                  std::to_string(port) + ": " + error.message());
    }
    // Port 0 picks a free port for the first acceptor; the others share that port.
    port = acceptor->local_endpoint().port();
    worker->acceptor = std::move(acceptor);
  }
  auto bound = workers.front()->acceptor->local_endpoint();
  std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                             : bound.address().to_string();
  return host + ":" + std::to_string(bound.port());
}

awaitable<void> ProxyServer::Impl::acceptLoop(Worker& worker) {
  while (worker.acceptor && worker.acceptor->is_open()) {
    auto [error, socket] = co_await worker.acceptor->async_accept(kNoThrow);
    if (error) {
      if (error == asio::error::operation_aborted || !worker.acceptor->is_open()) {
        break;
      }
      spdlog::warn("proxy accept failed: {}", error.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), error);
    socket.non_blocking(true, error);
    asio::co_spawn(worker.io, runSession(worker, std::move(socket)), asio::detached);
  }
}

awaitable<void> ProxyServer::Impl::sweepLoop(Worker& worker) {
  while (true) {
    worker.sweep_timer.expires_after(kDeadlineSweepInterval);
    auto [error] = co_await worker.sweep_timer.async_wait(kNoThrow);
    if (error) {
      co_return;
    }
    worker.watch.sweep(Clock::now());
  }
}

awaitable<void> ProxyServer::Impl::runSession(Worker& worker, tcp::socket socket) {
  ClientConnection client(worker.watch, std::move(socket));
  while (true) {
    // Nothing from the previous request uses arena memory any more, because its parser went
    // out of scope and the connection's messages were reset below.
    client.arena.rewind();
    ClientRequestParser parser(std::piecewise_construct, std::make_tuple(),
                               std::make_tuple(client.arena.allocator()));
    parser.header_limit(kMaxHeaderBytes);
    // The body limit is applied after admission, so an unauthenticated request learns that
    // first and an oversized Content-Length gets 413 rather than a parse error.
    parser.body_limit(boost::none);
    auto error = co_await parseFrom(client.socket, client.deadline,
                                    coarseNow() + options.client_header_timeout, client.buffer,
                                    parser, [](const auto& p) { return p.is_header_done(); });
    if (error) {
      if (error == http::error::end_of_stream || error == asio::error::connection_reset ||
          client.deadline.expired() || error == asio::error::operation_aborted ||
          error == asio::error::bad_descriptor) {
        break;
      }
      RequestRecord record;
      record.request_id = newRequestId();
      record.status = 400;
      record.outcome = "invalid_request";
      // g++ 12 may destroy temporaries inside a co_await expression twice, so every
      // argument of an awaited call is a named variable.
      static_assert(kMaxHeaderBytes == 64 * 1024, "the message below names the limit");
      Error malformed{ErrorCode::kInvalidRequest,
                      error == http::error::header_limit
                          ? "the request header is larger than the limit of 64 KiB"
                          : "malformed HTTP request"};
      co_await writeError(client, malformed, record, 11, false);
      break;
    }
    active_requests.fetch_add(1, std::memory_order_relaxed);
    bool keep_alive = co_await handleRequest(worker, client, parser);
    active_requests.fetch_sub(1, std::memory_order_relaxed);
    // An idle connection keeps neither the snapshot nor the agent token of its last request,
    // nor the upstream request with the credential injected into it.
    client.context.reset();
    client.record.reset();
    client.upstream_parser.reset();
    client.redactor.reset();
    client.credential.reset();
    client.upstream_request = withFieldAllocator<Request>(client.arena.allocator());
    if (!keep_alive) {
      break;
    }
  }
  // The connection's messages were reset above, so the arena is unused and its header bytes
  // (the last upstream request's credential among them) are zeroed before the lingering close.
  client.arena.rewind();
  // Lingering close: a response sent before the request body was read leaves input unread,
  // and closing a socket with unread input sends a reset that can destroy the response before
  // the client reads it. Half-close, then discard input for a bounded time and size.
  ErrorCodeT ignored;
  client.socket.shutdown(tcp::socket::shutdown_send, ignored);
  client.deadline.expiresAfter(std::chrono::seconds(2));
  uint64_t discarded = 0;
  while (discarded < options.max_request_bytes + (1u << 20) && client.socket.is_open()) {
    auto [read_error, read] = co_await client.socket.async_read_some(
        asio::buffer(client.relay.get(), kRelayBufferSize), kNoThrow);
    if (read_error) {
      break;
    }
    discarded += read;
  }
  client.socket.close(ignored);
}

awaitable<bool> ProxyServer::Impl::writeError(ClientConnection& client, const Error& error,
                                              const RequestRecord& record, unsigned version,
                                              bool keep_alive, const RateDecisionView* rate) {
  http::response<http::string_body> response{static_cast<http::status>(httpStatus(error.code)),
                                             version};
  response.set(http::field::content_type, "application/json");
  response.set("x-request-id", record.request_id);
  std::string extra;
  if (rate != nullptr) {
    const limits::RateDecision& decision = rate->decision;
    response.set(http::field::retry_after,
                 std::to_string(decision.retryAfterSeconds(rate->now_ms)));
    response.set("x-ratelimit-limit", std::to_string(decision.limit));
    response.set("x-ratelimit-remaining", std::to_string(decision.remaining));
    // Unix seconds, rounded up, when the limit has room again.
    response.set("x-ratelimit-reset", std::to_string((decision.reset_at_ms + 999) / 1000));
    extra = R"(,"limit_type":")" + std::string(limits::limitTypeName(decision.limit_type)) + "\"";
  }
  response.body() = R"({"error":{"type":"keystore_error","code":")" +
                    std::string(errorCodeName(error.code)) + R"(","message":)" +
                    jsonString(error.message) + R"(,"request_id":")" + record.request_id + "\"" +
                    extra + "}}";
  response.keep_alive(keep_alive);
  response.prepare_payload();
  client.head.clear();
  appendStatusLineAndFields(client.head, response.base(), version);
  endHead(client.head);
  auto write_error =
      co_await writeAll(client.socket, client.deadline, coarseNow() + options.idle_timeout,
                        std::array{bytes(client.head), bytes(response.body())});
  co_return !write_error && keep_alive;
}

awaitable<bool> ProxyServer::Impl::refuseUnavailable(ClientConnection& client, const Error& error,
                                                     RequestRecord& record,
                                                     const AdmissionContext& context,
                                                     unsigned version, bool keep_alive) {
  spdlog::error(R"({{"msg":"limits unavailable","request_id":"{}","error":{}}})", record.request_id,
                jsonString(error.message));
  Error refused{ErrorCode::kLimitsUnavailable,
                "rate limits and budgets cannot be checked right now; retry shortly"};
  record.status = httpStatus(refused.code);
  record.outcome = std::string(errorCodeName(refused.code));
  finish(record, &context, false);
  co_return co_await writeError(client, refused, record, version, keep_alive);
}

void ProxyServer::Impl::finish(RequestRecord& record, const AdmissionContext* context,
                               bool write_ledger) {
  if (record.finished) {
    return;
  }
  record.finished = true;
  // One reading of each clock serves every figure below.
  const Clock::time_point finished_at = Clock::now();
  const int64_t finished_ms = nowUnixMillis();
  auto elapsed =
      std::chrono::duration_cast<std::chrono::microseconds>(finished_at - record.started);
  const TokenEntry* token = context ? context->token : nullptr;
  std::string_view mode = context ? std::string_view(context->mode) : std::string_view{};
  if (record.upstream_sent != Clock::time_point{}) {
    // Upstream time runs from sending the request to the end of its response, which is now.
    auto upstream = finished_at - record.upstream_sent;
    auto overhead = record.overhead.value_or(elapsed - upstream);
    metrics.requestFinished(record.provider, mode, record.outcome, upstream,
                            std::chrono::duration_cast<std::chrono::nanoseconds>(overhead));
  } else {
    metrics.requestFinished(record.provider, mode, record.outcome, std::nullopt, elapsed);
  }
  std::string_view project = token ? std::string_view(token->project_id) : std::string_view{};
  std::string_view agent = token ? std::string_view(token->agent_id) : std::string_view{};
  std::string_view token_id = token ? std::string_view(token->token_id) : std::string_view{};

  // One JSON line per request: ids, statuses and sizes only, never a header value or body.
  if (!spdlog::should_log(spdlog::level::info)) {
    // Skips formatting entirely; ids and sizes below are only needed for the line.
  } else {
    spdlog::info(
        R"({{"msg":"request","request_id":"{}","project":"{}","agent":"{}","token_id":"{}","provider":{},"mode":"{}","credential_id":"{}","method":{},"path":{},"status":{},"upstream_status":{},"outcome":"{}","bytes_in":{},"bytes_out":{},"duration_ms":{:.3f}}})",
        record.request_id, project, agent, token_id, jsonString(record.provider),
        context ? std::string_view(context->mode) : std::string_view{},
        context ? std::string_view(context->credential_id) : std::string_view{},
        jsonString(record.method), jsonString(record.path), record.status, record.upstream_status,
        record.outcome, record.bytes_in, record.bytes_out,
        static_cast<double>(elapsed.count()) / 1000.0);
  }

  if (context != nullptr && context->health) {
    context->health->report(credentialVerdict(record), finished_ms);
  }
  if (!write_ledger || token == nullptr) {
    // The request never reached the upstream, so its reservation is released uncharged.
    if (record.reservation) {
      if (record.shared_limits != nullptr) {
        record.shared_limits->release(*record.reservation);
      } else {
        (void)budgets.release(*record.reservation);
      }
      record.reservation.reset();
    }
    return;
  }
  // The ledger writer clears the row it copies and keeps its strings' capacity, so filling
  // this thread's row copies into strings that already have room.
  thread_local store::LedgerRow row;
  row.time = finished_ms;
  row.request_id = record.request_id;
  row.project_id = token->project_id;
  row.agent_id = token->agent_id;
  row.token_id = token->token_id;
  row.provider = record.provider;
  row.mode = context->mode;
  row.credential_id = context->credential_id;
  row.method = record.method;
  row.path = record.path;
  row.upstream_status = record.upstream_status;
  row.outcome = record.outcome;
  row.bytes_in = record.bytes_in;
  row.bytes_out = record.bytes_out;
  row.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  if (record.meter) {
    record.meter->fillRow(row, context->snapshot->prices, context->mode == "marketplace");
    if (row.outcome == "usage_missing") {
      metrics.usageMissing(record.provider);
      spdlog::warn(R"({{"msg":"usage missing","request_id":"{}","provider":{}}})",
                   record.request_id, jsonString(record.provider));
    }
    std::array<telemetry::ProxyMetrics::UnitCount, store::kUsageUnits.size()> units;
    for (size_t i = 0; i < units.size(); ++i) {
      units[i] = {store::kUsageUnits[i], row.units.*store::kUnitCountFields[i]};
    }
    metrics.usage(record.provider, row.mode, units);
    if (int64_t tokens = record.meter->tokensUsed(); tokens > 0) {
      if (record.shared_limits != nullptr) {
        record.shared_limits->recordTokens(token->agent_id, record.provider, tokens, row.time);
      } else {
        rate_limiter.recordTokens(token->agent_id, record.provider, tokens, row.time);
      }
    }
  }
  if (record.reservation && record.shared_limits != nullptr) {
    record.shared_limits->settle(
        *record.reservation, row.cost_micros, record.budget_caps, row.time,
        [request_id = record.request_id, agent_id = token->agent_id, project_id = token->project_id,
         provider = record.provider,
         on_event = &options.on_event](Result<limits::BudgetEvents> settled) {
          if (!settled) {
            spdlog::error("budget reservation of request {} could not be settled: {}", request_id,
                          settled.error().message);
            return;
          }
          reportBudgetEvents(*settled, agent_id, project_id, provider, request_id, *on_event);
        });
    record.reservation.reset();
  } else if (record.reservation) {
    auto settled =
        budgets.settle(*record.reservation, row.cost_micros, record.budget_caps, row.time);
    record.reservation.reset();
    if (!settled) {
      spdlog::error("budget reservation of request {} could not be settled: {}", record.request_id,
                    settled.error().message);
    } else {
      reportBudgetEvents(*settled, token->agent_id, token->project_id, record.provider,
                         record.request_id, options.on_event);
    }
  }
  if (options.ledger_strict) {
    ledger.appendDurable(row);
  } else {
    ledger.append(row);
  }
}

awaitable<bool> ProxyServer::Impl::handleRequest(Worker& worker, ClientConnection& client,
                                                 ClientRequestParser& parser) {
  // Each stage that does not wait is a plain function, so its locals live on the stack. The
  // coroutine frame keeps only what crosses a suspension, and stays small enough for Asio to
  // recycle instead of allocating it for every request.
  // NOTE: no test checks the frame sizes. They were measured with a uprobe on Asio's frame
  // allocator (992 bytes at most, against the 1020-byte limit), and g++ may lay frames out
  // differently in another version.
  RequestRecord& record = client.record.emplace();
  record.request_id = newRequestId();
  auto& header = parser.get();
  const unsigned version = header.version();
  record.method = std::string(header.method_string());
  const bool has_body = parser.content_length().value_or(0) > 0 || parser.chunked();
  // An error response sent before the body was read leaves the body on the wire, so the
  // connection cannot carry another request. The parser's keep-alive reading, from flags it set
  // while parsing, counts every Connection field, where the header's reads only the first and
  // parses its tokens again.
  const bool keep_alive_on_error = parser.keep_alive() && !has_body;

  if (header.target() == "/healthz" &&
      (header.method() == http::verb::get || header.method() == http::verb::head)) {
    co_return co_await serveHealthCheck(client, header, keep_alive_on_error);
  }

  StageResult result = admitHeader(client, parser, record, keep_alive_on_error);
  if (!result.proceeds()) {
    co_return co_await writeRejection(client, record, version, result);
  }

  // The client waits for an interim 100 response before it sends the body. HTTP/1.0 has no
  // interim responses, so its clients never get one (RFC 9110, 10.1.1).
  if (version >= 11 && beast::iequals(firstValue(header, http::field::expect), "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    auto error =
        co_await writeAll(client.socket, client.deadline, coarseNow() + options.idle_timeout,
                          std::array{bytes(kContinue)});
    if (error) {
      co_return false;
    }
  }

  parser.eager(true);
  if (parser.chunked()) {
    listFields(header, record.header_fields);
  }
  auto read_error =
      co_await parseFrom(client.socket, client.deadline, coarseNow() + options.idle_timeout,
                         client.buffer, parser, [](const auto& p) { return p.is_done(); });
  if (read_error) {
    // One co_await serves both rejections, which keeps the coroutine frame small.
    const bool oversized = read_error == http::error::body_limit;
    if (oversized) {
      rejectOversizedBody(client, record);
    }
    if (oversized || rejectMalformedBody(client, record, read_error)) {
      co_await writeError(client, client.rejection, record, version, false);
      co_return false;
    }
    // The client went away before sending its whole request: nothing reached the provider.
    record.outcome = "client_aborted";
    finish(record, &*client.context, false);
    co_return false;
  }

  record.body_read = Clock::now();
  if (parser.chunked()) {
    dropTrailers(parser.get(), record.header_fields);
  }
  const bool client_keep_alive = parser.keep_alive();
  result = checkBody(client, parser.get(), record, client_keep_alive);
  if (result.proceeds()) {
    if (worker.shared_limits == nullptr) {
      result = checkRateLimits(worker, client, record, client_keep_alive);
    } else {
      result = co_await checkSharedRateLimits(worker, client, record, client_keep_alive);
    }
  }
  if (result.proceeds()) {
    if (worker.shared_limits == nullptr) {
      result = reserveBudget(client, parser.get(), record, client_keep_alive);
    } else {
      result = co_await reserveSharedBudget(client, parser.get(), record, client_keep_alive);
    }
  }
  if (!result.proceeds()) {
    co_return co_await writeRejection(client, record, version, result);
  }
  co_return co_await forward(worker, client, parser.get(), record, version, client_keep_alive);
}

awaitable<bool> ProxyServer::Impl::serveHealthCheck(ClientConnection& client,
                                                    const Request& request, bool keep_alive) {
  const unsigned version = request.version();
  http::response<http::string_body> response{http::status::ok, version};
  response.set(http::field::content_type, "application/json");
  response.body() = R"({"status":"ok"})";
  response.keep_alive(keep_alive);
  response.prepare_payload();
  client.head.clear();
  appendStatusLineAndFields(client.head, response.base(), version);
  endHead(client.head);
  // HEAD gets the header with the body's length and no body.
  std::string_view body =
      request.method() == http::verb::head ? std::string_view{} : std::string_view(response.body());
  auto error = co_await writeAll(client.socket, client.deadline, coarseNow() + options.idle_timeout,
                                 std::array{bytes(client.head), bytes(body)});
  co_return !error && keep_alive;
}

awaitable<bool> ProxyServer::Impl::writeRejection(ClientConnection& client, RequestRecord& record,
                                                  unsigned version, StageResult result) {
  switch (result.next) {
    case StageResult::Next::kUnavailable:
      co_return co_await refuseUnavailable(client, client.rejection, record, *client.context,
                                           version, result.keep_alive);
    case StageResult::Next::kRateLimited:
      co_return co_await writeError(client, client.rejection, record, version, result.keep_alive,
                                    &client.rate);
    case StageResult::Next::kReject:
    case StageResult::Next::kProceed:
      break;
  }
  co_return co_await writeError(client, client.rejection, record, version, result.keep_alive);
}

StageResult ProxyServer::Impl::reject(ClientConnection& client, RequestRecord& record, Error error,
                                      bool keep_alive, bool write_ledger) {
  record.status = httpStatus(error.code);
  record.outcome = std::string(errorCodeName(error.code));
  client.rejection = std::move(error);
  finish(record, client.context ? &*client.context : nullptr, write_ledger);
  return StageResult{StageResult::Next::kReject, keep_alive};
}

StageResult ProxyServer::Impl::admitHeader(ClientConnection& client, ClientRequestParser& parser,
                                           RequestRecord& record, bool keep_alive_on_error) {
  auto& header = parser.get();
  int64_t now_ms = nowUnixMillis();
  if (snapshots.staleFor(now_ms, kStaleSnapshotLimitMs)) {
    return reject(client, record,
                  Error{ErrorCode::kNoCapacity,
                        "the proxy cannot load its configuration; requests are refused until it "
                        "can"},
                  keep_alive_on_error);
  }

  AdmissionContext& context = client.context.emplace();
  context.snapshot = snapshots.current();
  auto admitted = admitRequest(header.method_string(), header.target(), header, catalog, now_ms,
                               context, &client.token_memo);
  record.provider = context.provider ? context.provider->id : std::string{};
  record.path = context.route.path;
  if (!admitted) {
    return reject(client, record, std::move(admitted.error()), keep_alive_on_error);
  }

  if (hasTransferCodingOtherThanChunked(header)) {
    return reject(client, record,
                  Error{ErrorCode::kInvalidRequest,
                        "the request uses a transfer coding other than chunked, which the proxy "
                        "does not decode; send the body with Content-Length or chunked alone"},
                  false);
  }

  if (parser.content_length() && *parser.content_length() > options.max_request_bytes) {
    rejectOversizedBody(client, record);
    return StageResult{StageResult::Next::kReject, false};
  }
  parser.body_limit(options.max_request_bytes);
  return StageResult{};
}

bool ProxyServer::Impl::rejectMalformedBody(ClientConnection& client, RequestRecord& record,
                                            const ErrorCodeT& error) {
  // Beast's parse errors share one category. Of them, these two mean the client closed the
  // connection early rather than sent bytes that are not HTTP.
  if (error.category() != http::make_error_code(http::error::bad_chunk).category() ||
      error == http::error::end_of_stream || error == http::error::partial_message) {
    return false;
  }
  reject(client, record,
         Error{ErrorCode::kInvalidRequest, "malformed request body: " + error.message()}, false);
  return true;
}

void ProxyServer::Impl::rejectOversizedBody(ClientConnection& client, RequestRecord& record) {
  reject(client, record,
         Error{ErrorCode::kPayloadTooLarge,
               "the request body exceeds " + std::to_string(options.max_request_bytes) + " bytes"},
         false);
}

StageResult ProxyServer::Impl::checkBody(ClientConnection& client, const Request& client_request,
                                         RequestRecord& record, bool client_keep_alive) {
  // Content-Type is a singleton field; with two, the check below and the upstream could read
  // the body in different ways.
  if (countFields(client_request, http::field::content_type) > 1) {
    return reject(client, record,
                  Error{ErrorCode::kInvalidRequest, "the request has more than one Content-Type"},
                  client_keep_alive);
  }
  const AdmissionContext& context = *client.context;
  auto model_allowed = checkModelRestriction(context.token->models, client_request.method_string(),
                                             firstValue(client_request, http::field::content_type),
                                             context.route.query, client_request.body());
  if (!model_allowed) {
    return reject(client, record, std::move(model_allowed.error()), client_keep_alive);
  }
  return StageResult{};
}

// Step 5: rate limits, then budgets, before any credential is touched.
std::optional<limits::RateLimits> ProxyServer::Impl::prepareRateLimits(Worker& worker,
                                                                       ClientConnection& client,
                                                                       RequestRecord& record) {
  const limits::RateLimits rate_limits = rateLimitsOf(*client.context);
  record.limits_time_ms = nowUnixMillis();
  record.shared_limits = worker.shared_limits.get();
  if (!rate_limits.rpm && !rate_limits.rpd && !rate_limits.tpm) {
    return std::nullopt;
  }
  return rate_limits;
}

StageResult ProxyServer::Impl::checkRateLimits(Worker& worker, ClientConnection& client,
                                               RequestRecord& record, bool client_keep_alive) {
  std::optional<limits::RateLimits> rate_limits = prepareRateLimits(worker, client, record);
  if (!rate_limits) {
    return StageResult{};
  }
  const int64_t now_ms = record.limits_time_ms;
  client.rate = RateDecisionView{
      rate_limiter.admit(client.context->token->agent_id, record.provider, *rate_limits, now_ms),
      now_ms};
  return rejectIfRateLimited(client, record, client_keep_alive);
}

awaitable<StageResult> ProxyServer::Impl::checkSharedRateLimits(Worker& worker,
                                                                ClientConnection& client,
                                                                RequestRecord& record,
                                                                bool client_keep_alive) {
  std::optional<limits::RateLimits> rate_limits = prepareRateLimits(worker, client, record);
  if (!rate_limits) {
    co_return StageResult{};
  }
  const int64_t now_ms = record.limits_time_ms;
  Result<limits::RateDecision> shared = co_await record.shared_limits->admit(
      client.context->token->agent_id, record.provider, *rate_limits, now_ms);
  if (!shared) {
    client.rejection = std::move(shared.error());
    co_return StageResult{StageResult::Next::kUnavailable, client_keep_alive};
  }
  client.rate = RateDecisionView{*shared, now_ms};
  co_return rejectIfRateLimited(client, record, client_keep_alive);
}

limits::RateLimits ProxyServer::Impl::rateLimitsOf(const AdmissionContext& context) const {
  const ProjectEntry& project = *context.project;
  const AgentEntry& agent = context.snapshot->agents.at(context.token->agent_id);
  return limits::RateLimits{agent.limits.rpm ? agent.limits.rpm : project.default_limits.rpm,
                            agent.limits.rpd ? agent.limits.rpd : project.default_limits.rpd,
                            agent.limits.tpm ? agent.limits.tpm : project.default_limits.tpm};
}

StageResult ProxyServer::Impl::rejectIfRateLimited(ClientConnection& client, RequestRecord& record,
                                                   bool client_keep_alive) {
  const limits::RateDecision& decision = client.rate.decision;
  if (decision.allowed) {
    return StageResult{};
  }
  const TokenEntry& token = *client.context->token;
  metrics.rateLimited(record.provider, limits::limitTypeName(decision.limit_type));
  if (options.on_event) {
    options.on_event(
        ProxyEvent{.type = "rate_limited",
                   .project_id = token.project_id,
                   .agent_id = token.agent_id,
                   .provider = record.provider,
                   .scope = "",
                   .limit_type = std::string(limits::limitTypeName(decision.limit_type)),
                   .request_id = record.request_id});
  }
  StageResult result =
      reject(client, record,
             Error{ErrorCode::kRateLimited,
                   "agent " + token.agent_id + " is over its " +
                       std::string(limits::limitTypeName(decision.limit_type)) + " limit of " +
                       std::to_string(decision.limit) + " for provider " + record.provider},
             client_keep_alive);
  result.next = StageResult::Next::kRateLimited;
  return result;
}

StageResult ProxyServer::Impl::reserveBudget(ClientConnection& client, Request& client_request,
                                             RequestRecord& record, bool client_keep_alive) {
  const int64_t worst_case = startMetering(client, client_request, record);
  const TokenEntry& token = *client.context->token;
  return settleReservation(client, record,
                           budgets.reserve(token.agent_id, token.project_id, worst_case,
                                           record.budget_caps, record.limits_time_ms),
                           client_keep_alive);
}

awaitable<StageResult> ProxyServer::Impl::reserveSharedBudget(ClientConnection& client,
                                                              Request& client_request,
                                                              RequestRecord& record,
                                                              bool client_keep_alive) {
  const int64_t worst_case = startMetering(client, client_request, record);
  const int64_t now_ms = record.limits_time_ms;
  const TokenEntry& token = *client.context->token;
  int64_t agent_spend = budgets.agentUsage(token.agent_id, now_ms).spent_micros;
  int64_t project_spend = budgets.projectUsage(token.project_id, now_ms).spent_micros;
  Result<redis::RedisLimits::ReserveOutcome> shared = co_await record.shared_limits->reserve(
      token.agent_id, token.project_id, worst_case, record.budget_caps, now_ms, agent_spend,
      project_spend);
  if (!shared) {
    client.rejection = std::move(shared.error());
    co_return StageResult{StageResult::Next::kUnavailable, client_keep_alive};
  }
  co_return settleReservation(client, record, std::move(*shared), client_keep_alive);
}

int64_t ProxyServer::Impl::startMetering(ClientConnection& client, Request& client_request,
                                         RequestRecord& record) {
  const AdmissionContext& context = *client.context;
  const AgentEntry& agent = context.snapshot->agents.at(context.token->agent_id);
  record.meter.emplace(*context.provider, client_request.method_string(), context.route.path,
                       client_request.body());
  record.budget_caps = limits::BudgetCaps{agent.budget, context.project->budget};
  // Spend is tracked for every request, so a cap set in the middle of a month counts what
  // the month already cost. The worst case is estimated only where a cap applies.
  if (record.budget_caps.agent.cents || record.budget_caps.project.cents) {
    return record.meter->worstCaseMicros(context.snapshot->prices, client_request.body());
  }
  return 0;
}

StageResult ProxyServer::Impl::settleReservation(
    ClientConnection& client, RequestRecord& record,
    std::expected<limits::Reservation, limits::BudgetRefusal> reserved, bool client_keep_alive) {
  if (!reserved) {
    metrics.budgetRejected(reserved.error().scope == limits::BudgetScope::kAgent ? "agent"
                                                                                 : "project");
    return reject(client, record, reserved.error().toError(), client_keep_alive);
  }
  record.reservation = std::move(*reserved);
  return StageResult{};
}

awaitable<bool> ProxyServer::Impl::forward(Worker& worker, ClientConnection& client,
                                           Request& client_request, RequestRecord& record,
                                           unsigned version, bool client_keep_alive) {
  AdmissionContext& context = *client.context;
  // The upstream head carries the credential, so it is zeroed on every way out of here.
  struct UpstreamHeadWipe {
    ClientConnection& client;
    ~UpstreamHeadWipe() { client.wipeUpstreamHead(); }
  } upstream_head_wipe{client};
  // Step 6: the credential.
  StageResult result = takeCredential(client, record, client_keep_alive);
  if (!result.proceeds()) {
    co_return co_await writeRejection(client, record, version, result);
  }
  Request& upstream_request = client.upstream_request;
  upstream_request.body() = std::move(client_request.body());
  record.bytes_in = static_cast<int64_t>(upstream_request.body().size());
  AdmissionContext* failover = context.mode == "marketplace" ? &context : nullptr;
  const catalog::ProviderSpec& provider = *context.provider;
  bool keep_client = false;

  // One pass per credential: a marketplace request moves to another credential when the
  // upstream refused or throttled the one it was sent with (see exchange()).
  while (true) {
    result = buildUpstreamRequest(client, client_request, record, client.credential->secret);
    if (!result.proceeds()) {
      co_return co_await writeRejection(client, record, version, result);
    }

    // Send on a pooled connection, or a new one. A pooled connection that fails while the
    // request is being written never delivered a whole request, so one retry on a fresh
    // connection cannot duplicate work upstream.
    CredentialPlaintextPtr next_credential;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto connection = worker.pool.take(provider.id);
      if (!connection) {
        auto connected = co_await connectUpstream(worker, provider);
        if (!connected) {
          reject(client, record, std::move(connected.error()), client_keep_alive, true);
          co_return co_await writeError(client, client.rejection, record, version,
                                        client_keep_alive);
        }
        connection = std::move(*connected);
      }
      bool reusable = false;
      record.outcome.clear();
      record.upstream_status = 0;
      if (connection->secure) {
        keep_client = co_await exchange(*connection->secure, *connection, client, upstream_request,
                                        *client.credential, version, client_keep_alive, record,
                                        reusable, context, failover, next_credential);
      } else {
        keep_client = co_await exchange(*connection->plain, *connection, client, upstream_request,
                                        *client.credential, version, client_keep_alive, record,
                                        reusable, context, failover, next_credential);
      }
      if (record.outcome == "retry_on_fresh_connection" && connection->reused && attempt == 0) {
        continue;
      }
      if (record.outcome == "retry_on_fresh_connection") {
        reject(client, record,
               Error{ErrorCode::kUpstreamUnreachable, "sending the request upstream failed"},
               client_keep_alive, true);
        co_return co_await writeError(client, client.rejection, record, version, client_keep_alive);
      }
      if (reusable) {
        worker.pool.give(provider.id, std::move(connection));
      }
      break;
    }
    if (record.outcome == "failover" && next_credential) {
      // The redactor reads the needles of the credential it was made for.
      client.redactor.reset();
      client.credential = std::move(next_credential);
      continue;
    }
    break;
  }
  finish(record, &context, true);
  co_return keep_client;
}

StageResult ProxyServer::Impl::takeCredential(ClientConnection& client, RequestRecord& record,
                                              bool client_keep_alive) {
  auto resolved = resolveCredential(*client.context, record.limits_time_ms);
  if (!resolved) {
    return reject(client, record, std::move(resolved.error()), client_keep_alive);
  }
  client.credential = std::move(*resolved);
  return StageResult{};
}

StageResult ProxyServer::Impl::buildUpstreamRequest(ClientConnection& client,
                                                    const Request& client_request,
                                                    RequestRecord& record,
                                                    const Secret& credential) {
  const AdmissionContext& context = *client.context;
  // The relay reads the method (a HEAD response has no body) and the body from this request.
  // Its head is written as text, never as Beast fields.
  Request& upstream_request = client.upstream_request;
  // Beast's method() does not take verb::unknown, which stands for any method it has no code for.
  if (client_request.method() == http::verb::unknown) {
    upstream_request.method_string(client_request.method_string());
  } else {
    upstream_request.method(client_request.method());
  }
  auto target = buildUpstreamTarget(*context.provider, context.route, credential,
                                    context.agent_token.reveal());
  if (!target) {
    return reject(client, record, std::move(target.error()), false);
  }
  client.wipeUpstreamHead();
  const UpstreamRequestLine line{.method = client_request.method(),
                                 .method_text = client_request.method_string(),
                                 .target = *target,
                                 .body_size = upstream_request.body().size()};
  auto written =
      appendUpstreamRequestHead(client.upstream_head, line, client_request, *context.provider,
                                credential, record.request_id, context.agent_token.reveal());
  secureZero(target->data(), target->size());
  if (!written) {
    return reject(client, record, std::move(written.error()), false);
  }
  return StageResult{};
}

awaitable<Result<std::unique_ptr<UpstreamConnection>>> ProxyServer::Impl::connectUpstream(
    Worker& worker, const catalog::ProviderSpec& provider) {
  auto executor = co_await asio::this_coro::executor;
  const auto& base = provider.base;
  tcp::resolver resolver(executor);
  std::string port_text = std::to_string(base.port);
  auto [resolve_error, results] = co_await resolver.async_resolve(base.host, port_text, kNoThrow);
  if (resolve_error) {
    co_return fail(
        ErrorCode::kUpstreamUnreachable,
        "cannot resolve the upstream host of " + provider.id + ": " + resolve_error.message());
  }
  // The SSRF rules apply to the addresses actually dialled, so a public name that resolves
  // to a private address is refused here even though its URL passed at start-up.
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) {
    if (options.allow_private_upstreams || !catalog::isPrivateAddress(entry.endpoint().address())) {
      endpoints.push_back(entry.endpoint());
    }
  }
  if (endpoints.empty()) {
    co_return fail(ErrorCode::kUpstreamUnreachable,
                   "the upstream host of " + provider.id + " resolves only to private addresses");
  }

  auto connection = std::make_unique<UpstreamConnection>(worker.watch, tcp::socket(executor),
                                                         base.tls ? &tls : nullptr);
  connection->deadline.expiresAfter(options.connect_timeout);
  auto [connect_error, endpoint] =
      co_await asio::async_connect(connection->socket(), endpoints, kNoThrow);
  if (connect_error) {
    co_return fail(
        timedOut(connect_error, connection->deadline) ? ErrorCode::kUpstreamTimeout
                                                      : ErrorCode::kUpstreamUnreachable,
        "cannot connect to the upstream of " + provider.id + ": " +
            (connection->deadline.expired() ? std::string("timed out") : connect_error.message()));
  }
  ErrorCodeT ignored;
  connection->socket().set_option(tcp::no_delay(true), ignored);

  if (!base.tls) {
    connection->socket().non_blocking(true, ignored);
    co_return connection;
  }

  SSL* handle = connection->secure->native_handle();
  ErrorCodeT address_error;
  auto literal = asio::ip::make_address(base.host, address_error);
  if (address_error) {
    SSL_set_tlsext_host_name(handle, base.host.c_str());
    SSL_set1_host(handle, base.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), literal.to_string().c_str());
  }
  auto [handshake_error] =
      co_await connection->secure->async_handshake(ssl::stream_base::client, kNoThrow);
  if (handshake_error) {
    co_return fail(timedOut(handshake_error, connection->deadline)
                       ? ErrorCode::kUpstreamTimeout
                       : ErrorCode::kUpstreamUnreachable,
                   "TLS handshake with the upstream of " + provider.id + " failed: " +
                       (connection->deadline.expired() ? std::string("timed out")
                                                       : handshake_error.message()));
  }
  co_return connection;
}

ResponsePlan ProxyServer::Impl::planResponse(UpstreamResponseParser& parser,
                                             ClientConnection& client,
                                             const CredentialPlaintext& credential,
                                             unsigned client_version, bool client_keep_alive,
                                             RequestRecord& record, AdmissionContext* failover,
                                             CredentialPlaintextPtr& next_credential) {
  auto& response = parser.get();
  ResponsePlan plan;
  if (hasTransferCodingOtherThanChunked(response)) {
    // The request went out without a TE field, which forbids the upstream any other coding.
    // As for an unreadable header, the row keeps upstream status 0: the client got no response
    // and is not charged for one.
    describeUpstreamFailure(
        ErrorCode::kUpstreamInvalidResponse,
        "the upstream sent its response in a transfer coding other than chunked", record,
        client.rejection);
    plan.next = ResponsePlan::Next::kReject;
    return plan;
  }
  if (unsigned status = response.result_int(); status < 200 || status > 599) {
    // RFC 9110 (section 15) puts every valid status code in 100-599, and informational
    // responses (1xx) were consumed before this point, so a code here outside 200-599 is
    // invalid. As above, the row keeps upstream status 0.
    describeUpstreamFailure(ErrorCode::kUpstreamInvalidResponse,
                            "the upstream sent the invalid status code " + std::to_string(status),
                            record, client.rejection);
    plan.next = ResponsePlan::Next::kReject;
    return plan;
  }
  record.upstream_header = Clock::now();
  record.upstream_waited += record.upstream_header - record.upstream_sent;
  record.upstream_status = static_cast<int>(response.result_int());
  record.status = record.upstream_status;
  // A marketplace credential that was refused (401) or throttled (429) did no work upstream,
  // and nothing has reached the client yet, so another credential may take the request. The
  // response is discarded only once another credential was secured; otherwise it is relayed.
  if (failover != nullptr && (record.upstream_status == 401 || record.upstream_status == 429)) {
    auto refused = failover->health;
    int64_t now_ms = nowUnixMillis();
    auto next = nextPoolCredential(*failover, now_ms);
    if (next) {
      if (refused) {
        refused->report(marketplace::Verdict::kFailure, now_ms);
      }
      next_credential = std::move(*next);
      record.outcome = "failover";
      plan.next = ResponsePlan::Next::kFailover;
      return plan;
    }
  }
  // The parser's reading counts every Connection field, and a response whose body ends only
  // when the upstream closes is never kept alive.
  plan.upstream_keep_alive = parser.keep_alive();
  cleanResponseHeaders(response.base(), credential.needles);
  auto content_type = firstValue(response, http::field::content_type);
  if (record.meter) {
    record.meter->onResponse(record.upstream_status, content_type);
  }
  bool event_stream = content_type.starts_with("text/event-stream");
  // Transfer-Encoding is hop-by-hop and was dropped above. A body of unknown length, or one
  // that the usage filter may shorten, is re-framed as chunked for the client, so its end is
  // visible without closing.
  bool reframe = !parser.is_done() && (!parser.content_length() ||
                                       (record.meter && record.meter->filtersClientStream()));
  bool chunked = false;
  if (reframe) {
    response.erase(http::field::content_length);
    if (client_version >= 11) {
      chunked = true;
    } else {
      client_keep_alive = false;  // HTTP/1.0 has no chunking: the close ends the body
    }
  } else if (auto length = parser.content_length();
             length && (countFields(response, http::field::content_length) > 1 ||
                        firstValue(response, http::field::content_length).find(',') !=
                            std::string_view::npos)) {
    // Repeats of one value parse as a single length (RFC 9110, 8.6), and the client gets it once.
    response.set(http::field::content_length, std::to_string(*length));
  }

  // The head for the client: the upstream's remaining fields, then the proxy's own, each of
  // which replaces any field of that name from the upstream.
  if (event_stream) {
    eraseNamed(response,
               {"x-request-id", "x-keystore-overhead-ms", "cache-control", "x-accel-buffering"});
  } else {
    eraseNamed(response, {"x-request-id", "x-keystore-overhead-ms"});
  }
  client.head.clear();
  appendStatusLineAndFields(client.head, response.base(), client_version);
  appendField(client.head, "x-request-id", record.request_id);
  if (event_stream) {
    // Tell any buffering proxy in front (nginx) to pass events through as they come.
    appendField(client.head, "Cache-Control", "no-cache");
    appendField(client.head, "x-accel-buffering", "no");
  }
  // Time spent inside the proxy since the request body was read, less the waits for the
  // upstream's headers, so slow uploads and failover attempts do not count.
  record.overhead = (Clock::now() - record.body_read) - record.upstream_waited;
  appendField(client.head, "x-keystore-overhead-ms", formatMillis(*record.overhead));
  if (chunked) {
    appendField(client.head, "Transfer-Encoding", "chunked");
  }
  if (client_version >= 11 && !client_keep_alive) {
    appendField(client.head, "Connection", "close");
  } else if (client_version < 11 && client_keep_alive) {
    appendField(client.head, "Connection", "keep-alive");
  }
  endHead(client.head);

  client.redactor.emplace(credential.needles);
  plan.client_keep_alive = client_keep_alive;
  plan.chunked = chunked;
  return plan;
}

template <typename Stream>
awaitable<bool> ProxyServer::Impl::exchange(Stream& upstream, UpstreamConnection& connection,
                                            ClientConnection& client, Request& request,
                                            const CredentialPlaintext& credential,
                                            unsigned client_version, bool client_keep_alive,
                                            RequestRecord& record, bool& reusable,
                                            AdmissionContext& context, AdmissionContext* failover,
                                            CredentialPlaintextPtr& next_credential) {
  reusable = false;

  // The request head and body leave in one write.
  client.out_buffers = {bytes(client.upstream_head), bytes(request.body()), asio::const_buffer(),
                        asio::const_buffer(), asio::const_buffer()};
  // One error code for every step below: each is checked before the next step reuses it.
  ErrorCodeT io_error = writeNow(upstream, client.out_buffers);
  if (io_error == asio::error::would_block) {
    io_error = co_await writeRest(upstream, connection.deadline, coarseNow() + options.idle_timeout,
                                  client.out_buffers);
  }
  // An upstream may respond before it has read the whole body (413 for a body too large, 401
  // for a bad key) and close, which fails the write. That response is relayed like any other.
  // Without one, the connection delivered no whole request, and forward() retries it.
  const bool sent_whole_request = !io_error;
  record.upstream_sent = Clock::now();

  // Interim 1xx responses (103 Early Hints) precede the final one on the same connection.
  // They are skipped here, because relaying one as final would leave the real response queued
  // on a pooled connection for the next request, which may belong to another project.
  std::optional<UpstreamResponseParser>& parser_storage = client.upstream_parser;
  for (int interim = 0;; ++interim) {
    parser_storage.emplace(std::piecewise_construct, std::make_tuple(),
                           std::make_tuple(client.arena.allocator()));
    parser_storage->header_limit(kMaxHeaderBytes);
    parser_storage->body_limit(options.max_response_bytes);
    if (request.method() == http::verb::head) {
      parser_storage->skip(true);
    }
    // An early response is already in the socket's receive queue, so it gets a short wait.
    const auto header_wait =
        sent_whole_request ? options.response_header_timeout : kEarlyResponseWait;
    io_error = co_await parseFrom(upstream, connection.deadline, coarseNow() + header_wait,
                                  connection.buffer, *parser_storage,
                                  [](const auto& p) { return p.is_header_done(); });
    if (io_error) {
      break;
    }
    unsigned status = parser_storage->get().result_int();
    if (status >= 200 || status < 100) {
      break;
    }
    if (status == 101 || interim >= 8) {
      io_error = http::error::bad_status;  // no protocol switch through the proxy
      break;
    }
  }
  auto& parser = *parser_storage;
  if (io_error && !sent_whole_request) {
    record.outcome = "retry_on_fresh_connection";
    co_return false;
  }
  // A header that could not be read is rejected like a response the plan rejects, through one
  // co_await: each co_await adds to the coroutine frame, which must stay small enough for
  // Asio to recycle.
  ResponsePlan plan;
  if (io_error) {
    describeHeaderFailure(io_error, connection.deadline, record, client.rejection);
    plan.next = ResponsePlan::Next::kReject;
  } else {
    plan = planResponse(parser, client, credential, client_version, client_keep_alive, record,
                        failover, next_credential);
  }
  if (plan.next == ResponsePlan::Next::kFailover) {
    co_return false;
  }
  if (plan.next == ResponsePlan::Next::kReject) {
    co_return co_await writeError(client, client.rejection, record, client_version,
                                  client_keep_alive);
  }
  client_keep_alive = plan.client_keep_alive;
  const bool chunked = plan.chunked;
  auto& response = parser.get();
  char* relay_buffer = client.relay.get();
  bool head_sent = false;
  bool client_gone = false;
  Clock::time_point drain_until{};
  // Returns the buffers that send `data` (a body chunk, possibly empty) to the client. The head
  // goes first while unsent, a re-framed body gets chunk framing, and `last` adds the last chunk.
  // Each write goes out through writeNow, and through writeRest only when the socket is full.
  auto frame = [&](std::string_view data, bool last) -> std::array<asio::const_buffer, 5>& {
    std::string_view head = head_sent ? std::string_view{} : std::string_view(client.head);
    std::string_view chunk_open;
    std::string_view chunk_close;
    if (chunked && !data.empty()) {
      chunk_open = client.chunk_size_line.emplace(data.size()).text();
      chunk_close = "\r\n";
    }
    std::string_view trailer = chunked && last ? std::string_view("0\r\n\r\n") : std::string_view{};
    head_sent = true;
    client.out_buffers = {bytes(head), bytes(chunk_open), bytes(data), bytes(chunk_close),
                          bytes(trailer)};
    return client.out_buffers;
  };

  // When body bytes arrived together with the header (the usual small JSON response), the
  // first write below sends header and body in one system call. Otherwise (a stream whose
  // first event is still to come) the header goes out at once.
  if (connection.buffer.size() == 0 && !parser.is_done()) {
    auto& head_only = frame(std::string_view{}, false);
    io_error = writeNow(client.socket, head_only);
    if (io_error == asio::error::would_block) {
      io_error = co_await writeRest(client.socket, client.deadline,
                                    coarseNow() + options.idle_timeout, head_only);
    }
    if (io_error) {
      client_gone = true;
      drain_until = coarseNow() + options.abort_drain_timeout;
    }
  }

  std::string_view pending;
  bool upstream_failed = false;
  uint64_t drained = 0;
  while (true) {
    if (client_gone && options.abort_drain_timeout.count() == 0) {
      break;  // the operator chose to stop the provider's work over metering its usage
    }
    if (!parser.is_done() && pending.empty()) {
      response.body().data = relay_buffer;
      response.body().size = kRelayBufferSize;
      response.body().more = true;
      // After the client left, one deadline bounds the whole drain.
      Clock::time_point read_until = client_gone ? drain_until : coarseNow() + options.idle_timeout;
      io_error = co_await parseFrom(
          upstream, connection.deadline, read_until, connection.buffer, parser,
          [&](const auto& p) { return p.is_done() || response.body().size < kRelayBufferSize; });
      if (io_error) {
        upstream_failed = true;
        if (!client_gone) {
          record.outcome =
              timedOut(io_error, connection.deadline) ? "upstream_timeout" : "upstream_error";
        }
        break;
      }
      size_t produced = kRelayBufferSize - response.body().size;
      pending = passUpstreamBytes(client, record, std::string_view(relay_buffer, produced),
                                  client_gone, parser.is_done());
      if (client_gone) {
        // The client left: the response is read, within bounds, only to record its usage.
        drained += produced;
        if (drained > options.abort_drain_bytes) {
          break;
        }
        continue;
      }
    }
    if (client_gone) {
      if (parser.is_done()) {
        break;
      }
      continue;
    }

    bool last = parser.is_done();
    std::string_view data = pending;
    record.bytes_out += static_cast<int64_t>(data.size());
    pending = {};
    if (options.ledger_strict && last && !record.finished) {
      // Strict sync: the row is committed before the last bytes of the response go out, so a
      // client that saw its answer complete finds the row after any crash.
      record.outcome = record.upstream_status >= 400 ? "upstream_error" : "ok";
      finish(record, &context, true);
    }

    // A zero-length chunk would end the client's body early, so an empty read writes nothing
    // unless the head or the last chunk is still due.
    if (!data.empty() || !head_sent || (last && chunked)) {
      auto& framed = frame(data, last);
      io_error = writeNow(client.socket, framed);
      if (io_error == asio::error::would_block) {
        io_error = co_await writeRest(client.socket, client.deadline,
                                      coarseNow() + options.idle_timeout, framed);
      }
      if (io_error) {
        // Keep reading the upstream's response, bounded in time and size, for its usage figure.
        client_gone = true;
        drain_until = coarseNow() + options.abort_drain_timeout;
        continue;
      }
    }
    if (last) {
      break;
    }
  }
  if (client_gone) {
    record.outcome = "client_aborted";
    co_return false;
  }
  if (upstream_failed && !head_sent) {
    // Nothing reached the client yet (a non-streamed body fails before its first bytes were
    // relayed), so it gets a complete error response instead of a closed connection.
    describeBodyFailure(io_error, connection.deadline, record, client.rejection);
    co_return co_await writeError(client, client.rejection, record, client_version,
                                  client_keep_alive);
  }
  if (upstream_failed) {
    co_return false;  // HTTP/1.1 has no in-band error, so closing ends the client's body early
  }
  record.outcome = record.upstream_status >= 400 ? "upstream_error" : "ok";
  // Bytes left after the response mean the connection is out of step with the upstream.
  reusable = sent_whole_request && plan.upstream_keep_alive && parser.is_done() &&
             connection.buffer.size() == 0;
  co_return client_keep_alive;
}

ProxyServer::ProxyServer(ProxyOptions options, const catalog::Catalog& catalog,
                         SnapshotHolder& snapshots, metering::LedgerWriter& ledger,
                         limits::BudgetTracker& budgets, telemetry::ProxyMetrics& metrics)
    : impl_(std::make_unique<Impl>(std::move(options), catalog, snapshots, ledger, budgets,
                                   metrics)) {}

ProxyServer::~ProxyServer() {
  stop(std::chrono::milliseconds(0));
}

Result<std::string> ProxyServer::start() {
  auto tls_ready = impl_->setUpTls();
  if (!tls_ready) {
    return std::unexpected(tls_ready.error());
  }
  int threads = std::max(1, impl_->options.threads);
  for (int i = 0; i < threads; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>(impl_->options));
  }
  auto bound = impl_->bind();
  if (!bound) {
    impl_->workers.clear();
    return std::unexpected(bound.error());
  }
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    Worker* raw = impl_->workers[i].get();
    asio::co_spawn(raw->io, impl_->acceptLoop(*raw), asio::detached);
    asio::co_spawn(raw->io, impl_->sweepLoop(*raw), asio::detached);
    raw->thread = std::thread([raw, i] {
      nameThisThread("ks-proxy-" + std::to_string(i));
      raw->io.run();
    });
  }
  return bound;
}

size_t ProxyServer::pruneRateLimits(int64_t now_ms) {
  return impl_->rate_limiter.prune(now_ms);
}

void ProxyServer::stop(std::chrono::milliseconds grace) {
  if (!impl_ || impl_->workers.empty()) {
    return;
  }
  for (auto& worker : impl_->workers) {
    asio::post(worker->io, [raw = worker.get()] {
      boost::system::error_code ignored;
      raw->acceptor->close(ignored);
    });
  }
  auto deadline = Clock::now() + grace;
  while (impl_->active_requests.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& worker : impl_->workers) {
    worker->io.stop();
  }
  for (auto& worker : impl_->workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
  impl_->workers.clear();
}

}  // namespace keystore::proxy
