#!/usr/bin/env bash
# A venv of its own with MLflow 2.22 for the MLflow 2 tests (tests/mlflow2/): its `mlflow server` is
# the 2.x tracking server, and its Python runs the project's training script (MLflow 2 client,
# `log_model(artifact_path=...)`). SQLAlchemy stays below 2.1: MLflow 2.22's server does not start
# with 2.1. Idempotent and quick once installed.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="$PWD/.cache/venvs/mlflow2"
spec=("mlflow==2.22.*" "sqlalchemy<2.1" "boto3" "scikit-learn" "pandas" "pyyaml")
wanted="$(printf '%s\n' "${spec[@]}")"
if [ "$(cat "$venv/.installed" 2>/dev/null || true)" != "$wanted" ] || [ ! -x "$venv/bin/mlflow" ]; then
  echo "==> creating .cache/venvs/mlflow2 (MLflow 2.22 server and client)" >&2
  UV="$(command -v uv || echo "$PWD/.venv/bin/uv")"
  rm -rf "$venv"
  "$UV" venv --quiet --python "${PYTHON:-python3}" "$venv"
  VIRTUAL_ENV="$venv" "$UV" pip install --quiet "${spec[@]}"
  printf '%s' "$wanted" > "$venv/.installed"
fi
