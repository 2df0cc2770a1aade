#!/usr/bin/env bash
# Scale soak: NODES Herald nodes on one redis-server, PER_NODE connections held on each by its
# own herald-bench process (a process may open at most 20,000 files here), all subscribed to
# one channel, for HOLD seconds, with a broadcast every EVERY seconds through the nodes in
# turn. Reports, per node, the RSS per connection, and overall the broadcasts sent, the
# deliveries expected and made, and the disconnects.
#
# Usage: bash benches/cluster-soak.sh
#   NODES=5  PER_NODE=19000  HOLD=600  EVERY=5  OUT=target/cluster-soak/<time>
# Only 127.0.0.1 (and 127.x source addresses) is used; every process is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-5}
PER_NODE=${PER_NODE:-19000}
HOLD=${HOLD:-600}
EVERY=${EVERY:-5}
BASE_PORT=${BASE_PORT:-18101}
REDIS_PORT=${REDIS_PORT:-18099}
OUT=${OUT:-target/cluster-soak/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "needs redis-server" >&2; exit 1; }

cargo build --release --features bench --bin herald --bin herald-bench >&2

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing on port $1" >&2
  return 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
ulimit -n "$(ulimit -Hn)"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
PIDS+=("$!")
wait_port "$REDIS_PORT"

NODE_PIDS=()
PORTS=()
for i in $(seq 0 $((NODES - 1))); do
  port=$((BASE_PORT + 10 * i))
  env HERALD_SERVER__HOST=127.0.0.1 HERALD_SERVER__PORT="$port" \
    HERALD_METRICS__HOST=127.0.0.1 HERALD_METRICS__PORT=$((port + 1)) \
    HERALD_SERVER__MAX_CONNECTIONS=$((PER_NODE + 500)) HERALD_SERVER__MAX_CONNECTIONS_PER_SECOND=0 \
    HERALD_SHUTDOWN__DRAIN_SECS=0 HERALD_LOG__LEVEL=warn \
    HERALD_ADAPTER__DRIVER=redis HERALD_ADAPTER__REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    target/release/herald >"$OUT/herald.$i.log" 2>&1 &
  NODE_PIDS+=("$!")
  PIDS+=("$!")
  PORTS+=("$port")
  wait_port "$port"
done
sleep 1
RSS_IDLE=()
for pid in "${NODE_PIDS[@]}"; do RSS_IDLE+=("$(rss_kb "$pid")"); done

# One generator per node, each from its own 127.0.x source address range. They hold for the
# whole soak plus the time the others take to connect.
GEN_PIDS=()
for i in $(seq 0 $((NODES - 1))); do
  target/release/herald-bench --port "${PORTS[$i]}" --server-pid "${NODE_PIDS[$i]}" --duration $((HOLD + 120)) \
    --first-source-ip $((10 + i)) --progress 2 --connect-concurrency 50 connect -c "$PER_NODE" --channel soak --settle 0 \
    >"$OUT/gen.$i.txt" 2>"$OUT/gen.$i.err" &
  GEN_PIDS+=("$!")
  PIDS+=("$!")
done

# Wait until every node holds its connections (herald_connections on each).
total=$((NODES * PER_NODE))
for _ in $(seq 1 600); do
  held=0
  for i in $(seq 0 $((NODES - 1))); do
    # A scrape that fails under the connect storm counts as nothing yet.
    n=$({ curl -s -m 5 "http://127.0.0.1:$((PORTS[i] + 1))/metrics" || true; } |
      awk '/^herald_connections\{/ {s += $2} END {print s + 0}')
    held=$((held + n))
  done
  [ "$held" -ge "$total" ] && break
  sleep 1
done
echo "== $held of $total connections held; broadcasting every ${EVERY}s for ${HOLD}s" >&2
RSS_CONNECTED=()
for pid in "${NODE_PIDS[@]}"; do RSS_CONNECTED+=("$(rss_kb "$pid")"); done

# The broadcasts: signed REST triggers through the nodes in turn (python3, standard library).
python3 - "$HOLD" "$EVERY" "${PORTS[@]}" >"$OUT/broadcasts.txt" <<'EOF'
import hashlib, hmac, json, sys, time, urllib.request
hold, every, ports = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
sent = failed = 0
end = time.monotonic() + hold
i = 0
while time.monotonic() < end:
    body = json.dumps({"name": "tick", "channel": "soak", "data": str(i)}).encode()
    path = "/apps/app-id/events"
    q = f"auth_key=app-key&auth_timestamp={int(time.time())}&auth_version=1.0&body_md5={hashlib.md5(body).hexdigest()}"
    sig = hmac.new(b"app-secret", f"POST\n{path}\n{q}".encode(), hashlib.sha256).hexdigest()
    url = f"http://127.0.0.1:{ports[i % len(ports)]}{path}?{q}&auth_signature={sig}"
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            sent += r.status == 200
            failed += r.status != 200
    except OSError:
        failed += 1
    i += 1
    time.sleep(every)
print(json.dumps({"broadcasts": sent, "failed": failed}))
EOF
sleep 5 # the last broadcast's deliveries
RSS_END=()
for pid in "${NODE_PIDS[@]}"; do RSS_END+=("$(rss_kb "$pid")"); done
for pid in "${GEN_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done

# The generators report when their hold ends; read what they counted so far from progress.
python3 - "$OUT" "$NODES" "$PER_NODE" "${RSS_IDLE[*]}" "${RSS_CONNECTED[*]}" "${RSS_END[*]}" <<'EOF'
import json, re, sys, os
out, nodes, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle, conn, end = ([int(x) for x in a.split()] for a in sys.argv[4:7])
b = json.loads(open(os.path.join(out, "broadcasts.txt")).read())
received = disconnects = connected = 0
for i in range(nodes):
    lines = [l for l in open(os.path.join(out, f"gen.{i}.err")) if "events received" in l]
    m = re.search(r"connected (\d+)/\d+\s+disconnects (\d+)\s+events received (\d+)", lines[-1])
    connected += int(m.group(1)); disconnects += int(m.group(2)); received += int(m.group(3))
expected = b["broadcasts"] * connected
print(f"nodes {nodes}, connections {connected} ({per} per node), broadcasts {b['broadcasts']} (failed {b['failed']})")
print(f"deliveries expected {expected}, received {received}, loss {expected - received}, disconnects {disconnects}")
for i in range(nodes):
    print(f"node {i}: RSS idle {idle[i]} KB, connected {conn[i]} KB, end {end[i]} KB; "
          f"per connection {(conn[i]-idle[i])*1024/per:.0f} B connected, {(end[i]-idle[i])*1024/per:.0f} B at the end")
EOF
