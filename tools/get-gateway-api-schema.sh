#!/usr/bin/env bash
# Install the Gateway API's schemas as validators to .tools/gateway-api (idempotent).
#
# The npm package @kubernetes-models/gateway-api is generated from the Gateway API's own Go
# types (the source its CRDs are generated from too) and ships one compiled JSON-schema
# validator per type; tests/support/gateway_api.py runs the HTTPRoute one with node. Only the
# npm registry is needed; --ignore-scripts: no install scripts run.
#
# Usage: tools/get-gateway-api-schema.sh [DEST]   (DEST defaults to .tools/gateway-api)
# Env:   GATEWAY_API_NPM_PACKAGE to pin another package version.
set -euo pipefail

PACKAGE="${GATEWAY_API_NPM_PACKAGE:-@kubernetes-models/gateway-api@2.0.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.tools/gateway-api}"
MARKER="$DEST/node_modules/@kubernetes-models/gateway-api/package.json"

if [ -f "$MARKER" ]; then
    echo "Gateway API schemas already installed: $DEST"
    exit 0
fi
for tool in npm node; do
    command -v "$tool" >/dev/null || { echo "get-gateway-api-schema: '$tool' is required" >&2; exit 1; }
done
WORK="$(mktemp -d "${DEST%/*}/.gateway-api.XXXXXX" 2>/dev/null || mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo '{"private": true}' > "$WORK/package.json"
(cd "$WORK" && npm install --silent --no-audit --no-fund --ignore-scripts "$PACKAGE" >/dev/null)
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$WORK" "$DEST"  # whole or not at all
trap - EXIT
echo "Gateway API schemas installed: $DEST"
