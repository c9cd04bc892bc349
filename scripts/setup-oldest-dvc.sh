#!/usr/bin/env bash
# A venv of its own with the oldest DVC 3 release the suite runs (tests/dvc_oldest/): its `dvc` and
# `ci-helpers` run pr-validate and master-build, so the README's DVC floor is a tested fact. The
# resolver picks the dvc-data, dvc-objects and dvc-s3 that this DVC accepts; pathspec stays below 1.0,
# which DVC before 3.66 does not declare but needs (dvc/ignore.py imports a name pathspec 1.0 removed;
# DVC 3.66 pinned pathspec<1 itself, 3.67 reads both). ci_helpers is installed
# for its `ci-helpers` script and its dependencies; the test puts the checkout under test first on
# PYTHONPATH, so the code that runs is that checkout's, not this copy. Idempotent and quick once
# installed (it rebuilds when the pin or pyproject.toml's dependencies change).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

oldest_dvc="3.50.0"  # the README's DVC row names this release; tests/lint/test_supported_setups.py checks
venv="$PWD/.cache/venvs/dvc-oldest"
spec=("dvc[s3]==$oldest_dvc" "pathspec<1" ".")
wanted="$(printf '%s\n' "${spec[@]}" "$(sha256sum pyproject.toml | cut -d' ' -f1)")"
if [ "$(cat "$venv/.installed" 2>/dev/null || true)" != "$wanted" ] || [ ! -x "$venv/bin/ci-helpers" ]; then
  echo "==> creating .cache/venvs/dvc-oldest (DVC $oldest_dvc and ci_helpers)" >&2
  UV="$(command -v uv || echo "$PWD/.venv/bin/uv")"
  rm -rf "$venv"
  "$UV" venv --quiet --python "${PYTHON:-python3}" "$venv"
  VIRTUAL_ENV="$venv" "$UV" pip install --quiet "${spec[@]}"
  printf '%s' "$wanted" > "$venv/.installed"
fi
