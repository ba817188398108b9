#include "proxy/deadline_watch.h"

namespace keystore::proxy {

Deadline::Deadline(DeadlineWatch& watch, boost::asio::ip::tcp::socket& socket)
    : watch_(watch), socket_(socket) {
  watch_.link(*this);
}

Deadline::~Deadline() {
  watch_.unlink(*this);
}

void DeadlineWatch::link(Deadline& deadline) {
  deadline.next_ = head_;
  if (head_ != nullptr) {
    head_->previous_ = &deadline;
  }
  head_ = &deadline;
  ++size_;
}

void DeadlineWatch::unlink(Deadline& deadline) {
  if (deadline.previous_ != nullptr) {
    deadline.previous_->next_ = deadline.next_;
  } else {
    head_ = deadline.next_;
  }
  if (deadline.next_ != nullptr) {
    deadline.next_->previous_ = deadline.previous_;
  }
  deadline.previous_ = nullptr;
  deadline.next_ = nullptr;
  --size_;
}

size_t DeadlineWatch::sweep(Deadline::Clock::time_point now) {
  size_t closed = 0;
  for (Deadline* deadline = head_; deadline != nullptr; deadline = deadline->next_) {
    if (deadline->expires_at_ > now || deadline->expired_) {
      continue;
    }
    // Closing, not cancelling: a coroutine that is busy elsewhere when the deadline passes
    // finds the socket unusable at its next operation instead of waiting on it afresh.
    deadline->expired_ = true;
    boost::system::error_code ignored;
    deadline->socket_.close(ignored);
    ++closed;
  }
  return closed;
}

}  // namespace keystore::proxy
