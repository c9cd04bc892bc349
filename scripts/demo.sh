#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults (no server needed):
#   a local-folder DVC remote and MLflow on sqlite:///mlflow.db.
# 1. builds the example project's main branch (dvc repro, dvc push, git push to a bare origin);
# 2. opens a "pull request": a branch that retrains with other params, pushed the same way;
# 3. runs `ci-helpers pr-validate` on a fresh CI-style clone of that branch;
# 4. merges it, then runs `ci-helpers master-build` on a fresh clone of main: forced rebuild,
#    push, dvc.lock commit-back, registration, alias; and prints the registered model's URI.
# Everything lands in ./demo-output (recreated on each run).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
bash scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true AWS_EC2_METADATA_DISABLED=true
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-Demo Dev}" GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-dev@example.invalid}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-Demo Dev}" GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-dev@example.invalid}"
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID

OUT="$ROOT/demo-output"
rm -rf "$OUT" && mkdir -p "$OUT"
DEV="$OUT/dev" ORIGIN="$OUT/housing.git" STORE="$OUT/dvc-store" CI="$OUT/ci-pr" CI_MAIN="$OUT/ci-main"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "developer: build main of examples/housing (dvc repro) and push it"
git init -q --bare -b main "$ORIGIN"
cp -r examples/housing "$DEV"
cd "$DEV"
git init -q -b main && dvc init -q
dvc remote add -q -d store "$STORE"
MLFLOW_TRACKING_URI="sqlite:///$OUT/dev-mlflow.db" dvc repro
git add -A && git commit -qm "housing model" && git remote add origin "$ORIGIN" && git push -q -u origin main
dvc push

step "developer: open a pull request that retrains with 90 trees"
git checkout -q -b feature/more-trees
sed -i 's/^  n_estimators: .*/  n_estimators: 90/' params.yaml
MLFLOW_TRACKING_URI="sqlite:///$OUT/dev-mlflow.db" dvc repro
git commit -qam "Retrain with 90 trees" && git push -q origin feature/more-trees
dvc push

step "CI: fresh clone of the PR branch, then ci-helpers pr-validate"
git clone -q --branch feature/more-trees "$ORIGIN" "$CI"
cd "$CI"
ci-helpers pr-validate --pr 1 --report-json "$OUT/pr-report.json" || {
  step "pr-validate failed; report: $OUT/pr-report.json"; exit 1; }

step "developer: merge the pull request into main"
cd "$DEV"
git checkout -q main && git merge -q --ff-only feature/more-trees && git push -q origin main

step "CI on main: ci-helpers master-build (forced rebuild, push, dvc.lock commit-back, registration)"
git clone -q --branch main "$ORIGIN" "$CI_MAIN"
cd "$CI_MAIN"
ci-helpers master-build --model-name housing --alias staging --report-json "$OUT/build-report.json"

python3 - "$OUT/build-report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"\nregistered model: {report['model']['uri']}")
print(f"alias:            {report['alias']['uri']} -> version {report['alias']['version']}")
print(f"dvc.lock:         {report['lock']['status']} ({report['lock']['commit']})")
print(f"MLflow:           {report['mlflow']['tracking_uri']} run {report['mlflow']['run_id']}")
PY
