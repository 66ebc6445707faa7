"""wrk, the load generator every benchmark here drives: one thread, keep-alive connections
posting one JSON body, its latency distribution read back from `--latency`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_SCALE_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and timeouts


def run_wrk(url: str, body: bytes | str, connections: int, duration: float) -> Result:
    """POST `body` to `url` over `connections` kept-alive connections for `duration` seconds."""
    text = body.decode() if isinstance(body, bytes) else body
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(text)}\n"
        )
    seconds = max(1, round(duration))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
            + ["--timeout", "10s", url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    latency = {p: float(v) * _SCALE_MS[u] for p, v, u in _LATENCY.findall(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?timeout (\d+)"):
        match = re.search(pattern, out)
        errors += int(match.group(1)) if match else 0
    return Result(rps, latency.get("50", float("nan")), latency.get("99", float("nan")), errors)
