#include "redis/redis_limits.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/use_awaitable.hpp>

#include "common/encoding.h"
#include "common/random.h"
#include "limits/utc_calendar.h"

namespace keystore::redis {
namespace asio = boost::asio;

struct Script {
  std::string_view text;
  std::string sha1;
};

namespace {

std::string sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr);
  return hexEncode(std::string_view(reinterpret_cast<const char*>(digest), size));
}

// Scripts receive every number as a decimal string and pass strings on to redis.call, because
// Lua 5.1 would print a computed number of 10^14 or more in exponent notation.

// KEYS: admissions of the last minute (sorted set, score = time), today's request count,
// token entries of the last minute (sorted set, member "<tokens>:<unique>").
// ARGV: now, rpm, rpd, tpm (-1 = no limit), a unique member, the end of the UTC day.
// Returns {allowed, limit type (0 none, 1 rpm, 2 rpd, 3 tpm), limit, remaining, reset at}.
constexpr std::string_view kAdmitScript = R"lua(
local now = tonumber(ARGV[1])
local rpm, rpd, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local day_end = tonumber(ARGV[6])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) > now then now = tonumber(newest[2]) end
local cutoff = now - 60000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
local in_minute = redis.call('ZCARD', KEYS[1])
local day_count = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
local function tokens_of(member) return tonumber(string.match(member, '^(%d+)')) end
local window_tokens = 0
for i = 1, #entries, 2 do window_tokens = window_tokens + tokens_of(entries[i]) end
local rejected, rejected_limit, rejected_reset = 0, 0, -1
local function reject(kind, limit, reset)
  if reset > rejected_reset then rejected, rejected_limit, rejected_reset = kind, limit, reset end
end
if rpm >= 0 and in_minute >= rpm then
  local reset = now + 60000
  if rpm > 0 then
    local index = in_minute - rpm
    reset = tonumber(redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')[2]) + 60000
  end
  reject(1, rpm, reset)
end
if rpd >= 0 and day_count >= rpd then reject(2, rpd, day_end) end
if tpm >= 0 and window_tokens >= tpm then
  local reset = now + 60000
  local left = window_tokens
  for i = 1, #entries, 2 do
    left = left - tokens_of(entries[i])
    if left < tpm then reset = tonumber(entries[i + 1]) + 60000; break end
  end
  reject(3, tpm, reset)
end
if rejected ~= 0 then return {0, rejected, rejected_limit, 0, rejected_reset} end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], 61000)
  in_minute = in_minute + 1
end
day_count = redis.call('INCR', KEYS[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[6])
local kind, limit, remaining, reset = 0, 0, 0, 0
if rpm >= 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  kind, limit, remaining, reset = 1, rpm, rpm - in_minute, tonumber(first[2]) + 60000
end
if rpd >= 0 and (rpm < 0 or rpd - day_count < remaining) then
  kind, limit, remaining, reset = 2, rpd, rpd - day_count, day_end
end
if rpm < 0 and rpd < 0 and tpm >= 0 then
  kind, limit, remaining, reset = 3, tpm, tpm - window_tokens, now
  if #entries > 0 then reset = tonumber(entries[2]) + 60000 end
end
return {1, kind, limit, remaining, reset}
)lua";

// KEYS: for the agent, then the project: spent, reserved sum, reservations (hash member ->
// amount), leases (sorted set member -> lease end).
// ARGV: now, lease end, member, amount, agent cap, project cap (-1 = none), agent ledger
// spend, project ledger spend, key lifetime in ms.
// Returns {1} when reserved, or {0, scope (1 agent, 2 project), cap, spent, reserved}.
constexpr std::string_view kReserveScript = R"lua(
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[4])
local function prepare(base, seed_text)
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[base + 3], '-inf', now)
  for _, member in ipairs(lapsed) do
    local held = redis.call('HGET', KEYS[base + 2], member)
    if held then
      redis.call('DECRBY', KEYS[base + 1], held)
      redis.call('HDEL', KEYS[base + 2], member)
    end
  end
  if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[base + 3], '-inf', now) end
  local spent = tonumber(redis.call('GET', KEYS[base]) or '0')
  if tonumber(seed_text) > spent then
    redis.call('SET', KEYS[base], seed_text)
    spent = tonumber(seed_text)
  end
  return spent, tonumber(redis.call('GET', KEYS[base + 1]) or '0')
end
local agent_spent, agent_reserved = prepare(1, ARGV[7])
local project_spent, project_reserved = prepare(5, ARGV[8])
local agent_cap, project_cap = tonumber(ARGV[5]), tonumber(ARGV[6])
if amount > 0 then
  if agent_cap >= 0 and agent_spent + agent_reserved + amount > agent_cap then
    return {0, 1, agent_cap, agent_spent, agent_reserved}
  end
  if project_cap >= 0 and project_spent + project_reserved + amount > project_cap then
    return {0, 2, project_cap, project_spent, project_reserved}
  end
