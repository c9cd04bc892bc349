#!/usr/bin/env bash
# Install gitlab-ci-local (npm), which tests/gitlab runs the GitLab CI/CD components with, into
# .cache/npm/gitlab-ci-local: the version and every dependency pinned, with integrity hashes, by
# tests/gitlab/gitlab-ci-local/package-lock.json (`npm ci`, no install scripts). Idempotent: when
# that exact lock is installed already it only says so (well under a second).
#
# Binary: .cache/npm/gitlab-ci-local/node_modules/.bin/gitlab-ci-local (the test looks there, or at
# $GITLAB_CI_LOCAL). Needs Node >= 18: 4.73.0 is the newest release that runs on Node 20 (4.74.0 and
# later call Set.prototype.union, Node 22). gitlab-ci-local also needs rsync (it copies the tracked
# files of the project before a pipeline); as root with apt-get, it is installed too.
# Without node or npm nothing is installed and the GitLab test is skipped, saying why.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SPEC=tests/gitlab/gitlab-ci-local
PREFIX=.cache/npm/gitlab-ci-local
BIN="$PREFIX/node_modules/.bin/gitlab-ci-local"
STAMP="$PREFIX/.installed-lock"

if ! command -v rsync >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing rsync (gitlab-ci-local needs it) with apt-get" >&2
    apt-get install -y -qq --no-install-recommends rsync >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends rsync >/dev/null; }
  else
    echo "warning: rsync is not installed; gitlab-ci-local needs it (apt-get install rsync)" >&2
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "warning: node/npm not found; gitlab-ci-local not installed, tests/gitlab will be skipped" >&2
  exit 0
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "warning: node $(node --version) is older than 18; gitlab-ci-local not installed, tests/gitlab will be skipped" >&2
  exit 0
fi

if [ -x "$BIN" ] && [ -f "$STAMP" ] && cmp -s "$STAMP" "$SPEC/package-lock.json"; then
  echo "==> gitlab-ci-local already installed in $PREFIX" >&2
  exit 0
fi

echo "==> installing gitlab-ci-local (pinned by $SPEC/package-lock.json) into $PREFIX" >&2
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
cp "$SPEC/package.json" "$SPEC/package-lock.json" "$PREFIX/"
(cd "$PREFIX" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
"$BIN" --version >/dev/null  # it runs on this node, or the install fails here
cp "$SPEC/package-lock.json" "$STAMP"
echo "==> gitlab-ci-local $("$BIN" --version) installed" >&2
