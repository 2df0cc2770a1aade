#!/usr/bin/env bash
# Scale-out benchmark: N nodes on one redis-server, Herald (driver "redis") and soketi 1.6.1
# (adapter "redis") in turn, driven by herald-bench with connections and publishes spread over
# the nodes (--ports). For every run it reads the CPU time (utime+stime, /proc) of each node
# and of Redis over the whole run, and prints per-node CPU per delivery and Redis CPU per
# publish next to herald-bench's deliveries/s, loss and latency.
#
# Usage: bash benches/cluster.sh [scenario-name-filter…]
#   NODES=3  DURATION=10  RATE=100 (events/s at fixed load)
#   SUBSCRIBERS=1500 (fixed load)  SATURATE_SUBSCRIBERS=3000
#   OUT=target/cluster-bench/<time>  SKIP_SOKETI=1 (Herald only)
# Scenarios:
#   fanout-fixed     SUBSCRIBERS over 1 channel, spread over the nodes, RATE events/s
#   fanout-saturate  SATURATE_SUBSCRIBERS, publishing as fast as the servers take it
#   interest         100 channels whose subscribers all sit on node 1, publishes to node 1:
#                    the bytes the other nodes receive from Redis (ss: bytes_received of
#                    their connections to it), the same measure for both servers
# Only 127.0.0.1 is used; every process is started here and stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-3}
DURATION=${DURATION:-10}
SUBSCRIBERS=${SUBSCRIBERS:-1500}
SATURATE_SUBSCRIBERS=${SATURATE_SUBSCRIBERS:-3000}
RATE=${RATE:-100}
BASE_PORT=${BASE_PORT:-17101}
REDIS_PORT=${REDIS_PORT:-17099}
OUT=${OUT:-target/cluster-bench/$(date +%Y%m%d-%H%M%S)}
SOKETI_DIR=target/soketi
mkdir -p "$OUT"

