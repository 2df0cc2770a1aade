# Shell helpers the bench scripts share (sourced, not run).

# Stops one process by its PID: SIGTERM, then SIGKILL after 10 s. An empty PID is a no-op.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
