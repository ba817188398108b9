#include "cli/secret_input.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/secure_zero.h"

namespace keystore::cli {

namespace {

constexpr size_t kMaxSecretBytes = 64 * 1024;

// The terminal settings to restore when the user interrupts a hidden prompt, so the shell is
// not left without echo. Written before the handler is installed, read only by the handler.
struct termios saved_terminal;

void restoreTerminalAndReraise(int signal_number) {
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

// Appends bytes from `fd` to `out` until end of input, a newline (when `stop_at_newline`), or
// the size limit. Returns false when the limit was exceeded or a read failed.
bool readInto(int fd, std::string& out, bool stop_at_newline) {
  char buffer[4096];
  for (;;) {
    ssize_t count = ::read(fd, buffer, stop_at_newline ? 1 : sizeof(buffer));
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      return false;
    }
    if (count == 0) {
      return true;
    }
    out.append(buffer, static_cast<size_t>(count));
    secureZero(buffer, sizeof(buffer));
    if (out.size() > kMaxSecretBytes) {
      return false;
    }
    if (stop_at_newline && out.back() == '\n') {
      return true;
    }
  }
}

Result<Secret> readFromTerminal(std::string_view prompt) {
  std::string text(prompt);
  ssize_t written = ::write(STDERR_FILENO, text.data(), text.size());
  (void)written;

  struct termios hidden;
  bool have_terminal = tcgetattr(STDIN_FILENO, &saved_terminal) == 0;
  if (have_terminal) {
    hidden = saved_terminal;
    hidden.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    hidden.c_lflag |= ECHONL;
    ::signal(SIGINT, restoreTerminalAndReraise);
    ::signal(SIGTERM, restoreTerminalAndReraise);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &hidden);
  }

  Secret secret;
  bool complete = readInto(STDIN_FILENO, secret.revealMutable(), true);

  if (have_terminal) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_terminal);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
  }
  if (!complete) {
    return fail(ErrorCode::kInvalidRequest, "cannot read the key from the terminal");
  }
  return secret;
}

}  // namespace

void stripTrailingNewlines(Secret& secret) {
  std::string& text = secret.revealMutable();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.back() = '\0';
    text.pop_back();
  }
}

Result<Secret> readSecret(std::string_view prompt) {
  Result<Secret> secret;
  if (::isatty(STDIN_FILENO)) {
    secret = readFromTerminal(prompt);
  } else {
    secret = Secret();
    if (!readInto(STDIN_FILENO, secret->revealMutable(), false)) {
      return fail(ErrorCode::kInvalidRequest,
                  "cannot read the key from standard input, or it is longer than 64 KiB; pipe "
                  "in only the key");
    }
  }
  if (!secret) {
    return secret;
  }

  stripTrailingNewlines(*secret);
  if (secret->empty()) {
    return fail(ErrorCode::kInvalidRequest,
                "no key was given; pipe the key into standard input or type it at the prompt");
  }
  return secret;
}

}  // namespace keystore::cli
