#!/usr/bin/env bash
# Install a real Mermaid renderer for the report tests (tests/integration/test_mermaid_render.py):
# @mermaid-js/mermaid-cli (pinned) from the npm registry into .cache/mermaid, driving Debian's
# Chromium (puppeteer's own browser download cannot run here). Idempotent and quick once installed.
# Prints nothing on success; the test finds mmdc at .cache/mermaid/node_modules/.bin/mmdc.
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MERMAID_CLI_VERSION=11.17.0
prefix="$PWD/.cache/mermaid"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium (the browser mermaid-cli renders with)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "==> no chromium and no root to install it: the Mermaid render test will be skipped" >&2
    exit 0
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "==> no npm: the Mermaid render test will be skipped" >&2
  exit 0
fi
installed="$(cat "$prefix/.installed" 2>/dev/null || true)"
if [ "$installed" != "$MERMAID_CLI_VERSION" ] || [ ! -x "$prefix/node_modules/.bin/mmdc" ]; then
  echo "==> installing @mermaid-js/mermaid-cli@${MERMAID_CLI_VERSION} into .cache/mermaid" >&2
  mkdir -p "$prefix"
  PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix "$prefix" \
    "@mermaid-js/mermaid-cli@${MERMAID_CLI_VERSION}" >/dev/null
  printf '%s' "$MERMAID_CLI_VERSION" > "$prefix/.installed"
fi
