#!/usr/bin/env bash
# On a vX.Y.Z tag, point vX and vX.Y at the same commit so users can pin `@v1` or `@v1.2`.
set -Eeuo pipefail
tag="${1:?usage: move-release-tags.sh vX.Y.Z}"
if ! [[ "$tag" =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
  echo "::error::'$tag' is not a vX.Y.Z release tag; nothing moved" >&2
  exit 2
fi
major="v${BASH_REMATCH[1]}" minor="v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
commit="$(git rev-parse "${tag}^{commit}")"
git tag -f "$major" "$commit"
git tag -f "$minor" "$commit"
# Floating tags move by design, so these two (and only these) are force-pushed.
git push --force origin "refs/tags/${major}" "refs/tags/${minor}"
echo "moved ${major} and ${minor} to ${tag} (${commit})"
