#!/usr/bin/env bash
# Install checkov into its own venv, .tools/checkov-venv (idempotent), from
# requirements/checkov.txt: its pins (packaging<24, networkx<3) clash with the project's venv.
# Once installed it runs offline: no API key, nothing downloaded (tests run it without network).
#
# Usage: tools/get-checkov.sh   (PYTHON picks the interpreter, default python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/checkov-venv"
REQUIREMENTS="$ROOT/requirements/checkov.txt"
WANTED="$(grep -E '^checkov==' "$REQUIREMENTS" | cut -d= -f3)"

if [ -x "$VENV/bin/checkov" ] && [ "$("$VENV/bin/checkov" --version 2>/dev/null)" = "$WANTED" ]; then
    echo "checkov already installed: $VENV/bin/checkov ($WANTED)"
    exit 0
fi

"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
echo "checkov installed: $VENV/bin/checkov ($("$VENV/bin/checkov" --version))"
