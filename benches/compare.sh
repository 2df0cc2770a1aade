#!/usr/bin/env bash
# Side-by-side comparison: runs the same herald-bench scenarios against Herald (release build)
# and soketi 1.6.1 in one run, alternating server by scenario, and prints the ratios.
#
# Usage: bash benches/compare.sh [scenario-name-filter…]
# Prints the table, then writes $OUT/report.html (tables and charts) and $OUT/svg/*.svg.
#   DURATION=10   seconds of each measured phase          ROUNDS=1  runs per pair (medians)
#   CONNECTIONS=10000  size of the connect scenario        OUT=target/compare/<time>  results
#   BASELINE_BIN=path/to/herald  also run an older Herald build ("baseline") in the same run,
#                to check that a change did not regress (e.g. a release build of main in a
#                git worktree); ratio columns then compare Herald with it too.
#   PERF_SPLIT=1  also split the fan-out's and client events' CPU into user and kernel from
#                `perf record` samples (needs perf; see perf_split below).
# Herald runs with its node-wide new-connection rate limit off (it would cap the connect
# scenario by design); every other limit is at its default.
# Only 127.0.0.1 is used. Both servers restart for every scenario and are stopped by PID,
# also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
CONNECTIONS=${CONNECTIONS:-10000}
HERALD_PORT=${HERALD_PORT:-16101}
SOKETI_PORT=${SOKETI_PORT:-16201}
BASELINE_PORT=${BASELINE_PORT:-16301}
BASELINE_BIN=${BASELINE_BIN:-}
PERF_SPLIT=${PERF_SPLIT:-0}
# Each server's side ports (metrics, soketi's cluster discovery) sit right above its own.
HERALD_METRICS_PORT=$((HERALD_PORT + 1))
SOKETI_METRICS_PORT=$((SOKETI_PORT + 1))
SOKETI_CLUSTER_PORT=$((SOKETI_PORT + 2))
BASELINE_METRICS_PORT=$((BASELINE_PORT + 1))
OUT=${OUT:-target/compare/$(date +%Y%m%d-%H%M%S)}
SOKETI_DIR=target/soketi

# name | herald-bench arguments
SCENARIOS=(
  "fanout-1k-100eps|fanout -c 1000 -k 1 -r 100 -p 2"
  "fanout-1k-saturate|fanout -c 1000 -k 1 -r 0 -p 4"
  "connect|connect -c ${CONNECTIONS}"
  "http-16|http -c 16"
  "presence-100|presence -c 100"
  "client-events-100|client-events -p 100 -r 10"
)

