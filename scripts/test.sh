#!/usr/bin/env bash
# Set up, then run the whole test suite: unit, CLI and integration (real dvc, git, moto S3 and
# MLflow servers on 127.0.0.1). Extra arguments go to pytest.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true ACT_DISABLE_VERSION_CHECK=1
export AWS_EC2_METADATA_DISABLED=true NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export PATH="$PWD/.venv/bin:$PATH"

# Two xdist workers, each with its own moto and MLflow servers on free ports, each module whole on
# one worker (`--dist loadfile`, in pyproject.toml's addopts). `-n 0` among the extra arguments
# runs serially.
pytest_cmd=(.venv/bin/python -m pytest -p no:cacheprovider -n 2 --durations=15 "$@")
# As root with unshare available, run with loopback as the only network, so anything that tries
# to leave the machine fails loudly instead of leaking.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null \
   && unshare -n true 2>/dev/null; then
  echo "==> running the tests with loopback as the only network (unshare -n)" >&2
  exec unshare -n bash -c 'ip link set lo up && exec "$@"' _ "${pytest_cmd[@]}"
fi
exec "${pytest_cmd[@]}"
