#!/usr/bin/env bash
# Reuse the private ci_helpers venv that actions/cache restored if it still runs, else build it with
# uv from actions/requirements.lock; then point it at this checkout. The caller's Python environment
# (the one their dvc.yaml stage commands use) is left as it is: nothing is installed into it and
# nothing is put on PATH. Prints `bin=<ci-helpers path>` as a step output.
# Env, from key.py's step outputs: MLOPS_VENV, MLOPS_KEY, MLOPS_PYTHON, MLOPS_EXTRAS (s3,gs,...).
# uv's own cache is not kept between runs (only the venv is): UV_CACHE_DIR, if set, is respected.
set -Eeuo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${MLOPS_VENV:?MLOPS_VENV is required (the venv output of key.py)}"
key="${MLOPS_KEY:?MLOPS_KEY is required (the key output of key.py)}"
python="${MLOPS_PYTHON:?MLOPS_PYTHON is required (the python output of key.py)}"
extras="${MLOPS_EXTRAS:-s3}"
stamp="${venv}/.mlops-actions-key"  # written last: a venv without it is a build that did not finish
# DVC's plugin for each remote type picked (dvc[ssh] brings dvc_ssh...): a venv without one cannot
# reach that remote, whatever else it holds.
plugins=""
for name in ${extras//,/ }; do plugins+="\"dvc_${name}\", "; done
# A venv runs ci_helpers if these load: compiled extensions (they break when the interpreter under
# the venv changed) and the main dependencies, found without importing them (that takes seconds).
check='import yaml, pydantic_core, _ruamel_yaml
from importlib.util import find_spec
names = ("click", "dvc", "mlflow", "sqlalchemy", "alembic", "stamina", "github_action_utils", '"${plugins}"')
missing = [name for name in names if find_spec(name) is None]
if missing:
    raise SystemExit("missing: " + ", ".join(missing))'

# Why the venv in $venv cannot be reused; empty when it can, or when there is none.
venv_problem() {
  local out
  if [ ! -e "$venv" ]; then
    return
  elif [ -L "${venv}/bin/python" ] && [ ! -e "${venv}/bin/python" ]; then
    echo "its interpreter $(readlink "${venv}/bin/python") no longer exists"
  elif [ "$(cat "$stamp" 2>/dev/null || true)" != "$key" ]; then
    echo "its set-up did not finish"
  elif ! out="$("${venv}/bin/python" -c "$check" 2>&1)"; then
    echo "its Python cannot load the dependencies of ci_helpers (${out##*$'\n'})"
  fi
}

uv_new_enough() {  # uv >= 0.5: hashes in constraints files (0.4.6) and --no-config
  local version major minor
  version="$("$1" --version 2>/dev/null | awk '{print $2}')" || return 1
  IFS=. read -r major minor _ <<< "$version"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] && { [ "$major" -gt 0 ] || [ "$minor" -ge 5 ]; }
}

# Sets uv: the runner's uv if new enough, else the pinned one (uv-bootstrap.lock), installed with pip.
find_uv() {
  local pinned dir
  uv="$(command -v uv || true)"
  if [ -n "$uv" ] && uv_new_enough "$uv"; then
    return
  fi
  pinned="$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' "${here}/uv-bootstrap.lock")"
  dir="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlops-actions-uv-${pinned}"
  uv="${dir}/bin/uv"
  [ -x "$uv" ] && return
  if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "::error title=mlops-actions::no uv >= 0.5 on PATH, and ${python} has no pip to install it with; add astral-sh/setup-uv, or actions/setup-python, before this action"
    return 2
  fi
  echo "ci_helpers: installing uv ${pinned} into ${dir} (no uv >= 0.5 on PATH)" >&2
  rm -rf "${dir}.partial"
  if ! "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
      --target "${dir}.partial" --require-hashes -r "${here}/uv-bootstrap.lock" >&2; then
    echo "::error title=mlops-actions::pip could not install uv ${pinned} (is the package index reachable?)"
    return 3
  fi
  rm -rf "$dir"
  mv "${dir}.partial" "$dir"
}

build_venv() {
  local status=0 out
  local -a extra_args=() names=()
  find_uv || return $?
  IFS=', ' read -r -a names <<< "$extras"
  for name in "${names[@]}"; do extra_args+=(--extra "$name"); done
  echo "ci_helpers: building the venv in ${venv} with ${uv} from ${python} (DVC remotes: ${extras})" >&2
  rm -rf "$venv"
  export UV_PYTHON_DOWNLOADS=never  # build from the interpreter the key names, never a downloaded one
  # --no-config: the caller's uv.toml or [tool.uv] (the working directory is their project) does
  # not apply to our venv; UV_* variables (an index mirror, say) still do.
  "$uv" venv --no-config --quiet --python "$python" "$venv" || status=$?
  if [ "$status" = 0 ]; then
    "$uv" pip install --no-config --quiet --python "${venv}/bin/python" --require-hashes \
      -c "${root}/actions/requirements.lock" -r "${root}/pyproject.toml" "${extra_args[@]}" || status=$?
  fi
  if [ "$status" != 0 ]; then
    echo "::error title=mlops-actions::installing ci_helpers' dependencies with uv failed (exit ${status}; see above); is the package index reachable?"
    return 3
  fi
  if ! out="$("${venv}/bin/python" -c "$check" 2>&1)"; then
    echo "::error title=mlops-actions::the venv just built in ${venv} cannot load ci_helpers' dependencies: ${out}"
    return 70
  fi
  printf '%s\n' "$key" > "$stamp"
}

problem="$(venv_problem)"
if [ -e "$venv" ] && [ -z "$problem" ]; then
  echo "ci_helpers: reusing the venv in ${venv}" >&2
else
  if [ -n "$problem" ]; then
    echo "ci_helpers: the venv in ${venv} is dead: ${problem}; rebuilding it" >&2
  fi
  build_venv || exit $?
fi
# ci_helpers itself is pure Python: point the venv at this checkout (no wheel build, ~2 s saved).
# Rewritten on every run, so a restored venv always runs this checkout's code.
site="$("${venv}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n' "$root" > "${site}/mlops_actions_checkout.pth"
# The distribution's metadata as an install records it (`ci-helpers --version` reads it through
# importlib.metadata); the version is pyproject.toml's, the one place it is written.
version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "${root}/pyproject.toml")"
rm -rf "${site}"/mlops_actions-*.dist-info
mkdir "${site}/mlops_actions-${version}.dist-info"
printf 'Metadata-Version: 2.1\nName: mlops-actions\nVersion: %s\n' "$version" \
  > "${site}/mlops_actions-${version}.dist-info/METADATA"
printf '#!/bin/sh\nexec "%s" -m ci_helpers "$@"\n' "${venv}/bin/python" > "${venv}/bin/ci-helpers"
chmod +x "${venv}/bin/ci-helpers"
echo "bin=${venv}/bin/ci-helpers" >> "${GITHUB_OUTPUT:-/dev/stdout}"
