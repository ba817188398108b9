// Open-loop load generator for the proxy benchmark. Request i is due at start + i / rate and is
// sent at that time whether or not earlier responses have arrived: when every open keep-alive
// connection is busy, the generator opens another one. A slow response therefore cannot delay
// later requests and hide itself, which is the coordinated-omission error that a closed-loop
// tool such as wrk makes at a fixed rate.
//
// With several targets, each first gets its warm-up requests, then the measured schedule goes
// to the targets in turn, one short block (--block-seconds, default 10 ms) at a time. On a
// shared machine, slow periods (a noisy neighbour, a descheduled virtual CPU) then fall on all
// targets alike, so their percentiles can be compared. While its block runs, a target receives
// requests at the full rate, and it is idle during the other targets' blocks.
//
// Latency is measured from a request's due time to the end of its response, so it includes any
// delay in sending. The lag between due time and actual send is reported separately
// (lag_p99_us, lag_max_us) to show whether the generator kept to its schedule.
//
// It runs on one thread with one io_context, so no state is shared between threads. run.sh
// compiles it with g++; it is not part of the CMake build.
//
// Usage: open_loop --target NAME=HOST:PORT/PATH [--target ...] [--rate 1000] [--seconds 10]
//        [--warmup-seconds 2] [--block-seconds 0.01]
// --seconds is the measured time per target, so the run lasts about
// targets * (seconds + warmup-seconds).
// The Authorization header of target NAME is read from the environment variable
// BENCH_AUTHORIZATION_<NAME> (NAME in upper case), so that tokens stay off the command line.
// Prints one line per target, "bench-result target=NAME key=value ...", and exits 0; exits 2
// on invalid arguments.

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kBody =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1})";
// Time allowed after the last due request for outstanding responses; requests still open then
// count as errors.
constexpr auto kDrainTimeout = std::chrono::seconds(10);

struct TargetSpec {
  std::string name;
  tcp::endpoint endpoint;
  std::string host_header;
  std::string path;
  std::string authorization;
};

struct Options {
  std::vector<TargetSpec> targets;
  double rate = 1000;
  double seconds = 10;
  double warmup_seconds = 2;
  double block_seconds = 0.01;
};

std::optional<double> parseNumber(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Parses NAME=HOST:PORT/PATH and reads the target's Authorization value from the environment.
std::optional<TargetSpec> parseTarget(const std::string& text) {
  const std::size_t equals = text.find('=');
  const std::size_t colon = text.find(':', equals + 1);
  const std::size_t slash = text.find('/', colon + 1);
  if (equals == 0 || equals == std::string::npos || colon == std::string::npos ||
      slash == std::string::npos) {
    std::fprintf(stderr, "open_loop: invalid --target %s, expected NAME=HOST:PORT/PATH\n",
                 text.c_str());
    return std::nullopt;
  }

  TargetSpec target;
  target.name = text.substr(0, equals);
  const std::string host = text.substr(equals + 1, colon - equals - 1);
  const std::string port_text = text.substr(colon + 1, slash - colon - 1);
  target.path = text.substr(slash);

  boost::system::error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  const std::optional<double> port = parseNumber(port_text);
  if (error || !port || *port < 1 || *port > 65535 || *port != std::floor(*port)) {
    std::fprintf(stderr, "open_loop: invalid host or port in --target %s\n", text.c_str());
    return std::nullopt;
  }
  target.endpoint = tcp::endpoint(address, static_cast<unsigned short>(*port));
  target.host_header = host + ":" + port_text;

  std::string variable = "BENCH_AUTHORIZATION_";
  for (char c : target.name) {
    variable += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const char* authorization = std::getenv(variable.c_str());
  if (authorization == nullptr || *authorization == '\0') {
    std::fprintf(stderr, "open_loop: %s is not set\n", variable.c_str());
    return std::nullopt;
  }
  target.authorization = authorization;
  return target;
}

std::optional<Options> parseOptions(int argc, char** argv) {
  if (argc % 2 == 0) {
    std::fprintf(stderr, "open_loop: option %s has no value\n", argv[argc - 1]);
    return std::nullopt;
  }
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const std::string value = argv[i + 1];
    const std::optional<double> number = parseNumber(value);
    if (name == "--target") {
      std::optional<TargetSpec> target = parseTarget(value);
      if (!target) {
        return std::nullopt;
      }
      options.targets.push_back(std::move(*target));
    } else if (name == "--rate" && number && *number > 0) {
      options.rate = *number;
    } else if (name == "--seconds" && number && *number > 0) {
      options.seconds = *number;
    } else if (name == "--warmup-seconds" && number && *number >= 0) {
      options.warmup_seconds = *number;
    } else if (name == "--block-seconds" && number && *number > 0) {
      options.block_seconds = *number;
    } else {
      std::fprintf(stderr, "open_loop: invalid option or value: %s %s\n", name.c_str(),
                   value.c_str());
      return std::nullopt;
    }
  }
  if (options.targets.empty()) {
    std::fprintf(stderr, "open_loop: at least one --target is required\n");
    return std::nullopt;
  }
  return options;
}

// Serializes the one request that every send to a target reuses, so no per-request formatting
// happens.
std::string serializeRequest(const TargetSpec& target) {
  http::request<http::string_body> request{http::verb::post, target.path, 11};
  request.set(http::field::host, target.host_header);
  request.set(http::field::user_agent, "keystore-bench-open-loop");
  request.set(http::field::content_type, "application/json");
  request.set(http::field::authorization, target.authorization);
  request.body() = std::string(kBody);
  request.keep_alive(true);
  request.prepare_payload();
  std::ostringstream out;
  out << request;
  return out.str();
}

// Returns the value at percentile p (0-100) of an ascending vector by the nearest-rank method,
// or 0 when the vector is empty.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::int64_t toMicroseconds(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
}