command -v redis-server >/dev/null || { echo "cluster.sh needs redis-server (apt-get install redis-server)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "cluster.sh needs python3 (to print the table)" >&2; exit 1; }
command -v ss >/dev/null || { echo "cluster.sh needs ss (iproute2)" >&2; exit 1; }

echo "== building Herald and herald-bench (release)" >&2
cargo build --release --features bench --bin herald --bin herald-bench >&2
if [ -z "${SKIP_SOKETI:-}" ] && [ ! -f "$SOKETI_DIR/node_modules/@soketi/soketi/bin/server.js" ]; then
  echo "soketi is not installed: run benches/compare.sh once (it installs soketi 1.6.1), or SKIP_SOKETI=1" >&2
  exit 1
fi

PIDS=()
# shellcheck source=benches/lib.sh
source benches/lib.sh
stop_all() {
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited during start-up" >&2; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

# utime+stime of a process, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Bytes a process received from Redis over its open connections to it.
from_redis() {
  ss -tinpH "dport = :$REDIS_PORT" | awk -v pid="pid=$1," \
    'index($0, pid) {getline; if (match($0, /bytes_received:[0-9]+/)) s += substr($0, RSTART + 15, RLENGTH - 15)} END {print s + 0}'
}

ulimit -n "$(ulimit -Hn)"

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_port "$REDIS_PORT" "$REDIS_PID"
}

NODE_PIDS=()
start_nodes() { # server log-suffix
  NODE_PIDS=()
  for i in $(seq 0 $((NODES - 1))); do
    local port=$((BASE_PORT + 10 * i))
    if [ "$1" = herald ]; then
      env HERALD_SERVER__HOST=127.0.0.1 HERALD_SERVER__PORT="$port" \
        HERALD_METRICS__HOST=127.0.0.1 HERALD_METRICS__PORT=$((port + 1)) \
        HERALD_SERVER__MAX_CONNECTIONS_PER_SECOND=0 HERALD_SHUTDOWN__DRAIN_SECS=0 HERALD_LOG__LEVEL=warn \
        HERALD_ADAPTER__DRIVER=redis HERALD_ADAPTER__REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
        target/release/herald >"$OUT/herald.$2.$i.log" 2>&1 &
    else
      cat >"$OUT/soketi-node-$i.conf" <<EOF
{
  "host": "127.0.0.1", "port": ${port},
  "metrics.enabled": false, "metrics.host": "127.0.0.1", "metrics.port": $((port + 1)),
  "adapter.driver": "redis",
  "database.redis.host": "127.0.0.1", "database.redis.port": ${REDIS_PORT},
  "cluster.address": "127.0.0.1", "cluster.hostname": "127.0.0.1", "cluster.broadcast": "127.0.0.1",
  "cluster.unicast": "127.0.0.1", "cluster.port": $((port + 2)),
  "appManager.array.apps": [{
    "id": "app-id", "key": "app-key", "secret": "app-secret", "enabled": true,
    "enableClientMessages": true, "enableUserAuthentication": false, "maxConnections": -1,
    "maxBackendEventsPerSecond": -1, "maxClientEventsPerSecond": -1, "maxReadRequestsPerSecond": -1,
    "webhooks": []
  }]
}
EOF
      node "$SOKETI_DIR/node_modules/@soketi/soketi/bin/server.js" start --config="$OUT/soketi-node-$i.conf" \
        >"$OUT/soketi.$2.$i.log" 2>&1 &
    fi
    NODE_PIDS+=("$!")
    PIDS+=("$!")
    wait_port "$port" "$!"
  done
}

ports() { # how many nodes, from node 0
  local list=""
  for i in $(seq 0 $(($1 - 1))); do list="$list${list:+,}$((BASE_PORT + 10 * i))"; done
  echo "$list"
}

run() { # server name node-count herald-bench-args…
  local server=$1 name=$2 spread=$3
  shift 3
  start_redis
  start_nodes "$server" "$name"
  local before_cpu=() before_io=() redis_before
  for pid in "${NODE_PIDS[@]}"; do before_cpu+=("$(ticks "$pid")"); before_io+=("$(from_redis "$pid")"); done
  redis_before=$(ticks "$REDIS_PID")
  echo "== $name on $server ×$NODES: herald-bench --ports $(ports "$spread") $*" >&2
  target/release/herald-bench --ports "$(ports "$spread")" --duration "$DURATION" --progress 5 "$@" \
    >"$OUT/$name.$server.txt" || echo "   herald-bench failed: see $OUT/$name.$server.txt" >&2
  local cpu="" io=""
  for i in "${!NODE_PIDS[@]}"; do
    cpu="$cpu${cpu:+,}$(($(ticks "${NODE_PIDS[$i]}") - before_cpu[i]))"
    io="$io${io:+,}$(($(from_redis "${NODE_PIDS[$i]}") - before_io[i]))"
  done
  local redis_cpu=$(($(ticks "$REDIS_PID") - redis_before))
  # Herald counts what each node received from the bus; soketi is judged by bytes read.
  local received=""
  if [ "$server" = herald ]; then
    for i in "${!NODE_PIDS[@]}"; do
      local n
      n=$(curl -s "http://127.0.0.1:$((BASE_PORT + 10 * i + 1))/metrics" | awk '/^herald_bus_received_total / {print $2}')
      received="$received${received:+,}${n:-0}"
    done
  fi
  {
    tail -n 1 "$OUT/$name.$server.txt"
    echo "{\"node_cpu_ticks\": [$cpu], \"node_read_bytes\": [$io], \"bus_received\": [$received], \"redis_cpu_ticks\": $redis_cpu, \"hz\": $(getconf CLK_TCK)}"
  } >"$OUT/$name.$server.json"
  stop_all
}

SCENARIOS=(
  "fanout-fixed|$NODES|fanout -c $SUBSCRIBERS -k 1 -r $RATE -p $NODES"
  "fanout-saturate|$NODES|fanout -c $SATURATE_SUBSCRIBERS -k 1 -r 0 -p $((2 * NODES))"
  "interest|1|fanout -c 1000 -k 100 -r 200 -p 2"
)
SERVERS=(herald)
[ -n "${SKIP_SOKETI:-}" ] || SERVERS+=(soketi)

for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r name spread args <<<"$entry"
  if [ $# -gt 0 ]; then
    wanted=no
    for f in "$@"; do [[ $name == *"$f"* ]] && wanted=yes; done
    [ "$wanted" = yes ] || continue
  fi
  for server in "${SERVERS[@]}"; do
    # shellcheck disable=SC2086 # args is a list of words on purpose
    run "$server" "$name" "$spread" $args
  done
done

python3 - "$OUT" "$NODES" <<'EOF'
import glob, json, os, sys
out, nodes = sys.argv[1], int(sys.argv[2])
print(f"\n{nodes} nodes on one redis-server; CPU over the whole run (set-up included); results in {out}")
print("others read B: bytes nodes 2..N received from Redis (interest: every subscriber and publish is on node 1);")
print("others bus msgs: bus messages nodes 2..N received (Herald's own count)")
cols = ["deliveries/s", "loss", "p50 ms", "p99 ms", "µs CPU/delivery", "Redis µs/publish", "others from Redis B", "others bus msgs"]
print(f"{'scenario':<16} {'server':<7} " + " ".join(f"{c:>18}" for c in cols))
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    parts = os.path.basename(path).split(".")
    if len(parts) != 3 or parts[1] not in ("herald", "soketi"):
        continue
    name, server, _ = parts
    lines = open(path).read().splitlines()
    try:
        bench, procs = json.loads(lines[0]), json.loads(lines[1])
    except (ValueError, IndexError):
        print(f"{name:<16} {server:<7} (failed)")
        continue
    m = bench["metrics"]
    us = [t * 1e6 / procs["hz"] for t in procs["node_cpu_ticks"]]
    deliveries = max(m.get("deliveries", 0), 1)
    published = max(m.get("events_published", 0), 1)
    per_node = sum(us) / deliveries  # all nodes' CPU over all deliveries (each node's share alike)
    redis = procs["redis_cpu_ticks"] * 1e6 / procs["hz"] / published
    others = sum(procs["node_read_bytes"][1:]) if name == "interest" else None
    bus = procs.get("bus_received") or []
    others_bus = sum(bus[1:]) if name == "interest" and bus else None
    vals = [m.get("deliveries_per_sec"), m.get("loss"), m.get("latency_p50_ms"), m.get("latency_p99_ms"), per_node, redis,
            others, others_bus]
    fmt = lambda x: "-" if x is None else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}")
    print(f"{name:<16} {server:<7} " + " ".join(f"{fmt(v):>18}" for v in vals))
EOF
