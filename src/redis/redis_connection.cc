#include "redis/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

namespace keystore::redis {
namespace asio = boost::asio;

namespace {

RedisValue convertReply(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      value.kind = RedisValue::Kind::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      value.kind = reply.type == REDIS_REPLY_STRING   ? RedisValue::Kind::kString
                   : reply.type == REDIS_REPLY_STATUS ? RedisValue::Kind::kStatus
                                                      : RedisValue::Kind::kError;
      value.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      value.kind = RedisValue::Kind::kArray;
      value.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) {
        value.elements.push_back(convertReply(*reply.element[i]));
      }
      break;
    default:
      value.kind = RedisValue::Kind::kNil;
      break;
  }
  return value;
}

Error unavailable(const RedisEndpoint& endpoint, std::string_view why) {
  return Error{ErrorCode::kLimitsUnavailable, "the shared limit store at " + endpoint.display() +
                                                  " is unavailable: " + std::string(why)};
}

}  // namespace

std::string RedisEndpoint::display() const {
  return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(database);
}

Result<RedisEndpoint> parseRedisUrl(std::string_view text) {
  auto invalid = [](std::string why) {
    return fail(ErrorCode::kInvalidRequest,
                "the Redis URL " + why + "; expected redis://[:password@]host[:port][/database]");
  };
  boost::system::result<boost::urls::url_view> url = boost::urls::parse_uri(text);
  if (!url) {
    return invalid("is not a valid URL");
  }
  if (url->scheme() != "redis") {
    return invalid("must use the redis scheme");
  }
  RedisEndpoint endpoint;
  endpoint.host = url->host_address();
  if (endpoint.host.empty()) {
    return invalid("has no host");
  }
  if (url->has_port()) {
    uint16_t port = url->port_number();
    if (port == 0) {
      return invalid("has a port outside 1-65535");
    }
    endpoint.port = port;
  }
  if (url->has_password()) {
    endpoint.password = Secret(std::string(url->password()));
  }
  std::string_view path = url->encoded_path();
  if (!path.empty() && path != "/") {
    std::string_view digits = path.substr(1);
    int64_t database = -1;
    auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), database);
    if (parsed.ec != std::errc{} || parsed.ptr != digits.data() + digits.size() || database < 0 ||
        database > 15) {
      return invalid("names a database outside 0-15");
    }
    endpoint.database = database;
  }
  return endpoint;
}

// Bridges hiredis' event hooks to Asio: waits for readiness on the socket hiredis owns and calls
// back into hiredis. Shared with the pending waits, because hiredis may drop the context (and
// call cleanup) from inside one of them.
struct RedisConnection::Watcher : std::enable_shared_from_this<Watcher> {
  Watcher(asio::io_context& io, redisAsyncContext* context)
      : socket(io, context->c.fd), context(context) {}

  asio::posix::stream_descriptor socket;
  redisAsyncContext* context;
  bool reading = false;
  bool writing = false;
  bool read_armed = false;
  bool write_armed = false;
  bool closed = false;

  void armRead() {
    if (read_armed || closed) {
      return;
    }
    read_armed = true;
    socket.async_wait(asio::posix::descriptor_base::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& error) {
                        self->read_armed = false;
                        if (error || self->closed || !self->reading) {
                          return;
                        }
                        redisAsyncHandleRead(self->context);
                        if (!self->closed && self->reading) {
                          self->armRead();
                        }
                      });
  }

  void armWrite() {
    if (write_armed || closed) {
      return;
    }
    write_armed = true;
    socket.async_wait(asio::posix::descriptor_base::wait_write,
                      [self = shared_from_this()](const boost::system::error_code& error) {
                        self->write_armed = false;
                        if (error || self->closed || !self->writing) {
                          return;
                        }
                        redisAsyncHandleWrite(self->context);
                        if (!self->closed && self->writing) {
                          self->armWrite();
                        }
                      });
  }

  // The hooks hiredis calls; `data` is a heap-held shared_ptr to the watcher.
  static Watcher& of(void* data) { return **static_cast<std::shared_ptr<Watcher>*>(data); }
  static void addRead(void* data) {
    Watcher& watcher = of(data);
    watcher.reading = true;
    watcher.armRead();
  }
  static void delRead(void* data) { of(data).reading = false; }
  static void addWrite(void* data) {
    Watcher& watcher = of(data);
    watcher.writing = true;
    watcher.armWrite();
  }
  static void delWrite(void* data) { of(data).writing = false; }
  static void cleanup(void* data) {
    auto* holder = static_cast<std::shared_ptr<Watcher>*>(data);
    Watcher& watcher = **holder;
    watcher.closed = true;
    // hiredis closes the socket itself; release it so Asio does not close it a second time.
    boost::system::error_code ignored;
    watcher.socket.cancel(ignored);
    (void)watcher.socket.release();
    delete holder;
  }
};

