#!/usr/bin/env bash
# Load test of the example server over real HTTP (loopback), with wrk.
#
#   benches/load.sh            # builds the release example, then about 90 s of load
#   DURATION=4 ROUNDS=5        # (defaults) seconds per wrk run, alternating rounds; medians are printed
#
# Prints: protected vs unprotected throughput; the protected route's p99
# latency idle and during a 64-connection sign-in flood; the server's peak RSS.
# Needs wrk (Debian: apt-get install wrk). Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-38127}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)

cargo build --release --example server --quiet
BIN=target/release/examples/server

MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-} DATABASE_URL="sqlite://$WORK/load.db?mode=rwc" BIND_ADDR="127.0.0.1:$PORT" COOKIE_SECURE=false \
  JWT_SECRET=load-test-secret-0123456789abcdef0123456789 RUST_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "$BASE/api/v1/status/" >/dev/null 2>&1 && break; sleep 0.1; done

PASSWORD="correct horse battery staple"
curl -fs -o /dev/null -X POST "$BASE/api/v1/auth/signup/" -H 'Content-Type: application/json' \
  -d "{\"email\":\"load@example.com\",\"password\":\"$PASSWORD\",\"name\":\"Load\",\"captcha\":\"x\"}"
TOKEN=$(curl -fs -D - -o /dev/null -X POST "$BASE/api/v1/auth/signin/" -H 'Content-Type: application/json' \
  -d "{\"login\":\"load@example.com\",\"password\":\"$PASSWORD\",\"captcha\":\"x\"}" \
  | sed -n 's/^set-cookie: access_token=\([^;]*\);.*/\1/ip' | tr -d '\r')
[ -n "$TOKEN" ] || { echo "sign-in failed" >&2; exit 1; }
curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/account/" >/dev/null

cat >"$WORK/signin.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"load@example.com","password":"$PASSWORD","captcha":"x"}'
LUA

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
# p99 from wrk --latency, in milliseconds.
p99() {
  awk '$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
       f = (u == "us") ? 0.001 : (u == "s") ? 1000 : 1; printf "%.3f", v * f }' "$1"
}
rss_peak() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# Median over rounds of a per-round ratio: each round's pair ran back to back,
# so drift on a shared machine cancels out of the ratio.
ratio() { for r in $(seq "$ROUNDS"); do awk -v a="$($1 "$WORK/$2.$r.txt")" -v b="$($1 "$WORK/$3.$r.txt")" 'BEGIN {print a / b}'; done | median; }

# Rounds alternate the two sides, so drift on a shared machine hits both. Both
# requests carry the same Authorization header, so the difference is what
# the layer does with it, not the bytes on the wire.
# For the throughput runs the server and wrk each get their own CPU (when
# there are two), so neither steals the other's time: what is compared is the
# server's cost per request.
PIN_WRK=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  taskset -a -p -c 0 "$PID" >/dev/null
  PIN_WRK=(taskset -c 1)
fi
echo "== throughput: $ROUNDS rounds of ${DURATION}s per route, 1 wrk thread x 64 connections${PIN_WRK:+ (server on CPU 0, wrk on CPU 1)}"
for r in $(seq "$ROUNDS"); do
  "${PIN_WRK[@]}" wrk -t1 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/status/" >"$WORK/open.$r.txt"
  "${PIN_WRK[@]}" wrk -t1 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/account/" >"$WORK/auth.$r.txt"
done
[ ${#PIN_WRK[@]} -eq 0 ] || taskset -a -p -c "0-$(($(nproc) - 1))" "$PID" >/dev/null
OPEN=$(for r in $(seq "$ROUNDS"); do rps "$WORK/open.$r.txt"; done | median)
AUTH=$(for r in $(seq "$ROUNDS"); do rps "$WORK/auth.$r.txt"; done | median)

echo "== protected p99, 1 thread x 4 connections: idle, then during a 64-connection sign-in flood ($ROUNDS rounds)"
for r in $(seq "$ROUNDS"); do
  wrk -t1 -c4 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/account/" >"$WORK/idle.$r.txt"
  wrk -t1 -c64 -d"$((DURATION + 3))s" -s "$WORK/signin.lua" "$BASE/api/v1/auth/signin/" >"$WORK/flood.$r.txt" &
  FLOOD=$!
  sleep 2
  wrk -t1 -c4 -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/account/" >"$WORK/busy.$r.txt"
  wait $FLOOD
done
IDLE=$(for r in $(seq "$ROUNDS"); do p99 "$WORK/idle.$r.txt"; echo; done | median)
BUSY=$(for r in $(seq "$ROUNDS"); do p99 "$WORK/busy.$r.txt"; echo; done | median)
SIGNINS=$(for r in $(seq "$ROUNDS"); do rps "$WORK/flood.$r.txt"; done | median)
RSS=$(rss_peak)

printf '\n%-48s %12s %12s\n' "figure" "value" "target"
printf '%-48s %12s\n' "unprotected /api/v1/status/ (req/s)" "$OPEN"
printf '%-48s %12s\n' "protected /api/v1/account/ (req/s)" "$AUTH"
printf '%-48s %12.3f %12s\n' "protected / unprotected (median of rounds)" "$(ratio rps auth open)" ">= 0.95"
printf '%-48s %12s\n' "protected p99 idle (ms)" "$IDLE"
printf '%-48s %12s\n' "protected p99 during sign-in flood (ms)" "$BUSY"
printf '%-48s %12.2f %12s\n' "flood p99 / idle p99 (median of rounds)" "$(ratio p99 busy idle)" "<= 3"
printf '%-48s %12s\n' "sign-ins/s during the flood" "$SIGNINS"
printf '%-48s %12s %12s\n' "server peak RSS (MiB)" "$RSS" "<= 150"
