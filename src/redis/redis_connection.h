// RedisConnection: one asynchronous connection to a Redis server, driven by the io_context of
// the thread that uses it, so that a proxy worker can wait for Redis without blocking or
// handing work to another thread.
//
// The connection is made on first use and made again after it breaks, at most once a second,
// so a Redis outage costs each command one failed attempt instead of a connect timeout.
// Commands sent while the connection is down fail at once with kLimitsUnavailable; commands
// in flight when it breaks fail the same way. Replies arrive in the order the commands were
// sent (Redis pipelines them on the one socket).
//
// Owns the hiredis context. Not thread-safe: construct, use and destroy it on the thread that
// runs `io`. Callbacks run on that thread; asyncCommand resumes its caller through the
// caller's executor, never inside hiredis.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/secret.h"

struct redisAsyncContext;
struct redisReply;

namespace keystore::redis {

// The address of a Redis server, parsed from redis://[[user]:password@]host[:port][/database].
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int64_t database = 0;
  Secret password;  // empty: no AUTH

  // "redis://host:port/database", without the password, for logs.
  std::string display() const;
};

// kInvalidRequest naming the problem (never echoing a password) for anything that is not a
// redis:// URL with a host, a port in 1-65535 and a database number in 0-15.
Result<RedisEndpoint> parseRedisUrl(std::string_view url);

// A reply, converted from hiredis' tree so it outlives the callback.
struct RedisValue {
  enum class Kind { kNil, kInteger, kString, kStatus, kError, kArray };

  Kind kind = Kind::kNil;
  int64_t integer = 0;
  std::string text;  // kString, kStatus and kError
  std::vector<RedisValue> elements;
};

class RedisConnection {
 public:
  using Callback = std::move_only_function<void(Result<RedisValue>)>;

  RedisConnection(boost::asio::io_context& io, RedisEndpoint endpoint);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command, e.g. {"EVALSHA", sha, "1", key, arg}, and calls `done` with the reply.
  // A Redis error reply (kError) arrives as a value, not as a failed Result: only transport
  // failures fail.
  void command(std::vector<std::string> args, Callback done);

  // command() for coroutines: `Result<RedisValue> reply = co_await connection.asyncCommand(args,
  // boost::asio::use_awaitable);`
  template <typename CompletionToken>
  auto asyncCommand(std::vector<std::string> args, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(Result<RedisValue>)>(
        [this](auto handler, std::vector<std::string> command_args) {
          auto executor = boost::asio::get_associated_executor(handler, io_.get_executor());
          command(std::move(command_args),
                  [handler = std::move(handler), executor](Result<RedisValue> reply) mutable {
                    boost::asio::post(executor, [handler = std::move(handler),
                                                 reply = std::move(reply)]() mutable {
                      std::move(handler)(std::move(reply));
                    });
                  });
        },
        token, std::move(args));
  }

  // Whether a connection is open or being opened.
  bool connected() const { return context_ != nullptr; }

 private:
  struct Watcher;

  // Starts connecting unless a connection exists or the last attempt was under a second ago.
  void connect();
  static void onConnect(const redisAsyncContext* context, int status);
  static void onDisconnect(const redisAsyncContext* context, int status);
  static void onReply(redisAsyncContext* context, void* reply, void* privdata);

  boost::asio::io_context& io_;
  RedisEndpoint endpoint_;
  redisAsyncContext* context_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace keystore::redis
