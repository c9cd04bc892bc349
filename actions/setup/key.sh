#!/usr/bin/env bash
# Print the cache key and folder of the private ci_helpers environment, as step outputs.
# The key covers the dependency lock and the helper's own source, so any change reinstalls.
set -Eeuo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
hash="$(cat "$root/actions/requirements.lock" "$root/pyproject.toml" "$root"/ci_helpers/*.py | sha256sum | cut -c1-16)"
home="${MLOPS_ACTIONS_HOME:-${RUNNER_TOOL_CACHE:-${HOME}/.cache}/mlops-actions}"
{
  echo "key=mlops-actions-${RUNNER_OS:-Linux}-${hash}"
  echo "home=${home}"
  echo "venv=${home}/venv-${hash}"
} >> "${GITHUB_OUTPUT:-/dev/stdout}"
