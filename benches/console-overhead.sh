#!/usr/bin/env bash
# What an open debug console costs the hot path: the same fan-out (1,000 subscribers on one
# channel, 100 events/s over REST) against one Herald (release build), alternately with no
# console open and with CONSOLES consoles following the app (payload previews on), ROUNDS
# times each; prints the medians of server CPU per delivery, latency and deliveries per mode,
# and how many events the consoles received.
#
# Usage: bash benches/console-overhead.sh
#   DURATION=10  seconds of each measured phase    ROUNDS=3  runs per mode
#   CONSOLES=2   consoles open in the "open" mode  PORT=16401 (metrics on PORT+1)
# Only 127.0.0.1 is used; Herald and the consoles (curl) are stopped by PID, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONSOLES=${CONSOLES:-2}
PORT=${PORT:-16401}
METRICS_PORT=$((PORT + 1))
TOKEN=console-overhead-token-0123
OUT=${OUT:-target/console-overhead/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v curl >/dev/null || { echo "console-overhead.sh needs curl" >&2; exit 1; }

echo "== building Herald and herald-bench (release)" >&2
cargo build --release --features bench --bin herald --bin herald-bench >&2

HERALD_PID=""
CURL_PIDS=()
# shellcheck source=benches/lib.sh
source benches/lib.sh
close_consoles() {
  for pid in "${CURL_PIDS[@]}"; do stop_pid "$pid"; done
  CURL_PIDS=()
}
cleanup() {
  close_consoles
  stop_pid "$HERALD_PID"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

for port in "$PORT" "$METRICS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use; set PORT" >&2
    exit 1
  fi
done

env HERALD_SERVER__HOST=127.0.0.1 HERALD_SERVER__PORT="$PORT" HERALD_METRICS__HOST=127.0.0.1 \
  HERALD_METRICS__PORT="$METRICS_PORT" HERALD_SHUTDOWN__DRAIN_SECS=0 HERALD_LOG__LEVEL=warn \
  HERALD_SERVER__MAX_CONNECTIONS_PER_SECOND=0 HERALD_APP_STORE__ADMIN_TOKEN="$TOKEN" \
  HERALD_DEBUG__PAYLOAD_PREVIEW_BYTES=256 target/release/herald >"$OUT/herald.log" 2>&1 &
HERALD_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT") 2>/dev/null && break
  sleep 0.1
done

for round in $(seq 1 "$ROUNDS"); do
  for mode in closed open; do
    if [ "$mode" = open ]; then
      for i in $(seq 1 "$CONSOLES"); do
        curl -sN -H "Authorization: Bearer $TOKEN" \
          "http://127.0.0.1:$METRICS_PORT/admin/debug/apps/app-id/events" >"$OUT/console.$round.$i.txt" &
        CURL_PIDS+=($!)
      done
      # The consoles are open once each has its `ready` event.
      for i in $(seq 1 "$CONSOLES"); do
        for _ in $(seq 1 100); do grep -q '^event: ready' "$OUT/console.$round.$i.txt" 2>/dev/null && break; sleep 0.05; done
      done
    fi
    echo "== round $round, consoles $mode" >&2
    target/release/herald-bench --port "$PORT" --server-pid "$HERALD_PID" --duration "$DURATION" --progress 0 \
      fanout -c 1000 -k 1 -r 100 -p 2 >"$OUT/$mode.$round.txt"
    tail -n 1 "$OUT/$mode.$round.txt" >"$OUT/$mode.$round.json"
    close_consoles
  done
done

python3 - "$OUT" "$CONSOLES" <<'PY'
import glob, json, statistics, sys
out, consoles = sys.argv[1], int(sys.argv[2])
keys = ["server_cpu_us_per_delivery", "latency_p50_ms", "latency_p99_ms", "deliveries_per_sec", "loss"]
rows = {}
for mode in ("closed", "open"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{mode}.*.json"))]
    rows[mode] = {k: statistics.median(r["metrics"][k] for r in runs) for k in keys}
events = [sum(1 for line in open(f) if line.startswith("data: ")) for f in glob.glob(f"{out}/console.*.txt")]
print(f"{'metric':32} {'no console':>12} {f'{consoles} consoles':>12} {'ratio':>7}")
for k in keys:
    a, b = rows["closed"][k], rows["open"][k]
    ratio = f"{b / a:.2f}" if a else "-"
    print(f"{k:32} {a:12.3f} {b:12.3f} {ratio:>7}")
print(f"events received per console per run: {statistics.median(events) if events else 0:.0f}")
PY