std::size_t countFor(double seconds, double rate) {
  return static_cast<std::size_t>(std::llround(seconds * rate));
}

struct Connection {
  explicit Connection(const asio::any_io_executor& executor) : socket(executor) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
};

// A target's connection pool and results. Latency and lag are in microseconds, one entry per
// measured request; latency stays -1 unless the request succeeded.
struct Target {
  TargetSpec spec;
  std::string request_bytes;
  std::vector<std::unique_ptr<Connection>> idle_connections;
  std::size_t connections = 0;
  std::size_t ok = 0;
  std::size_t non_2xx = 0;
  std::size_t errors = 0;
  std::vector<std::int64_t> latency_us;
  std::vector<std::int64_t> lag_us;
  // Time the target's measured blocks took, each at least its scheduled length.
  Clock::duration measured_time{};
};

// One scheduled request: where it goes and, when measured, which result slot it fills.
struct Slot {
  std::size_t target = 0;
  std::optional<std::size_t> measured_index;
  std::size_t block = 0;
};

struct Block {
  std::size_t target = 0;
  std::size_t count = 0;
  Clock::time_point first_due;
  Clock::time_point last_end;
};

// Sends the schedule of requests and records one outcome per measured request. Used only from
// the thread that runs its io_context.
class LoadGenerator {
 public:
  LoadGenerator(asio::io_context& io, const Options& options) : io_(io), options_(options) {
    for (const TargetSpec& spec : options.targets) {
      Target target;
      target.spec = spec;
      target.request_bytes = serializeRequest(spec);
      targets_.push_back(std::move(target));
    }
    buildSchedule();
  }

