"""Observability benchmark: what the prediction log and the console's metrics scrape cost a
serving process.

    .venv/bin/python bench/observability.py            # about 2 minutes
    .venv/bin/python bench/observability.py --rounds 1 --seconds 5

1. Prediction log at sample 1.0 and 0.1 (a folder sink) against logging off: three serving
   processes of the same LogisticRegression (20 features), driven in turn with wrk (Debian's),
   1 row per request, 8 connections; per round the ratio to logging off, the median over rounds
   printed (targets: at most 10% fewer requests/s, p99 at most 1.2x).
2. The scrape: the CPU time the serving process spends answering /metrics (its /proc
   utime + stime over 200 scrapes, after the load above filled its histograms), as a share of
   one core at the console's scrape interval (15 s; target: under 1%).

Only ratios from one run mean anything on shared machines. Files go to var/bench-observability/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import joblib
import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for bench.wrk, when run as a script

from bench.wrk import run_wrk  # noqa: E402

WORK = ROOT / "var" / "bench-observability"
N_FEATURES = 20
SCRAPE_INTERVAL_S = 15
SCRAPES = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, N_FEATURES))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)


def write_config(path: Path, artifact: Path, logging: dict | None) -> None:
    config = {
        "modelType": "joblib",
        "job": "classification",
        "model": {"method": "LOCAL", "path": str(artifact)},
        "inputSize": N_FEATURES,
        "name": "bench",
        "version": "1",
    }
    if logging:
        config["logging"] = logging
    path.write_text(yaml.safe_dump(config))


class Server:
    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SERVING_GRPC_PORT": "0"}
        self.log = (WORK / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(config), "--host", "127.0.0.1"]
            + ["--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start: see {self.log.name}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wrk_figures(url: str, body: str, connections: int, seconds: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of wrk posting `body` for `seconds`; errors stop the run."""
    result = run_wrk(url, body, connections, seconds)
    if result.errors:
        raise RuntimeError(f"wrk saw {result.errors} errors at {url}")
    return result.rps, result.p50_ms, result.p99_ms


def scrape_cpu(server: Server) -> float:
    """CPU seconds the server spends per /metrics answer."""
    for _ in range(5):
        urllib.request.urlopen(f"{server.url}/metrics").read()
    before = server.cpu_seconds()
    for _ in range(SCRAPES):
        urllib.request.urlopen(f"{server.url}/metrics").read()
    return (server.cpu_seconds() - before) / SCRAPES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    artifact = WORK / "lr.joblib"
    train(artifact)
    write_config(WORK / "off.yaml", artifact, None)
    sink = WORK / "prediction-log"
    write_config(WORK / "on.yaml", artifact, {"sample": 1.0, "sink": f"file://{sink}"})
    write_config(WORK / "tenth.yaml", artifact, {"sample": 0.1, "sink": f"file://{sink}-0.1"})
    body = json.dumps([[round(float(v), 4) for v in np.linspace(-1, 1, N_FEATURES)]])

    names = ("off", "on", "tenth")
    servers = {name: Server(name, WORK / f"{name}.yaml") for name in names}
    try:
        for server in servers.values():
            wrk_figures(f"{server.url}/predict", body, 8, 2)  # warm-up
        rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
        for i in range(args.rounds):
            for name in names if i % 2 == 0 else names[::-1]:
                rounds[name].append(
                    wrk_figures(f"{servers[name].url}/predict", body, 8, args.seconds)
                )
        per_scrape = scrape_cpu(servers["on"])
        logged = sum(len(p.read_bytes().splitlines()) for p in sink.glob("*/*.jsonl"))
    finally:
        for server in servers.values():
            server.stop()

    print(f"LogisticRegression, 1 row, 8 connections, {args.rounds} x {args.seconds} s each")
    labels = {"off": "logging off", "on": "sample 1.0 ", "tenth": "sample 0.1 "}
    for name in names:
        rps = statistics.median(r[0] for r in rounds[name])
        p50 = statistics.median(r[1] for r in rounds[name])
        p99 = statistics.median(r[2] for r in rounds[name])
        print(f"  {labels[name]}: {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    for name in ("on", "tenth"):
        pairs = list(zip(rounds[name], rounds["off"], strict=True))
        rps_ratio = statistics.median(on[0] / off[0] for on, off in pairs)
        p99_ratio = statistics.median(on[2] / off[2] for on, off in pairs)
        print(
            f"  {labels[name]}: requests/s vs off {rps_ratio:.3f} (target >= 0.90), "
            f"p99 vs off {p99_ratio:.3f} (target <= 1.20)"
        )
    print(f"  records written by the logging server: {logged}")
    share = per_scrape / SCRAPE_INTERVAL_S
    print(
        f"scrape: {per_scrape * 1000:.2f} ms CPU per /metrics answer; at one scrape every "
        f"{SCRAPE_INTERVAL_S} s: {share:.4%} of a core (target < 1%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
