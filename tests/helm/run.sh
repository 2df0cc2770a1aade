#!/usr/bin/env bash
# Checks the Helm chart in helm/herald without a cluster or a helm binary: lint and render
# through Helm's own Go library (helm-python-sdk), validate every manifest against the
# Kubernetes schemas, run `herald check-config` on the rendered herald.toml, and assert the
# chart's operational properties. Extra arguments go to pytest.
#
# Environment: HERALD_BIN (the herald binary to use; unset: `cargo build` and use
# target/debug/herald), HELM_TEST_VENV (default .venv-helm), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv="${HELM_TEST_VENV:-.venv-helm}"
python="${PYTHON:-python3}"
requirements="tests/helm/requirements.txt"

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian without python3-venv has no ensurepip: make a bare venv and let the system pip
    # install into it (pip >= 22.3 --python).
    rm -rf "$venv"
    "$python" -m venv --without-pip "$venv"
  fi
fi

if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  pip=("$venv/bin/python" -m pip)
else
  pip=("$python" -m pip --python "$venv/bin/python")
fi

# Reinstall only when the pinned requirements change.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "== installing $requirements into $venv"
  "${pip[@]}" install --disable-pip-version-check --quiet --requirement "$requirements"
  echo "$want" >"$stamp"
fi

# The binary that checks the rendered herald.toml: HERALD_BIN as given, else a fresh debug
# build (a no-op when target/debug/herald is up to date).
if [ -z "${HERALD_BIN:-}" ]; then
  echo "== cargo build --bin herald"
  cargo build --quiet --bin herald
  export HERALD_BIN=target/debug/herald
elif [ ! -x "$HERALD_BIN" ]; then
  echo "HERALD_BIN=$HERALD_BIN is not an executable file (build it with cargo build)" >&2
  exit 1
fi

export PYTHONDONTWRITEBYTECODE=1
echo "== pytest tests/helm"
exec "$venv/bin/python" -m pytest tests/helm -p no:cacheprovider "$@"
