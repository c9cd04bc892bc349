#!/usr/bin/env bash
# Regenerate the actions' hashed dependency locks from pyproject.toml. Run it after changing a
# dependency there (tests/lint/test_actions_lock.py fails until you do):
#
#   bash scripts/lock-actions.sh            resolve against the package index, rewrite the locks
#   bash scripts/lock-actions.sh --upgrade  the same, moving every pin to the newest release allowed
#   bash scripts/lock-actions.sh --check    resolve offline from uv's cache into a temp file and
#                                           exit 1 with a diff if a lock differs (the drift test),
#                                           3 if uv's cache lacks what the resolution reads
#   bash scripts/lock-actions.sh --warm     resolve online into a temp file, only to fill uv's cache
#                                           for --check (scripts/setup.sh runs it when needed)
#
# Writes actions/requirements.lock (the private venv's packages) and actions/setup/uv-bootstrap.lock
# (the uv that actions/setup/setup.sh installs when the runner has none). Pins already in a lock are
# kept unless pyproject.toml rules them out (uv prefers the versions in its output file), so a check
# a week later resolves to the same file. The uv is .venv's, pinned in pyproject.toml's test extra.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=write
uv_args=()
for arg in "$@"; do
  case "$arg" in
    --check) mode=check ;;
    --warm) mode=warm ;;
    --upgrade) uv_args+=(--upgrade) ;;
    *) echo "usage: bash scripts/lock-actions.sh [--check | --warm | --upgrade]" >&2; exit 2 ;;
  esac
done
[ "$mode" = check ] && uv_args+=(--offline)
uv="${UV:-}"
if [ -z "$uv" ]; then
  if [ -x .venv/bin/uv ]; then uv=.venv/bin/uv; else uv="$(command -v uv)"; fi
fi
python="${PYTHON:-python3}"
read -r -a remotes <<< "$("$python" actions/setup/key.py --list-remotes)"
extras=()
for remote in "${remotes[@]}"; do extras+=(--extra "$remote"); done

preamble() {  # $1: the lock
  if [ "$1" = actions/setup/uv-bootstrap.lock ]; then
    cat <<'EOF'
# The uv that actions/setup/setup.sh installs (pip --require-hashes) when the runner has none new
# enough: the uv this file was generated with, pinned in pyproject.toml's test extra, hashed for
# every platform. Do not edit it: run `bash scripts/lock-actions.sh`.
#
EOF
    return
  fi
  cat <<'EOF'
# The actions' dependency lock: every package the private ci_helpers venv may hold, pinned and
# hashed for Linux and macOS on Python >= 3.10, resolved at once from pyproject.toml's dependencies
# and all of its DVC remote extras. Do not edit it: run `bash scripts/lock-actions.sh`.
#
# Why this form: `uv pip compile --universal --generate-hashes` writes a plain requirements file
# that any uv (or pip) reads, with the hashes of every wheel of each pin. actions/setup/setup.sh
# installs pyproject.toml's requirements, plus the picked remote extras, with this file as
# constraints and --require-hashes: one resolution serves every dvc-remotes selection, and a file
# that is not pinned and hashed here is refused. (uv.lock would need `uv export` and the whole
# project, test and airflow extras included, in the actions' cache key.)
#
EOF
}

# $1: the lock to (re)write, $2: where its new text goes; the rest: what to resolve
compile_into() {
  local lock="$1" out="$2"
  shift 2
  local work
  work="$(mktemp)"
  cp "$lock" "$work" 2>/dev/null || true  # its pins are the preferred versions
  if ! "$uv" pip compile --quiet --no-config --universal --python-version 3.10 --generate-hashes \
      --custom-compile-command "bash scripts/lock-actions.sh" "${uv_args[@]}" "$@" -o "$work"; then
    rm -f "$work"
    [ "$mode" = check ] && echo "$lock: uv could not resolve offline; fill its cache with bash scripts/lock-actions.sh --warm (scripts/setup.sh does)" >&2
    return 3
  fi
  { preamble "$lock"; cat "$work"; } > "$out"  # uv rewrote the whole file: its own header, then the pins
  rm -f "$work"
}

uv_version="$("$uv" --version | awk '{print $2}')"
status=0
for lock in actions/requirements.lock actions/setup/uv-bootstrap.lock; do
  target="$lock"
  [ "$mode" = write ] || target="$(mktemp)"
  code=0
  if [ "$lock" = actions/requirements.lock ]; then
    compile_into "$lock" "$target" pyproject.toml "${extras[@]}" || code=$?
  else
    compile_into "$lock" "$target" - <<< "uv==${uv_version}" || code=$?
  fi
  if [ "$code" != 0 ]; then
    status="$code"
  elif [ "$mode" = warm ]; then
    rm -f "$target"
  elif [ "$mode" = check ]; then
    if ! diff -u "$lock" "$target" > "$target.diff"; then
      head -n 60 "$target.diff" >&2
      echo "$lock does not match pyproject.toml (or the uv in use, $uv_version): run bash scripts/lock-actions.sh" >&2
      status=1
    fi
    rm -f "$target" "$target.diff"
  else
    echo "wrote $lock" >&2
  fi
done
exit "$status"
