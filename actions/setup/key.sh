#!/usr/bin/env bash
# Print the cache key and folder of the private ci_helpers environment, as step outputs.
# The key is the dependency lock: the helper's own source is not installed, only pointed at (setup.sh).
set -Eeuo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
hash="$(cat "$root/actions/requirements.lock" | sha256sum | cut -c1-16)"
home="${MLOPS_ACTIONS_HOME:-${RUNNER_TOOL_CACHE:-${HOME}/.cache}/mlops-actions}"
{
  echo "key=mlops-actions-${RUNNER_OS:-Linux}-${hash}"
  echo "home=${home}"
  echo "venv=${home}/venv-${hash}"
} >> "${GITHUB_OUTPUT:-/dev/stdout}"