  asio::awaitable<void> run() {
    const Clock::duration period = this->period();
    asio::steady_timer timer(io_);
    const Clock::time_point start = Clock::now() + std::chrono::milliseconds(20);

    for (std::size_t index = 0; index < schedule_.size(); ++index) {
      const Clock::time_point due = start + period * index;
      if (due > Clock::now()) {
        timer.expires_at(due);
        boost::system::error_code ignored;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      }
      const Slot& slot = schedule_[index];
      if (slot.measured_index && blocks_[slot.block].first_due == Clock::time_point{}) {
        blocks_[slot.block].first_due = due;
      }
      ++outstanding_;
      asio::co_spawn(io_, send(slot, due), asio::detached);
    }

    const Clock::time_point drain_deadline = Clock::now() + kDrainTimeout;
    while (outstanding_ > 0 && Clock::now() < drain_deadline) {
      timer.expires_after(std::chrono::milliseconds(1));
      boost::system::error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }

  void printResults() {
    // A block that ended later than scheduled (the generator or the server fell behind) lowers
    // the target's achieved rate.
    for (const Block& block : blocks_) {
      const Clock::duration scheduled = period() * block.count;
      targets_[block.target].measured_time += std::max(scheduled, block.last_end - block.first_due);
    }
    for (const Target& target : targets_) {
      printResult(target);
    }
  }

 private:
  enum class Outcome { kOk, kNon2xx, kError };

  // Interval between due times of consecutive requests.
  Clock::duration period() const {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / options_.rate));
  }

  // Lays out the whole schedule: each target's warm-up requests, then the measured blocks in
  // turn.
  void buildSchedule() {
    const std::size_t warmup_count = countFor(options_.warmup_seconds, options_.rate);
    const std::size_t block_count =
        std::max<std::size_t>(1, countFor(options_.block_seconds, options_.rate));
    const std::size_t measured_count = countFor(options_.seconds, options_.rate);
    const std::size_t blocks_per_target = (measured_count + block_count - 1) / block_count;

    for (std::size_t t = 0; t < targets_.size(); ++t) {
      for (std::size_t i = 0; i < warmup_count; ++i) {
        schedule_.push_back(Slot{t, std::nullopt, 0});
      }
      targets_[t].latency_us.assign(measured_count, -1);
      targets_[t].lag_us.assign(measured_count, 0);
    }

    std::vector<std::size_t> next_index(targets_.size(), 0);
    for (std::size_t round = 0; round < blocks_per_target; ++round) {
      for (std::size_t t = 0; t < targets_.size(); ++t) {
        const std::size_t block = blocks_.size();
        blocks_.push_back(Block{t, 0, {}, {}});
        for (std::size_t i = 0; i < block_count && next_index[t] < measured_count; ++i) {
          schedule_.push_back(Slot{t, next_index[t]++, block});
          ++blocks_[block].count;
        }
      }
    }
  }

  asio::awaitable<void> send(Slot slot, Clock::time_point due) {
    Target& target = targets_[slot.target];
    const Clock::time_point issued = Clock::now();
    std::unique_ptr<Connection> connection = takeIdleConnection(target);
    boost::system::error_code error;

    if (!connection) {
      connection = std::make_unique<Connection>(io_.get_executor());
      co_await connection->socket.async_connect(target.spec.endpoint,
                                                asio::redirect_error(asio::use_awaitable, error));
      if (error) {
        finish(slot, due, issued, Outcome::kError);
        co_return;
      }
      connection->socket.set_option(tcp::no_delay(true), error);
      ++target.connections;
    }

    co_await asio::async_write(connection->socket, asio::buffer(target.request_bytes),
                               asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      finish(slot, due, issued, Outcome::kError);
      co_return;
    }

    http::response<http::string_body> response;
    co_await http::async_read(connection->socket, connection->buffer, response,
                              asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      finish(slot, due, issued, Outcome::kError);
      co_return;
    }

    const unsigned status = response.result_int();
    finish(slot, due, issued, status >= 200 && status <= 299 ? Outcome::kOk : Outcome::kNon2xx);
    if (response.keep_alive()) {
      target.idle_connections.push_back(std::move(connection));
    }
  }

  static std::unique_ptr<Connection> takeIdleConnection(Target& target) {
    if (target.idle_connections.empty()) {
      return nullptr;
    }
    std::unique_ptr<Connection> connection = std::move(target.idle_connections.back());
    target.idle_connections.pop_back();
    return connection;
  }

  void finish(const Slot& slot, Clock::time_point due, Clock::time_point issued, Outcome outcome) {
    --outstanding_;
    if (!slot.measured_index) {
      return;
    }
    const Clock::time_point end = Clock::now();
    Target& target = targets_[slot.target];
    const std::size_t index = *slot.measured_index;
    target.lag_us[index] = toMicroseconds(issued - due);
    blocks_[slot.block].last_end = std::max(blocks_[slot.block].last_end, end);
    switch (outcome) {
      case Outcome::kOk:
        ++target.ok;
        target.latency_us[index] = toMicroseconds(end - due);
        break;
      case Outcome::kNon2xx:
        ++target.non_2xx;
        break;
      case Outcome::kError:
        ++target.errors;
        break;
    }
  }

  void printResult(const Target& target) const {
    std::vector<std::int64_t> latencies;
    for (std::int64_t value : target.latency_us) {
      if (value >= 0) {
        latencies.push_back(value);
      }
    }
    std::sort(latencies.begin(), latencies.end());
    std::vector<std::int64_t> lags = target.lag_us;
    std::sort(lags.begin(), lags.end());

    const std::size_t measured = target.latency_us.size();
    // Requests abandoned at the drain timeout have no outcome; they count as errors.
    const std::size_t unfinished = measured - target.ok - target.non_2xx - target.errors;
    const double seconds = std::chrono::duration<double>(target.measured_time).count();
    const double rate = seconds > 0 ? static_cast<double>(target.ok) / seconds : 0;
    const auto micros = [](std::int64_t value) { return static_cast<long long>(value); };

    std::printf(
        "bench-result target=%s target_rate=%g requests=%zu ok=%zu rate=%.1f p50_us=%lld "
        "p90_us=%lld p99_us=%lld p999_us=%lld max_us=%lld lag_p99_us=%lld lag_max_us=%lld "
        "non_2xx=%zu errors=%zu connections=%zu\n",
        target.spec.name.c_str(), options_.rate, measured, target.ok, rate,
        micros(percentile(latencies, 50)), micros(percentile(latencies, 90)),
        micros(percentile(latencies, 99)), micros(percentile(latencies, 99.9)),
        micros(latencies.empty() ? 0 : latencies.back()), micros(percentile(lags, 99)),
        micros(lags.empty() ? 0 : lags.back()), target.non_2xx, target.errors + unfinished,
        target.connections);
  }

  asio::io_context& io_;
  const Options options_;
  std::vector<Target> targets_;
  std::vector<Slot> schedule_;
  std::vector<Block> blocks_;
  std::size_t outstanding_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options = parseOptions(argc, argv);
  if (!options) {
    return 2;
  }

  asio::io_context io;
  LoadGenerator generator(io, *options);
  // Stopping the io_context abandons requests still open after the drain timeout.
  asio::co_spawn(io, generator.run(), [&io](std::exception_ptr) { io.stop(); });
  io.run();
  generator.printResults();
  std::fflush(stdout);
  return 0;
}
