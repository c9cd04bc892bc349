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

# Warm uv's cache for the offline tests (they run with loopback as the only network):
# - with what the lock's drift test resolves (tests/lint/test_actions_lock.py), when it lacks it;
# - with the actions' own venv, which the act-driven tests build offline: built here once through the
#   actions' own set-up scripts, and reused while the lock and the interpreter stay the same.
echo "==> warming the uv cache for the actions' lock and venv" >&2
mkdir -p .cache/mlops-actions
inputs_hash="$(cat pyproject.toml actions/requirements.lock actions/setup/uv-bootstrap.lock | \
  "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat .cache/mlops-actions/lock-checked 2>/dev/null || true)" != "$inputs_hash" ]; then
  if bash scripts/lock-actions.sh --check >/dev/null 2>&1 || \
     bash scripts/lock-actions.sh --warm; then  # a lock that does not match is the drift test's to report
    echo "$inputs_hash" > .cache/mlops-actions/lock-checked
  fi
fi
rm -rf .cache/mlops-actions/venv-prefill  # the venv of the previous set-up scripts
outputs="$(MLOPS_ACTIONS_HOME="$PWD/.cache/mlops-actions" GITHUB_OUTPUT=/dev/stdout bash actions/setup/key.sh 2>/dev/null)"
output() { sed -n "s/^$1=//p" <<< "$outputs"; }
MLOPS_VENV="$(output venv)" MLOPS_KEY="$(output key)" MLOPS_PYTHON="$(output python)" MLOPS_EXTRAS="$(output extras)" \
  UV_CACHE_DIR="$($UV cache dir)" GITHUB_OUTPUT=/dev/null bash actions/setup/setup.sh

# The tests' other real tools: gitlab-ci-local (runs the GitLab components, tests/gitlab),
# mermaid-cli on Debian's Chromium (renders the reports' Mermaid charts), the DVC remote servers
# (sshd, Azurite), MLflow 2.22 in a venv of its own (tests/mlflow2) and the oldest DVC 3 release the suite runs
# (tests/dvc_oldest), and the CeleryExecutor deployment's redis, postgres and Celery provider (tests/airflow_celery).
bash scripts/setup-gitlab-ci-local.sh
bash scripts/setup-mermaid.sh
bash scripts/setup-remote-servers.sh
bash scripts/setup-mlflow2.sh
bash scripts/setup-oldest-dvc.sh
bash scripts/setup-airflow-celery.sh
