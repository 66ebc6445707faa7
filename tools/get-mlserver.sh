#!/usr/bin/env bash
# MLServer 1.7.1 in a venv of its own, .tools/mlserver-venv (or $1): its pins (FastAPI 0.115,
# Starlette 0.46, uvloop<0.22) clash with serving's. The tests build requests with its codecs
# (tests/serving/test_mlserver_codecs.py); the benchmarks add its runtimes to the same venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.tools/mlserver-venv}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import mlserver.codecs" 2>/dev/null; then
    echo "MLServer installed: $venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
    mlserver==1.7.1 "uvloop<0.22" pandas==2.3.3 numpy==2.4.6
echo "MLServer installed: $venv"
