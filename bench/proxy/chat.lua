-- wrk script for the proxy benchmark: POSTs a small OpenAI-style chat request, counts every
-- response whose status is outside 200-299 (wrk's own counter only counts statuses >= 400), and
-- prints one machine-readable "bench-result" line for run.sh.
--
-- BENCH_AUTHORIZATION contains the whole Authorization header value. It comes from the
-- environment so that the agent token never appears on a command line.

local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization == nil or authorization == "" then
  error("BENCH_AUTHORIZATION is not set; run this script through bench/proxy/run.sh")
end

wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = authorization

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local total_non_2xx = 0
  for _, thread in ipairs(threads) do
    total_non_2xx = total_non_2xx + thread:get("non_2xx")
  end

  local errors = summary.errors
  -- Latency values are microseconds and summary.duration is microseconds.
  io.write(string.format(
    "bench-result requests=%d duration_us=%d rate=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
    "max_us=%d non_2xx=%d errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total_non_2xx, errors.connect, errors.read, errors.write, errors.timeout))
end
