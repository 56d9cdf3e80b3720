-- wrk script for scripts/bench-wrk: POST one event (as a one-item JSON list, which both the
-- Flask stand-in and our server take) on every request, and print a machine-readable summary.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '[{"ip":"173.198.105.40","latitude":35.3696,"longitude":-119.0105,"timestamp":1736919120,"suspicious":0}]'

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
