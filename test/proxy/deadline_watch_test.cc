#include "proxy/deadline_watch.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>

namespace keystore::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = Deadline::Clock;

// A connected pair of loopback sockets.
struct SocketPair {
  explicit SocketPair(asio::io_context& io) : near(io), far(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    near.connect(acceptor.local_endpoint());
    acceptor.accept(far);
  }
  tcp::socket near;
  tcp::socket far;
};

TEST(DeadlineWatchTest, PassedDeadlineClosesSocketAndEndsRead) {
  asio::io_context io;
  SocketPair sockets(io);
  DeadlineWatch watch;
  Deadline deadline(watch, sockets.near);
  char byte;
  std::optional<boost::system::error_code> read_error;
  sockets.near.async_read_some(
      asio::buffer(&byte, 1), [&](boost::system::error_code error, size_t) { read_error = error; });
  deadline.expiresAfter(std::chrono::milliseconds(5));

  EXPECT_EQ(watch.sweep(Clock::now()), 0u);
  EXPECT_EQ(watch.sweep(Clock::now() + std::chrono::milliseconds(10)), 1u);
  io.run();

  EXPECT_TRUE(deadline.expired());
  EXPECT_FALSE(sockets.near.is_open());
  ASSERT_TRUE(read_error.has_value());
  EXPECT_EQ(*read_error, asio::error::operation_aborted);
}

TEST(DeadlineWatchTest, UnarmedDeadlineNeverFires) {
  asio::io_context io;
  SocketPair sockets(io);
  DeadlineWatch watch;
  Deadline deadline(watch, sockets.near);
  deadline.expiresAfter(std::chrono::milliseconds(1));
  deadline.expiresNever();

  EXPECT_EQ(watch.sweep(Clock::now() + std::chrono::hours(24 * 365)), 0u);
  EXPECT_FALSE(deadline.expired());
  EXPECT_TRUE(sockets.near.is_open());
}

TEST(DeadlineWatchTest, ExpiredDeadlineCountsOnce) {
  asio::io_context io;
  SocketPair sockets(io);
  DeadlineWatch watch;
  Deadline deadline(watch, sockets.near);
  deadline.expiresAt(Clock::now());

  EXPECT_EQ(watch.sweep(Clock::now() + std::chrono::seconds(1)), 1u);
  EXPECT_EQ(watch.sweep(Clock::now() + std::chrono::seconds(2)), 0u);
}

TEST(DeadlineWatchTest, DeadlinesUnlinkInAnyOrder) {
  asio::io_context io;
  SocketPair first(io);
  SocketPair second(io);
  DeadlineWatch watch;
  auto a = std::make_unique<Deadline>(watch, first.near);
  auto b = std::make_unique<Deadline>(watch, first.far);
  auto c = std::make_unique<Deadline>(watch, second.near);
  EXPECT_EQ(watch.size(), 3u);

  b.reset();  // the middle of the list
  EXPECT_EQ(watch.size(), 2u);
  c.reset();  // the head
  a->expiresAt(Clock::now());
  EXPECT_EQ(watch.sweep(Clock::now() + std::chrono::seconds(1)), 1u);
  a.reset();

  EXPECT_EQ(watch.size(), 0u);
  EXPECT_TRUE(first.far.is_open());
  EXPECT_TRUE(second.near.is_open());
  EXPECT_FALSE(first.near.is_open());
}

}  // namespace
}  // namespace keystore::proxy
