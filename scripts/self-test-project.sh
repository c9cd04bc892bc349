#!/usr/bin/env bash
# For .github/workflows/self-test.yml: start a moto S3 server and an MLflow server on loopback (in
# the background, for the rest of the job), build the example project with a bare origin and PR
# branches, and print step outputs: good, bad, main (CI-style checkouts) and tracking-uri.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m tests.support.self_test_project