end
for _, base in ipairs({1, 5}) do
  redis.call('INCRBY', KEYS[base + 1], ARGV[4])
  redis.call('HSET', KEYS[base + 2], ARGV[3], ARGV[4])
  redis.call('ZADD', KEYS[base + 3], ARGV[2], ARGV[3])
  for key = base, base + 3 do redis.call('PEXPIRE', KEYS[key], ARGV[9]) end
end
return {1}
)lua";

// KEYS: the eight budget keys of kReserveScript, then the agent's warned and exceeded flags
// and the project's.
// ARGV: member, actual cost ("" = release only), agent warn threshold, agent cap, project
// warn threshold, project cap (-1 = none), key lifetime in ms.
// Returns {agent warned, project warned, agent exceeded, project exceeded}, each 1 when this
// call crossed the threshold first.
constexpr std::string_view kSettleScript = R"lua(
local function settle(base, warn_text, cap_text, warn_flag, exceeded_flag)
  local held = redis.call('HGET', KEYS[base + 2], ARGV[1])
  if held then
    redis.call('DECRBY', KEYS[base + 1], held)
    redis.call('HDEL', KEYS[base + 2], ARGV[1])
    redis.call('ZREM', KEYS[base + 3], ARGV[1])
  end
  if ARGV[2] == '' then return 0, 0 end
  local spent = tonumber(redis.call('INCRBY', KEYS[base], ARGV[2]))
  redis.call('PEXPIRE', KEYS[base], ARGV[7])
  local warned, exceeded = 0, 0
  local warn, cap = tonumber(warn_text), tonumber(cap_text)
  if warn >= 0 and spent >= warn and redis.call('SET', KEYS[warn_flag], '1', 'NX', 'PX', ARGV[7]) then
    warned = 1
  end
  if cap >= 0 and spent >= cap and redis.call('SET', KEYS[exceeded_flag], '1', 'NX', 'PX', ARGV[7]) then
    exceeded = 1
  end
  return warned, exceeded
end
local agent_warned, agent_exceeded = settle(1, ARGV[3], ARGV[4], 9, 10)
local project_warned, project_exceeded = settle(5, ARGV[5], ARGV[6], 11, 12)
return {agent_warned, project_warned, agent_exceeded, project_exceeded}
)lua";

const Script& admitScript() {
  static const Script script{kAdmitScript, sha1Hex(kAdmitScript)};
  return script;
}
const Script& reserveScript() {
  static const Script script{kReserveScript, sha1Hex(kReserveScript)};
  return script;
}
const Script& settleScript() {
  static const Script script{kSettleScript, sha1Hex(kSettleScript)};
  return script;
}

std::string limitText(const std::optional<int64_t>& limit) {
  return limit ? std::to_string(*limit) : "-1";
}

int64_t element(const RedisValue& reply, size_t index) {
  if (index >= reply.elements.size() || reply.elements[index].kind != RedisValue::Kind::kInteger) {
    return 0;
  }
  return reply.elements[index].integer;
}

Result<void> requireArray(const RedisValue& reply, size_t size, std::string_view script) {
  if (reply.kind == RedisValue::Kind::kError) {
    return fail(ErrorCode::kLimitsUnavailable,
                "Redis failed the " + std::string(script) + " script: " + reply.text);
  }
  if (reply.kind != RedisValue::Kind::kArray || reply.elements.size() < size) {
    return fail(ErrorCode::kLimitsUnavailable,
                "Redis answered the " + std::string(script) + " script with an unexpected reply");
  }
  return {};
}

// The micro-dollar cap of a budget in cents, and its warning threshold, as script arguments.
std::pair<std::string, std::string> capArguments(const limits::BudgetCap& cap) {
  if (!cap.cents) {
    return {"-1", "-1"};
  }
  int64_t cap_micros = limits::centsToMicros(*cap.cents);
  if (!cap.warn_percent) {
    return {std::to_string(cap_micros), "-1"};
  }
  // The smallest spend s with s * 100 >= cap * percent, the in-memory tracker's condition.
  __int128 product = static_cast<__int128>(cap_micros) * *cap.warn_percent;
  int64_t threshold = static_cast<int64_t>((product + 99) / 100);
  return {std::to_string(cap_micros), std::to_string(threshold)};
}

}  // namespace

RedisLimits::RedisLimits(asio::io_context& io, RedisEndpoint endpoint, std::string prefix)
    : connection_(io, std::move(endpoint)),
      prefix_(std::move(prefix)),
      member_prefix_(hexEncode(randomBytes(8)) + ":") {}

std::string RedisLimits::newMember() {
  return member_prefix_ + std::to_string(++member_counter_);
}

