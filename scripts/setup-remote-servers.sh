#!/usr/bin/env bash
# Install the DVC remote servers the remote matrix (tests/remotes/) starts on 127.0.0.1:
# - SSH: Debian's openssh-server (a real sshd; the tests run it with a config and host key of their own);
# - Azure Blob: Azurite, Microsoft's emulator, pinned, from the npm registry into .cache/azurite.
# WebDAV (wsgidav) and GCS (gcp-storage-emulator) come from PyPI with the test extra.
# Idempotent and quick once installed. Exits 0 when something cannot be installed here (no root, no
# npm): the matching test module is then skipped with the reason.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

AZURITE_VERSION=3.37.0
prefix="$PWD/.cache/azurite"

if [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's openssh-server (the SSH remote's server)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq openssh-server >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq openssh-server >/dev/null; }
  else
    echo "==> no sshd and no root to install it: the SSH remote tests will be skipped" >&2
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "==> no npm: the Azure remote tests will be skipped" >&2
  exit 0
fi
installed="$(cat "$prefix/.installed" 2>/dev/null || true)"
if [ "$installed" != "$AZURITE_VERSION" ] || [ ! -x "$prefix/node_modules/.bin/azurite-blob" ]; then
  echo "==> installing azurite@${AZURITE_VERSION} into .cache/azurite" >&2
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "azurite@${AZURITE_VERSION}" >/dev/null
  printf '%s' "$AZURITE_VERSION" > "$prefix/.installed"
fi
