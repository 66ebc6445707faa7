"""What the local runtime's traffic proxy costs: the stable endpoint with a canary (through the
proxy) against the same serving process called directly, and what a shadow costs the primary.

`.venv/bin/python bench/traffic.py [SECONDS] [ROUNDS]`: deploys an iris LogisticRegression on
the local runtime (a supervisor, as the console starts it) with a canary of weight 0, so every
request through the stable port goes through the proxy to the primary's one serving process.
wrk (8 connections, 1 row per POST /predict, keep-alive) then alternates, ROUNDS times (default
3) for SECONDS each (default 3):

- direct: wrk at the primary's own port (the anchor);
- proxy: wrk at the stable port (proxy, then the same process).

Then a shadow is added and the same two run again; the shadow's cost is the proxy's share of
the anchor with the shadow against without it (each round starts once the shadow has caught up
with the round before); then what became of the shadow's copies (answered, dropped: at
saturation the proxy has no CPU to spare and drops them). Medians and ratios
are printed; only the ratios of one run mean anything on a shared machine. Figures for the
README, not a test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.wrk import Result, run_wrk  # noqa: E402
from deployments.runtimes.base import ServingSpec, TrafficTarget  # noqa: E402
from deployments.runtimes.local import LocalRuntime, port_is_free  # noqa: E402
from deployments.runtimes.proxy import SHADOW_REPORT_SECONDS  # noqa: E402
from serving.config import ModelSource, ServingConfig, dump_config  # noqa: E402
from tests.support.models import iris_classifier, save  # noqa: E402

CONNECTIONS = 8
BODY = json.dumps([[5.1, 3.5, 1.4, 0.2]])


def config(artifact: Path, version: int) -> str:
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    return dump_config(
        ServingConfig(
            model_type="joblib",
            job="classification",
            model=ModelSource(method="LOCAL", path=str(artifact), sha256=sha),
            input_size=4,
            name="iris",
            version=str(version),
            deployment_name="bench",
        )
    )


def wait(runtime: LocalRuntime, spec: ServingSpec, role: str | None = None) -> dict:
    """Until the runtime reports the spec running (and `role`'s process ready): status.json."""
    status_file = runtime.root / spec.name / "status.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        seen = runtime.observe(spec)
        status = json.loads(status_file.read_text()) if status_file.exists() else {}
        ready = role is None or status.get("versions", {}).get(role, {}).get("ready")
        if seen.status == "running" and ready:
            time.sleep(0.5)  # the proxy re-reads its routes every 0.1 s
            return status
        if seen.status == "failed":
            raise SystemExit(f"failed: {seen.reason}")
        time.sleep(0.2)
    raise SystemExit(f"not running in time: {runtime.observe(spec)}")


def drained(report: Path) -> None:
    """Until the shadow has answered or dropped the copies it was sent (at most 60 s), so that
    no round measures the shadow catching up with the round before."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(SHADOW_REPORT_SECONDS)
        if not report.exists() or not json.loads(report.read_text())["queued"]:
            return


def phase(
    name: str, urls: dict[str, str], rounds: int, seconds: int, report: Path
) -> dict[str, Result]:
    runs: dict[str, list[Result]] = {key: [] for key in urls}
    for url in urls.values():
        run_wrk(f"{url}/predict", BODY, CONNECTIONS, 1)  # warm-up
    for _ in range(rounds):
        for key, url in urls.items():
            drained(report)
            runs[key].append(run_wrk(f"{url}/predict", BODY, CONNECTIONS, seconds))
    medians = {}
    for key, results in runs.items():
        medians[key] = Result(
            statistics.median(r.rps for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results),
            sum(r.errors for r in results),
        )
        m = medians[key]
        print(
            f"{name:>8} {key:>7}: {m.rps:8.0f} req/s  p50 {m.p50_ms:6.3f} ms  "
            f"p99 {m.p99_ms:6.2f} ms  non-2xx {m.errors}",
            flush=True,
        )
    return medians


def main(argv: list[str]) -> int:
    seconds = int(argv[0]) if argv else 3
    rounds = int(argv[1]) if len(argv) > 1 else 3
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="bench-traffic-"))
    estimator, _ = iris_classifier()
    artifact = save(estimator, folder / "iris.joblib", "joblib")
    runtime = LocalRuntime(folder / "runtime")
    port = next(p for p in range(28500, 28999) if port_is_free("127.0.0.1", p))
    canary = TrafficTarget("canary", 2, config(artifact, 2), weight=0)
    spec = ServingSpec("bench", "iris", 1, config(artifact, 1), replicas=1, port=port)
    split = replace(spec, traffic=(canary,))
    try:
        runtime.apply(split)
        status = wait(runtime, split, "canary")
        direct = f"http://127.0.0.1:{status['primary_port']}"
        stable = f"http://127.0.0.1:{port}"
        report = runtime.root / "bench" / "shadow.json"
        before = phase("no shadow", {"direct": direct, "proxy": stable}, rounds, seconds, report)
        shadowed = replace(spec, traffic=(canary, TrafficTarget("shadow", 3, config(artifact, 3))))
        runtime.apply(shadowed)
        wait(runtime, shadowed, "shadow")
        after = phase("shadow", {"direct": direct, "proxy": stable}, rounds, seconds, report)
        time.sleep(1)  # the proxy writes shadow.json twice a second
        copies = json.loads(report.read_text())
    finally:
        runtime.remove("bench")
    proxy_share = before["proxy"].rps / before["direct"].rps
    shadow_share = after["proxy"].rps / after["direct"].rps
    print()
    print(f"proxy / direct requests/s:        {proxy_share:.2f}  (bar: at least 0.85)")
    added = before["proxy"].p50_ms - before["direct"].p50_ms
    print(f"proxy - direct p50:                {added:+.3f} ms  (bar: at most +0.3 ms)")
    print(
        f"with shadow / without, requests/s: {after['proxy'].rps / before['proxy'].rps:.2f} raw, "
        f"{shadow_share / proxy_share:.2f} against the anchor  (bar: at least 0.90)"
    )
    print(
        f"shadow copies: {copies['copies']}, answered {copies['answered']}, dropped "
        f"{copies['dropped']}, still queued {copies['queued']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
