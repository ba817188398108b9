// DeadlineWatch: coarse timeouts for the sockets of one I/O thread.
//
// A Deadline is a time after which its socket is closed, so that any operation pending on it
// completes with an error. Setting a deadline only stores a time point: no timer is armed or
// cancelled per operation, and no system call is made. One periodic sweep per thread closes
// the sockets whose deadline passed. A timeout therefore fires up to one sweep interval late,
// which is negligible against timeouts of seconds.
//
// Thread-safety: none. A watch, its deadlines and their sockets belong to one I/O thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>

namespace keystore::proxy {

class DeadlineWatch;

// The deadline of one socket, registered with a watch for the Deadline's lifetime. Neither
// copyable nor movable, because the watch links to it.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline(DeadlineWatch& watch, boost::asio::ip::tcp::socket& socket);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void expiresAt(Clock::time_point time) { expires_at_ = time; }
  void expiresAfter(std::chrono::milliseconds timeout) { expires_at_ = Clock::now() + timeout; }
  void expiresNever() { expires_at_ = Clock::time_point::max(); }
  // Whether the watch closed the socket because its deadline passed.
  bool expired() const { return expired_; }

 private:
  friend class DeadlineWatch;

  DeadlineWatch& watch_;
  boost::asio::ip::tcp::socket& socket_;
  Clock::time_point expires_at_ = Clock::time_point::max();
  bool expired_ = false;
  Deadline* previous_ = nullptr;
  Deadline* next_ = nullptr;
};

class DeadlineWatch {
 public:
  DeadlineWatch() = default;
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;

  // Closes the socket of every deadline that passed before `now` and marks it expired.
  // Returns how many were closed.
  size_t sweep(Deadline::Clock::time_point now);
  size_t size() const { return size_; }

 private:
  friend class Deadline;

  void link(Deadline& deadline);
  void unlink(Deadline& deadline);

  Deadline* head_ = nullptr;
  size_t size_ = 0;
};

}  // namespace keystore::proxy
