#!/usr/bin/env bash
# Real-client compatibility suite: drives a real Herald binary with pusher-js 8, Laravel
# Echo 2 (pusher and socket.io connectors), socket.io-client 4 and 2, the `pusher` Node SDK 5,
# the Python `pusher` SDK, headless Chromium (pages using Echo, and Herald's debug console),
# TLS in Herald's process (certificates from examples/tls-cert.rs) and Laravel's
# RedisBroadcaster (php), first
# against one node, then against a 3-node cluster (redis driver, a redis-server of its own)
# behind a round-robin TCP proxy (COMPAT_CLUSTER=3; the files that test one node's own
# limits and restarts run once).
#
# Installs what is missing (npm ci into tests/compat/node_modules, a Python venv with
# tests/compat/requirements.txt, Debian's chromium), builds herald if needed, runs the
# Node suite, the Python suite and the browser test, and ends with one line:
#   compat: N passed, M failed
# Exit status: 0 when nothing failed.
#
# Environment: HERALD_BIN (the herald binary; unset: `cargo build --bin herald`),
# COMPAT_VENV (default .venv-compat), PYTHON (default python3), CHROMIUM_BIN (default
# /usr/bin/chromium).
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
compat="$root/tests/compat"
logs="$root/target/compat"
mkdir -p "$logs"

venv="${COMPAT_VENV:-.venv-compat}"
python="${PYTHON:-python3}"
export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

step() { printf '\n== %s\n' "$*"; }
die() {
  echo "compat: $*" >&2
  echo "compat: 0 passed, 1 failed"
  exit 1
}

# --- Node packages (pinned by package-lock.json) -------------------------------------------
command -v node >/dev/null 2>&1 || die "node is required (Node 20+)"
command -v npm >/dev/null 2>&1 || die "npm is required"
lock_sum="$(sha256sum "$compat/package-lock.json" | cut -d' ' -f1)"
stamp="$compat/node_modules/.herald-compat-lock.sha256"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_sum" ]; then
  step "npm ci (tests/compat)"
  (cd "$compat" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  echo "$lock_sum" >"$stamp"
fi

# --- Python SDK in a venv -------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian without python3-venv has no ensurepip: a bare venv, filled by the system pip.
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv" || die "cannot create $venv"
  fi
fi
if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  pip=("$venv/bin/python" -m pip)
else
  pip=("$python" -m pip --python "$venv/bin/python")
fi
req_sum="$(sha256sum tests/compat/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$venv/.compat-requirements.sha256" 2>/dev/null || true)" != "$req_sum" ]; then
  step "pip install -r tests/compat/requirements.txt into $venv"
  "${pip[@]}" install --disable-pip-version-check --quiet --requirement tests/compat/requirements.txt ||
    die "pip install failed"
  echo "$req_sum" >"$venv/.compat-requirements.sha256"
fi

# --- Chromium (Debian's; playwright-core downloads no browser) ------------------------------
if [ ! -x "$CHROMIUM_BIN" ]; then
  step "apt-get install chromium"
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
      echo "compat: installing chromium failed" >&2
  else
    echo "compat: $CHROMIUM_BIN is missing and this is not root: apt-get install chromium" >&2
  fi
fi

# --- Herald ---------------------------------------------------------------------------------
if [ -z "${HERALD_BIN:-}" ]; then
  step "cargo build --bin herald"
  cargo build --quiet --bin herald || die "cargo build failed"
  export HERALD_BIN="$root/target/debug/herald"
elif [ ! -x "$HERALD_BIN" ]; then
  die "HERALD_BIN=$HERALD_BIN is not an executable file"
else
  HERALD_BIN="$(cd "$(dirname "$HERALD_BIN")" && pwd)/$(basename "$HERALD_BIN")"
  export HERALD_BIN
fi

