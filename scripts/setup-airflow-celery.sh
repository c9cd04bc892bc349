#!/usr/bin/env bash
# Install what the CeleryExecutor tests (tests/airflow_celery/) start on 127.0.0.1:
# - Debian's redis-server (the Celery broker) and postgresql (the metadata DB and result backend);
# - into .venv: Airflow's Celery provider, celery<5.7 (dvc pulls in celery 5.7.0, whose import by the
#   provider crashes the workers; dvc itself works with 5.6) and the postgres drivers (psycopg2 for
#   Airflow's and Celery's engines, asyncpg for Airflow's async engine).
# Pinned, so that a second run installs nothing and the offline tests see the same versions.
# Idempotent and quick once installed. Exits 0 when the Debian packages cannot be installed here (no
# root, no apt-get): the Celery tests are then skipped with the reason.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CELERY_PROVIDER=apache-airflow-providers-celery==3.26.0
CELERY=celery==5.6.3
PSYCOPG2=psycopg2-binary==2.9.13
ASYNCPG=asyncpg==0.32.0

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's ${missing[*]} (the Celery tests' broker and metadata DB)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  else
    echo "==> no ${missing[*]} and no root to install them: the Celery tests will be skipped" >&2
  fi
fi

UV="$(command -v uv || echo "${PYTHON:-python3} -m uv")"
echo "==> checking (installing when missing) $CELERY_PROVIDER $CELERY $PSYCOPG2 $ASYNCPG in .venv" >&2
# all pinned and once installed, uv checks them against .venv without asking the index
VIRTUAL_ENV="$PWD/.venv" $UV pip install --quiet --compile-bytecode "$CELERY_PROVIDER" "$CELERY" "$PSYCOPG2" "$ASYNCPG"
