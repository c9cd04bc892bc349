#!/usr/bin/env bash
# Install ci_helpers from this checkout into a private virtual environment with uv.
# The caller's Python environment (the one their dvc.yaml stage commands use) is left as it is:
# nothing is installed into it and nothing is put on PATH. Prints `bin=<ci-helpers path>`.
# Env: MLOPS_VENV (target venv, from key.sh), MLOPS_HOME (uv cache and uv itself live there).
set -Eeuo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${MLOPS_VENV:?MLOPS_VENV is required (see key.sh)}"
home="${MLOPS_HOME:?MLOPS_HOME is required (see key.sh)}"
export UV_CACHE_DIR="${UV_CACHE_DIR:-${home}/uv-cache}"

if [ -f "${venv}/.complete" ] && [ -x "${venv}/bin/ci-helpers" ]; then
  echo "ci_helpers: reusing ${venv}" >&2
else
  python=""
  for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      python="$(command -v "$candidate")"; break
    fi
  done
  if [ -z "$python" ]; then
    echo "::error title=mlops-actions::no Python >= 3.10 on PATH; add actions/setup-python (any version >= 3.10) before this action"
    exit 2
  fi
  uv="$(command -v uv || true)"
  if [ -z "$uv" ]; then
    if [ ! -x "${home}/uv-bootstrap/bin/uv" ]; then
      echo "ci_helpers: bootstrapping uv into ${home}/uv-bootstrap" >&2
      "$python" -m venv "${home}/uv-bootstrap"
      "${home}/uv-bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check uv
    fi
    uv="${home}/uv-bootstrap/bin/uv"
  fi
  echo "ci_helpers: installing into ${venv} with ${uv} (${python})" >&2
  rm -rf "$venv"
  "$uv" venv --quiet --python "$python" "$venv"
  "$uv" pip install --quiet --python "${venv}/bin/python" -r "${root}/actions/requirements.lock"
  touch "${venv}/.complete"
fi
# ci_helpers itself is pure Python: point the venv at this checkout (no wheel build, ~2 s saved).
# Rewritten on every run, so a restored venv always runs this checkout's code.
site="$("${venv}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n' "$root" > "${site}/mlops_actions_checkout.pth"
printf '#!/bin/sh\nexec "%s" -m ci_helpers "$@"\n' "${venv}/bin/python" > "${venv}/bin/ci-helpers"
chmod +x "${venv}/bin/ci-helpers"
echo "bin=${venv}/bin/ci-helpers" >> "${GITHUB_OUTPUT:-/dev/stdout}"
