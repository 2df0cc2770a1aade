#!/usr/bin/env bash
# Runs every check and test of the repository; the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

step "protocol/ stays pure"
if grep -rnE '\b(tokio|actix|actix_web|actix_ws|dashmap|redis|reqwest)::' src/protocol; then
  echo "src/protocol must not use IO/runtime crates" >&2
  exit 1
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# `--all-features` includes the load generator (feature `bench`) and its smoke test.
step "cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo test"
cargo test --all-targets --all-features 2>&1 | tee /tmp/herald-cargo-test.log
passed=$(grep -Eo '[0-9]+ passed' /tmp/herald-cargo-test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' /tmp/herald-cargo-test.log | awk '{s+=$1} END {print s+0}')
echo
echo "rust: ${passed} passed, ${failed} failed"

step "helm chart: lint, render, Kubernetes schemas, herald check-config (tests/helm)"
HERALD_BIN=target/debug/herald bash tests/helm/run.sh 2>&1 | tee /tmp/herald-helm-test.log
helm_passed=$( { grep -Eo '[0-9]+ passed' /tmp/herald-helm-test.log || true; } | tail -n1 | awk '{print $1+0}')
helm_failed=$( { grep -Eo '[0-9]+ failed' /tmp/herald-helm-test.log || true; } | tail -n1 | awk '{print $1+0}')
echo
echo "helm: ${helm_passed:-0} passed, ${helm_failed:-0} failed"

step "compatibility: pusher-js, Laravel Echo, pusher SDKs (Node, Python), Chromium (tests/compat)"
compat_rc=0
HERALD_BIN=target/debug/herald bash tests/compat/run.sh 2>&1 | tee /tmp/herald-compat-test.log || compat_rc=$?
compat_line=$( { grep -E '^compat: [0-9]+ passed, [0-9]+ failed$' /tmp/herald-compat-test.log || true; } | tail -n1)
compat_passed=$(awk '{print $2+0}' <<<"${compat_line:-compat: 0 passed, 0 failed}")
compat_failed=$(awk '{print $4+0}' <<<"${compat_line:-compat: 0 passed, 0 failed}")
if [ "$compat_rc" -ne 0 ] && [ "$compat_failed" -eq 0 ]; then compat_failed=1; fi
echo
echo "total: $((passed + ${helm_passed:-0} + compat_passed)) passed, $((failed + ${helm_failed:-0} + compat_failed)) failed"
[ "$compat_rc" -eq 0 ]
