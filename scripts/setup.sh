#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with ci_helpers and its test tools.
# Idempotent: a second run only checks that everything is installed.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (fast installer) with pip" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  $UV venv --quiet --python "$PYTHON" .venv
fi
echo "==> installing ci_helpers (editable) with test and airflow extras into .venv" >&2
VIRTUAL_ENV="$PWD/.venv" $UV pip install --quiet --compile-bytecode -e '.[test,airflow]'

# Warm uv's cache with the actions' own dependency lock too, so the act-driven tests can build the
# actions' private venv offline (they run with loopback as the only network).
echo "==> warming the uv cache with actions/requirements.lock" >&2
UV_CACHE_DIR="$($UV cache dir)" MLOPS_HOME="$PWD/.cache/mlops-actions" \
  MLOPS_VENV="$PWD/.cache/mlops-actions/venv-prefill" bash actions/setup/setup.sh >/dev/null