command -v node >/dev/null || { echo "compare.sh needs node and npm (soketi runs on node)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "compare.sh needs python3 (to print the table)" >&2; exit 1; }
mkdir -p "$OUT"

echo "== building Herald and herald-bench (release)" >&2
cargo build --release --features bench --bin herald --bin herald-bench >&2

if [ ! -f "$SOKETI_DIR/node_modules/@soketi/soketi/bin/server.js" ]; then
  echo "== installing soketi 1.6.1 into $SOKETI_DIR" >&2
  mkdir -p "$SOKETI_DIR"
  # uWebSockets.js is published on GitHub only; this registry package ships the same binaries.
  cat >"$SOKETI_DIR/package.json" <<'EOF'
{
  "name": "herald-bench-soketi",
  "private": true,
  "dependencies": { "@soketi/soketi": "1.6.1" },
  "overrides": { "uWebSockets.js": "npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0" }
}
EOF
  (cd "$SOKETI_DIR" && npm install --ignore-scripts --no-audit --no-fund >&2)
fi

# soketi: the same app, client events on, limits off, user authentication off, and its
# cluster discovery (UDP) bound and aimed at 127.0.0.1 only instead of broadcasting.
cat >"$OUT/soketi.json" <<EOF
{
  "host": "127.0.0.1",
  "port": ${SOKETI_PORT},
  "metrics.enabled": false,
  "metrics.host": "127.0.0.1",
  "metrics.port": ${SOKETI_METRICS_PORT},
  "cluster.address": "127.0.0.1",
  "cluster.hostname": "127.0.0.1",
  "cluster.broadcast": "127.0.0.1",
  "cluster.unicast": "127.0.0.1",
  "cluster.port": ${SOKETI_CLUSTER_PORT},
  "appManager.array.apps": [{
    "id": "app-id", "key": "app-key", "secret": "app-secret", "enabled": true,
    "enableClientMessages": true, "enableUserAuthentication": false, "maxConnections": -1,
    "maxBackendEventsPerSecond": -1, "maxClientEventsPerSecond": -1, "maxReadRequestsPerSecond": -1,
    "webhooks": []
  }]
}
EOF

HERALD_PID=""
SOKETI_PID=""
BASELINE_PID=""
# shellcheck source=benches/lib.sh
source benches/lib.sh
cleanup() {
  stop_pid "$HERALD_PID"
  stop_pid "$SOKETI_PID"
  stop_pid "$BASELINE_PID"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "server $pid exited during start-up" >&2; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

# A port already taken would send one server's traffic to another (uWS listens with SO_REUSEPORT).
for port in "$HERALD_PORT" "$HERALD_METRICS_PORT" "$SOKETI_PORT" "$SOKETI_METRICS_PORT" "$BASELINE_PORT" \
  "$BASELINE_METRICS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already in use; set HERALD_PORT / SOKETI_PORT" >&2
    exit 1
  fi
done

ulimit -n "$(ulimit -Hn)"

# Both servers start fresh for every scenario and round, so memory figures start from a clean
# process and no scenario inherits another's sockets; the idle one costs next to nothing.
start_herald() { # binary port metrics-port log extra-env…
  local bin=$1 port=$2 metrics=$3 log=$4
  shift 4
  env HERALD_SERVER__HOST=127.0.0.1 HERALD_SERVER__PORT="$port" \
    HERALD_METRICS__HOST=127.0.0.1 HERALD_METRICS__PORT="$metrics" \
    HERALD_SHUTDOWN__DRAIN_SECS=0 HERALD_LOG__LEVEL=warn "$@" \
    "$bin" >"$log" 2>&1 &
}
start_servers() { # log-suffix
  start_herald target/release/herald "$HERALD_PORT" "$HERALD_METRICS_PORT" "$OUT/herald.$1.log" \
    HERALD_SERVER__MAX_CONNECTIONS_PER_SECOND=0
  HERALD_PID=$!
  if [ -n "$BASELINE_BIN" ]; then
    # The same setting as Herald's (an older build without the key ignores it).
    start_herald "$BASELINE_BIN" "$BASELINE_PORT" "$BASELINE_METRICS_PORT" "$OUT/baseline.$1.log" \
      HERALD_SERVER__MAX_CONNECTIONS_PER_SECOND=0
    BASELINE_PID=$!
    wait_port "$BASELINE_PORT" "$BASELINE_PID"
  fi
  node "$SOKETI_DIR/node_modules/@soketi/soketi/bin/server.js" start --config="$OUT/soketi.json" \
    >"$OUT/soketi.$1.log" 2>&1 &
  SOKETI_PID=$!
  wait_port "$HERALD_PORT" "$HERALD_PID"
  wait_port "$SOKETI_PORT" "$SOKETI_PID"
}
stop_servers() {
  stop_pid "$HERALD_PID"
  stop_pid "$SOKETI_PID"
  stop_pid "$BASELINE_PID"
  HERALD_PID=""
  SOKETI_PID=""
  BASELINE_PID=""
}

run() { # server port pid name args…
  local server=$1 port=$2 pid=$3 name=$4 round=$5
  shift 5
  echo "== $name on $server (round $round): herald-bench $*" >&2
  local perf_pid="" result="$OUT/$name.$server.$round"
  if [ "$PERF_SPLIT" = 1 ] && [[ $name == fanout-1k-100eps || $name == client-events-* ]]; then
    # Inside the measured phase: it starts after the clients are set up (well under 2 s here).
    (sleep 2 && exec perf record -q -F 1999 -e cpu-clock -p "$pid" -o "$result.perf" -- sleep $((DURATION - 3))) \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if target/release/herald-bench --port "$port" --server-pid "$pid" --duration "$DURATION" --progress 5 "$@" \
    >"$result.txt"; then
    tail -n 1 "$result.txt" >"$result.json"
  else
    echo "   failed: see $result.txt" >&2
  fi
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    perf_split "$result"
  fi
}

# PERF_SPLIT=1: the server's CPU per unit split into user space and kernel by perf's samples
# (1999 Hz) instead of /proc's utime/stime. The kernel charges those by its tick, and at 100
# events/s the tick and the publishing beat alias: the split moves by ±30 % from run to run
# while the total stays put. Added to the result as `server_{user,system}_us_per_<unit>_perf`.
perf_split() { # result-path-without-extension
  [ -s "$1.perf" ] && [ -s "$1.json" ] || return 0
  local kernel
  kernel=$(perf report -i "$1.perf" --stdio --sort dso -g none 2>/dev/null |
    awk '/\[kernel\.kallsyms\]/ { sub("%", "", $1); print $1 }')
  python3 - "$1.json" "${kernel:-}" <<'EOF'
import json, sys
path, kernel = sys.argv[1], sys.argv[2]
if kernel:
    v = json.load(open(path))
    share = float(kernel) / 100
    for key, total in list(v["metrics"].items()):
        if key.startswith("server_cpu_us_per_") and total is not None:
            unit = key[len("server_cpu_us_per_"):]
            v["metrics"][f"server_user_us_per_{unit}_perf"] = total * (1 - share)
            v["metrics"][f"server_system_us_per_{unit}_perf"] = total * share
    json.dump(v, open(path, "w"))
EOF
  rm -f "$1.perf" "$1.perf.old"
}

for entry in "${SCENARIOS[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  if [ $# -gt 0 ]; then
    wanted=no
    for f in "$@"; do [[ $name == *"$f"* ]] && wanted=yes; done
    [ "$wanted" = yes ] || continue
  fi
  for round in $(seq 1 "$ROUNDS"); do
    echo "== starting Herald on 127.0.0.1:$HERALD_PORT and soketi on 127.0.0.1:$SOKETI_PORT" >&2
    start_servers "$name.$round"
    # shellcheck disable=SC2086 # args is a list of words on purpose
    run herald "$HERALD_PORT" "$HERALD_PID" "$name" "$round" $args
    # shellcheck disable=SC2086
    run soketi "$SOKETI_PORT" "$SOKETI_PID" "$name" "$round" $args
    if [ -n "$BASELINE_BIN" ]; then
      # shellcheck disable=SC2086
      run baseline "$BASELINE_PORT" "$BASELINE_PID" "$name" "$round" $args
    fi
    stop_servers
  done
done

# The metrics of each scenario's table and which way is better live in herald-bench (the HTML
# report uses them too): `report --metric-table` prints them as JSON.
python3 - "$OUT" "$(target/release/herald-bench report --metric-table)" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
# scenario -> [[metric, True when higher is better, False when lower is, None when only for context], …]
SHOW = json.loads(sys.argv[2])
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    base = os.path.basename(path)
    if base.count(".") != 3:
        continue
    name, server, _round, _ = base.split(".")
    try:
        v = json.load(open(path))
    except ValueError:
        continue
    runs.setdefault((name, v["scenario"]), {}).setdefault(server, []).append(v["metrics"])
def median(ms, key):
    xs = [m[key] for m in ms if m.get(key) is not None]
    return statistics.median(xs) if xs else None
baseline = any("baseline" in by for by in runs.values())
print(f"\nHerald vs soketi 1.6.1 — medians of the rounds; ratio = Herald / soketi; results in {out}")
print("(CPU figures come from /proc in 10 ms ticks: short phases with little work read as 0)")
extra = f" {'baseline':>12} {'vs base':>8}" if baseline else ""
print(f"{'scenario':<20} {'metric':<32} {'herald':>12} {'soketi':>12} {'ratio':>8}{extra}  better")
for (name, scenario), by in runs.items():
    # PERF_SPLIT's metrics (lower is better) after herald-bench's own.
    perf = sorted({k for ms in by.values() for m in ms for k in m if k.endswith("_perf")})
    for metric, higher in SHOW.get(scenario, []) + [[k, False] for k in perf]:
        h, s = median(by.get("herald", []), metric), median(by.get("soketi", []), metric)
        fmt = lambda x: "-" if x is None else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}")
        ratio = (h / s) if (h is not None and s) else None
        extra = ""
        if baseline:
            b = median(by.get("baseline", []), metric)
            vs = (h / b) if (h is not None and b) else None
            extra = f" {fmt(b):>12} {fmt(vs):>8}"
        if ratio is None or higher is None:
            better = ""
        elif ratio == 0:
            better = "herald" if not higher else "soketi"
        else:
            gain = ratio if higher else (1 / ratio if ratio else float("inf"))
            better = f"herald ×{gain:.2f}" if gain >= 1 else f"soketi ×{1 / gain:.2f}"
        print(f"{name:<20} {metric:<32} {fmt(h):>12} {fmt(s):>12} {fmt(ratio):>8}{extra}  {better}")
EOF

# One HTML page with the tables and charts (latency histograms, rates and RSS over time), and
# each chart as an .svg file.
if target/release/herald-bench report --out "$OUT/report.html" --svg-dir "$OUT/svg" "$OUT"/*.*.[0-9]*.json; then
  echo "report: $OUT/report.html (charts in $OUT/svg/)"
fi