RedisConnection::RedisConnection(asio::io_context& io, RedisEndpoint endpoint)
    : io_(io), endpoint_(std::move(endpoint)) {}

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    context_ = nullptr;
    context->data = nullptr;
    redisAsyncFree(context);
  }
}

void RedisConnection::connect() {
  if (context_ != nullptr || std::chrono::steady_clock::now() < next_attempt_) {
    return;
  }
  next_attempt_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  redisAsyncContext* context = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (context == nullptr) {
    spdlog::warn("cannot connect to Redis at {}: out of memory", endpoint_.display());
    return;
  }
  if (context->err != 0) {
    spdlog::warn("cannot connect to Redis at {}: {}", endpoint_.display(), context->errstr);
    redisAsyncFree(context);
    return;
  }
  auto* holder = new std::shared_ptr<Watcher>(std::make_shared<Watcher>(io_, context));
  context->ev.data = holder;
  context->ev.addRead = &Watcher::addRead;
  context->ev.delRead = &Watcher::delRead;
  context->ev.addWrite = &Watcher::addWrite;
  context->ev.delWrite = &Watcher::delWrite;
  context->ev.cleanup = &Watcher::cleanup;
  context->data = this;
  redisAsyncSetConnectCallback(context, &RedisConnection::onConnect);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::onDisconnect);
  context_ = context;

  // Queued ahead of every other command, so no command runs unauthenticated or on database 0
  // by mistake.
  auto log_rejection = [display = endpoint_.display()](std::string_view what) {
    return [display, what = std::string(what)](Result<RedisValue> reply) {
      if (reply && reply->kind == RedisValue::Kind::kError) {
        spdlog::error("Redis at {} rejected {}: {}; check the Redis URL", display, what,
                      reply->text);
      }
    };
  };
  if (!endpoint_.password.empty()) {
    command({"AUTH", std::string(endpoint_.password.reveal())}, log_rejection("the password"));
  }
  if (endpoint_.database != 0) {
    command({"SELECT", std::to_string(endpoint_.database)}, log_rejection("SELECT"));
  }
}

void RedisConnection::onConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (status == REDIS_OK || self == nullptr) {
    return;
  }
  // hiredis frees the context after this callback and fails the queued commands.
  spdlog::warn("cannot connect to Redis at {}: {}", self->endpoint_.display(),
               context->errstr != nullptr ? context->errstr : "connection failed");
  self->context_ = nullptr;
}

void RedisConnection::onDisconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) {
    return;
  }
  if (status != REDIS_OK) {
    spdlog::warn("lost the connection to Redis at {}: {}", self->endpoint_.display(),
                 context->errstr != nullptr ? context->errstr : "connection closed");
  }
  self->context_ = nullptr;
}

void RedisConnection::onReply(redisAsyncContext* context, void* reply, void* privdata) {
  std::unique_ptr<Callback> done(static_cast<Callback*>(privdata));
  if (reply == nullptr) {
    auto* self = static_cast<RedisConnection*>(context->data);
    std::string why =
        context->errstr != nullptr && context->err != 0 ? context->errstr : "the connection closed";
    Error error = self != nullptr ? unavailable(self->endpoint_, why)
                                  : Error{ErrorCode::kLimitsUnavailable, "Redis connection closed"};
    (*done)(std::unexpected(std::move(error)));
    return;
  }
  (*done)(convertReply(*static_cast<redisReply*>(reply)));
}

void RedisConnection::command(std::vector<std::string> args, Callback done) {
  connect();
  if (context_ == nullptr) {
    done(std::unexpected(unavailable(endpoint_, "not connected")));
    return;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* holder = new Callback(std::move(done));
  int status = redisAsyncCommandArgv(context_, &RedisConnection::onReply, holder,
                                     static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (status != REDIS_OK) {
    std::unique_ptr<Callback> owned(holder);
    (*owned)(std::unexpected(unavailable(endpoint_, "the command could not be queued")));
  }
}

}  // namespace keystore::redis