asio::awaitable<Result<RedisValue>> RedisLimits::evalScript(const Script& script,
                                                            std::vector<std::string> keys,
                                                            std::vector<std::string> args) {
  std::vector<std::string> command{"EVALSHA", script.sha1, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  Result<RedisValue> reply = co_await connection_.asyncCommand(command, asio::use_awaitable);
  if (reply && reply->kind == RedisValue::Kind::kError && reply->text.starts_with("NOSCRIPT")) {
    // First use on this server (or after a restart or SCRIPT FLUSH): EVAL loads it.
    command[0] = "EVAL";
    command[1] = std::string(script.text);
    reply = co_await connection_.asyncCommand(std::move(command), asio::use_awaitable);
  }
  co_return reply;
}

void RedisLimits::evalScriptDetached(const Script& script, std::vector<std::string> keys,
                                     std::vector<std::string> args,
                                     RedisConnection::Callback done) {
  // EVAL rather than EVALSHA, because a detached call cannot retry after NOSCRIPT. Redis caches
  // the compiled script by its text either way.
  std::vector<std::string> command{"EVAL", std::string(script.text), std::to_string(keys.size())};
  command.insert(command.end(), std::make_move_iterator(keys.begin()),
                 std::make_move_iterator(keys.end()));
  command.insert(command.end(), std::make_move_iterator(args.begin()),
                 std::make_move_iterator(args.end()));
  connection_.command(std::move(command), std::move(done));
}

asio::awaitable<Result<limits::RateDecision>> RedisLimits::admit(std::string_view agent_id,
                                                                 std::string_view provider,
                                                                 limits::RateLimits limits,
                                                                 int64_t now_ms) {
  std::string base = prefix_ + "rl:" + std::string(agent_id) + ":" + std::string(provider);
  int64_t day_start = limits::utcDayStart(now_ms);
  std::vector<std::string> keys{base + ":m", base + ":d:" + std::to_string(day_start), base + ":t"};
  std::vector<std::string> args{std::to_string(now_ms),
                                limitText(limits.rpm),
                                limitText(limits.rpd),
                                limitText(limits.tpm),
                                newMember(),
                                std::to_string(limits::utcNextDayStart(now_ms))};
  Result<RedisValue> reply = co_await evalScript(admitScript(), std::move(keys), std::move(args));
  if (!reply) {
    co_return std::unexpected(reply.error());
  }
  if (auto valid = requireArray(*reply, 5, "rate limit"); !valid) {
    co_return std::unexpected(valid.error());
  }
  constexpr limits::LimitType kTypes[] = {limits::LimitType::kNone, limits::LimitType::kRpm,
                                          limits::LimitType::kRpd, limits::LimitType::kTpm};
  int64_t type = element(*reply, 1);
  limits::RateDecision decision{
      .allowed = element(*reply, 0) == 1,
      .limit_type = type >= 0 && type <= 3 ? kTypes[type] : limits::LimitType::kNone,
      .limit = element(*reply, 2),
      .remaining = element(*reply, 3),
      .reset_at_ms = element(*reply, 4),
  };
  co_return decision;
}

void RedisLimits::recordTokens(std::string_view agent_id, std::string_view provider, int64_t tokens,
                               int64_t now_ms) {
  if (tokens <= 0) {
    return;
  }
  std::string key = prefix_ + "rl:" + std::string(agent_id) + ":" + std::string(provider) + ":t";
  connection_.command(
      {"ZADD", key, std::to_string(now_ms), std::to_string(tokens) + ":" + newMember()},
      [](Result<RedisValue>) {});
  connection_.command({"PEXPIRE", key, "61000"}, [](Result<RedisValue>) {});
}

std::vector<std::string> RedisLimits::budgetKeys(const limits::Reservation& reservation) const {
  std::string month = std::to_string(reservation.month_start_ms);
  std::vector<std::string> keys;
  keys.reserve(12);
  for (auto [kind, id] : {std::pair<std::string_view, std::string_view>{"a", reservation.agent_id},
                          {"p", reservation.project_id}}) {
    std::string base = prefix_ + "bg:" + month + ":" + std::string(kind) + ":" + std::string(id);
    for (std::string_view suffix : {":spent", ":reserved", ":holds", ":leases"}) {
      keys.push_back(base + std::string(suffix));
    }
  }
  return keys;
}

namespace {

// Counters outlive their month by a safety margin, so late settles still find them.
int64_t keyLifetimeMillis(int64_t month_start_ms, int64_t now_ms) {
  constexpr int64_t kMargin = 35LL * 24 * 60 * 60 * 1000;
  return limits::utcNextMonthStart(month_start_ms) + kMargin - now_ms;
}

}  // namespace

asio::awaitable<Result<RedisLimits::ReserveOutcome>> RedisLimits::reserve(
    std::string_view agent_id, std::string_view project_id, int64_t worst_case_micros,
    limits::BudgetCaps caps, int64_t now_ms, int64_t agent_spend_micros,
    int64_t project_spend_micros) {
  limits::Reservation reservation;
  reservation.id = ++member_counter_;
  reservation.agent_id = std::string(agent_id);
  reservation.project_id = std::string(project_id);
  reservation.micros = std::max<int64_t>(worst_case_micros, 0);
  reservation.month_start_ms = limits::utcMonthStart(now_ms);

  auto [agent_cap, agent_warn] = capArguments(caps.agent);
  auto [project_cap, project_warn] = capArguments(caps.project);
  std::vector<std::string> args{
      std::to_string(now_ms),
      std::to_string(now_ms + kReservationLease.count()),
      member_prefix_ + std::to_string(reservation.id),
      std::to_string(reservation.micros),
      agent_cap,
      project_cap,
      std::to_string(std::max<int64_t>(agent_spend_micros, 0)),
      std::to_string(std::max<int64_t>(project_spend_micros, 0)),
      std::to_string(keyLifetimeMillis(reservation.month_start_ms, now_ms)),
  };
  Result<RedisValue> reply = co_await evalScript(reserveScript(), budgetKeys(reservation), args);
  if (!reply) {
    co_return std::unexpected(reply.error());
  }
  if (auto valid = requireArray(*reply, 1, "budget reservation"); !valid) {
    co_return std::unexpected(valid.error());
  }
  if (element(*reply, 0) == 1) {
    co_return ReserveOutcome(std::move(reservation));
  }
  limits::BudgetRefusal refusal;
  refusal.scope =
      element(*reply, 1) == 1 ? limits::BudgetScope::kAgent : limits::BudgetScope::kProject;
  refusal.cap_micros = element(*reply, 2);
  refusal.spent_micros = element(*reply, 3);
  refusal.reserved_micros = element(*reply, 4);
  refusal.requested_micros = reservation.micros;
  refusal.resets_at_ms = limits::utcNextMonthStart(now_ms);
  co_return ReserveOutcome(std::unexpected(refusal));
}

void RedisLimits::settle(const limits::Reservation& reservation, int64_t actual_micros,
                         const limits::BudgetCaps& caps, int64_t now_ms,
                         std::move_only_function<void(Result<limits::BudgetEvents>)> done) {
  auto [agent_cap, agent_warn] = capArguments(caps.agent);
  auto [project_cap, project_warn] = capArguments(caps.project);
  std::vector<std::string> keys = budgetKeys(reservation);
  std::string month = std::to_string(reservation.month_start_ms);
  for (std::string_view flag :
       {"a:" + reservation.agent_id + ":warned", "a:" + reservation.agent_id + ":exceeded",
        "p:" + reservation.project_id + ":warned", "p:" + reservation.project_id + ":exceeded"}) {
    keys.push_back(prefix_ + "bg:" + month + ":" + std::string(flag));
  }
  std::vector<std::string> args{
      member_prefix_ + std::to_string(reservation.id),
      std::to_string(std::max<int64_t>(actual_micros, 0)),
      agent_warn,
      agent_cap,
      project_warn,
      project_cap,
      std::to_string(keyLifetimeMillis(reservation.month_start_ms, now_ms)),
  };
  evalScriptDetached(settleScript(), std::move(keys), std::move(args),
                     [done = std::move(done)](Result<RedisValue> reply) mutable {
                       if (!done) {
                         return;
                       }
                       if (!reply) {
                         done(std::unexpected(reply.error()));
                         return;
                       }
                       if (auto valid = requireArray(*reply, 4, "budget settlement"); !valid) {
                         done(std::unexpected(valid.error()));
                         return;
                       }
                       limits::BudgetEvents events;
                       events.agent_warning = element(*reply, 0) == 1;
                       events.project_warning = element(*reply, 1) == 1;
                       events.agent_exceeded = element(*reply, 2) == 1;
                       events.project_exceeded = element(*reply, 3) == 1;
                       done(events);
                     });
}

void RedisLimits::release(const limits::Reservation& reservation) {
  std::vector<std::string> keys = budgetKeys(reservation);
  std::string month = std::to_string(reservation.month_start_ms);
  for (std::string_view flag : {":a:warned", ":a:exceeded", ":p:warned", ":p:exceeded"}) {
    keys.push_back(prefix_ + "bg:" + month + std::string(flag));
  }
  std::vector<std::string> args{
      member_prefix_ + std::to_string(reservation.id), "", "-1", "-1", "-1", "-1", "0"};
  evalScriptDetached(settleScript(), std::move(keys), std::move(args), [](Result<RedisValue>) {});
}

}  // namespace keystore::redis
