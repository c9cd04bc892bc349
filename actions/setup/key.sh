#!/usr/bin/env bash
# Refuse Windows, pick the Python (>= 3.10) that the private ci_helpers venv is built from, and let
# it print the venv's cache key, folder and interpreter as step outputs (key.py says what the key holds).
# Env: MLOPS_DVC_REMOTES (the dvc-remotes input), MLOPS_ACTIONS_HOME (optional: where venvs live).
set -Eeuo pipefail
if [ "${RUNNER_OS:-}" = Windows ]; then
  # before anything else: a Windows runner has no python3 and no bin/ in a venv
  echo "::error title=mlops-actions::Windows runners are not supported (Linux and macOS are): run this job on ubuntu-latest or macos-latest"
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for candidate in python3 python3.14 python3.13 python3.12 python3.11 python3.10; do
  if command -v "$candidate" >/dev/null 2>&1 && \
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    exec "$candidate" "$here/key.py"
  fi
done
echo "::error title=mlops-actions::no Python >= 3.10 on PATH; add actions/setup-python (any version >= 3.10) before this action"
exit 2
