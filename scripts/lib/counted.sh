# Shared by the import benchmarks (bench-goaccess, bench-import-ab): a clock, the server's
# count, and waiting until the server counts every line. Source it; it defines functions only.

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# The server's total of counted events (GET /api/stats on 127.0.0.1:PORT), or nothing.
stats_total() {
  curl -s "http://127.0.0.1:$1/api/stats" 2>/dev/null | grep -o '"total":[0-9]*' | head -1 | cut -d: -f2 || true
}

# Waits until the server on 127.0.0.1:PORT counts LINES events, at most SECONDS; succeeds
# only if it does.
wait_counted() {
  local port="$1" lines="$2" deadline
  deadline=$(awk -v n="$(now)" -v s="$3" 'BEGIN { printf "%.3f", n + s }')
  until [ "$(stats_total "$port")" = "$lines" ]; do
    awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' && return 1
    sleep 0.005
  done
}