# --- Certificates for the TLS tests (rcgen, through examples/tls-cert.rs) --------------------
# Two self-signed certificates, a and b (b is the renewal a test reloads), both trusted by
# every Node process through NODE_EXTRA_CA_CERTS, as a private CA is trusted in production.
tls_cert="$(dirname "$HERALD_BIN")/examples/tls-cert"
if [ ! -x "$tls_cert" ]; then
  step "cargo build --example tls-cert"
  cargo build --quiet --example tls-cert || die "cargo build --example tls-cert failed"
  tls_cert="$root/target/debug/examples/tls-cert"
fi
export COMPAT_TLS_DIR="$logs/tls"
rm -rf "$COMPAT_TLS_DIR"
"$tls_cert" "$COMPAT_TLS_DIR" a && "$tls_cert" "$COMPAT_TLS_DIR" b || die "tls-cert failed"
cat "$COMPAT_TLS_DIR/a.crt" "$COMPAT_TLS_DIR/b.crt" >"$COMPAT_TLS_DIR/trusted.pem"
export NODE_EXTRA_CA_CERTS="$COMPAT_TLS_DIR/trusted.pem"

total_passed=0
total_failed=0
add_counts() { # name passed failed
  printf '%s: %s passed, %s failed\n' "$1" "$2" "$3"
  total_passed=$((total_passed + $2))
  total_failed=$((total_failed + $3))
}

# Node's test runner (TAP): "# pass N", "# fail N", "# cancelled N".
run_node() { # name paths…
  local name="$1" log="$logs/$1.log"
  shift
  step "node --test $* ($name${COMPAT_CLUSTER:+, cluster of $COMPAT_CLUSTER})"
  (cd "$compat" && timeout 600 node --test --test-reporter=tap --test-timeout=120000 "$@") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f c
  p=$(grep -E '^# pass [0-9]+' "$log" | tail -n1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$log" | tail -n1 | awk '{print $3}')
  c=$(grep -E '^# cancelled [0-9]+' "$log" | tail -n1 | awk '{print $3}')
  p=${p:-0}
  f=$((${f:-0} + ${c:-0}))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or timed out without a count
  add_counts "$name" "$p" "$f"
}

run_python() { # name
  local name="$1" pylog="$logs/$1.log"
  step "pytest tests/compat/python (python SDK${COMPAT_CLUSTER:+, cluster of $COMPAT_CLUSTER})"
  PYTHONDONTWRITEBYTECODE=1 timeout 600 "$venv/bin/python" -m pytest tests/compat/python -p no:cacheprovider \
    -o console_output_style=classic -rfE 2>&1 | tee "$pylog"
  local rc=${PIPESTATUS[0]}
  local summary p f e
  summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$pylog" | tail -n1)
  p=$(grep -Eo '[0-9]+ passed' <<<"$summary" | awk '{print $1}')
  f=$(grep -Eo '[0-9]+ failed' <<<"$summary" | awk '{print $1}')
  e=$(grep -Eo '[0-9]+ errors?' <<<"$summary" | awk '{print $1}')
  p=${p:-0}
  f=$((${f:-0} + ${e:-0}))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  add_counts "$name" "$p" "$f"
}

run_browser() { # name
  if [ -x "$CHROMIUM_BIN" ]; then
    run_node "$1" browser/
  else
    echo "$1: $CHROMIUM_BIN is missing"
    add_counts "$1" 0 1
  fi
}

unset COMPAT_CLUSTER
run_node "compat-node" node/
run_python "compat-python"
run_browser "compat-browser"

# The same clients against three nodes: every WebSocket and REST connection goes to the next
# node, so each test's clients, backend calls and webhooks are spread over the cluster.
if command -v redis-server >/dev/null 2>&1; then
  export COMPAT_CLUSTER=3
  run_node "compat-node-cluster" node/echo.test.js node/rejections.test.js node/rest.test.js node/webhooks.test.js \
    node/socketio.test.js
  run_python "compat-python-cluster"
  run_browser "compat-browser-cluster"
  unset COMPAT_CLUSTER
else
  echo "compat-cluster: redis-server is missing (apt-get install redis-server)"
  add_counts "compat-cluster" 0 1
fi

echo
echo "compat: ${total_passed} passed, ${total_failed} failed"
[ "$total_failed" -eq 0 ]
