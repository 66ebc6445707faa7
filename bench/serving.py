"""Serving benchmark: this server vs MLServer 1.7.1 vs a constant-answer floor, side by side.

    .venv/bin/python bench/serving.py       # about 12 minutes; --rounds 1 for a quicker look

Starts each server alone on loopback, drives it with wrk (Debian's) using the same Open
Inference Protocol request, and prints requests/s, p50/p99 latency, cold start and RSS, with
ratios to MLServer and to the floor. The gRPC case drives this server's and MLServer's
`ModelInfer` with h2load (Debian's nghttp2-client) sending the same serialized request over
HTTP/2 streams; h2load reports no percentiles, and each server's answer to that request is
checked with tritonclient.grpc before it is driven. Only ratios from one run mean anything
on shared machines: each ratio is the median over rounds of the two servers' figures from the
same round.
MLServer lives in its own venv (.tools/mlserver-venv, created on first use; it needs
uvloop<0.22). Artifacts and logs go to var/bench-serving/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for bench.wrk, when run as a script

from bench.wrk import Result, run_wrk  # noqa: E402

WORK = ROOT / "var" / "bench-serving"
MLSERVER_VENV = ROOT / ".tools" / "mlserver-venv"
MLSERVER_PACKAGES = [
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "uvloop<0.22",  # MLServer 1.7.1 fails to start with uvloop 0.22+
    "scikit-learn==1.9.1",  # the same as serving, so both load the same joblib file
    "joblib==1.6.0",
    "numpy==2.4.6",
]
N_FEATURES = 20


@dataclass
class Case:
    model: str  # "lr" or "rf"
    rows: int
    connections: int  # REST: connections; gRPC: concurrent streams on one connection
    protocol: str = "rest"  # "rest" (OIP JSON over HTTP/1.1) or "grpc" (OIP ModelInfer)

    @property
    def label(self) -> str:
        name = {"lr": "LogReg", "rf": "RandomForest"}[self.model]
        label = f"{name} {self.rows} row{'s' if self.rows > 1 else ''} c={self.connections}"
        return label + (" gRPC" if self.protocol == "grpc" else "")


CASES = [
    Case("lr", 1, 1),
    Case("lr", 1, 8),
    Case("lr", 1, 64),
    Case("lr", 64, 8),
    Case("lr", 1, 8, "grpc"),
    Case("rf", 1, 1),
    Case("rf", 1, 8),
    Case("rf", 1, 64),
]


@dataclass
class ServerRun:
    name: str
    cold_start_s: dict[str, float] = field(default_factory=dict)  # medians
    cold_starts: dict[str, list[float]] = field(default_factory=dict)  # one per round
    rss_mb: dict[str, float] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)  # medians
    rounds: dict[str, list[Result]] = field(default_factory=dict)  # one per round


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- models and requests --------------------------------------------------------------------


def train_models() -> dict[str, Path]:
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(
        n_samples=4000, n_features=N_FEATURES, n_informative=10, n_classes=3, random_state=0
    )
    paths = {}
    for name, estimator in (
        ("lr", LogisticRegression(max_iter=2000)),
        ("rf", RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0)),
    ):
        folder = WORK / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.joblib"
        joblib.dump(estimator.fit(X, y), path)
        paths[name] = path
    return paths


def infer_body(model: str, rows: int) -> bytes:
    import numpy as np

    data = np.random.default_rng(rows).normal(size=(rows, N_FEATURES)).round(6)
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [rows, N_FEATURES],
                    "datatype": "FP64",
                    "data": data.reshape(-1).tolist(),
                }
            ],
            "outputs": [{"name": "predict_proba"}],
        }
    ).encode()


def grpc_infer_frame(model: str, rows: int) -> bytes:
    """The same request as infer_body as one gRPC message frame (flag, length, protobuf)."""
    import numpy as np

    # tritonclient's copy of the protocol's messages: the same wire format as serving's, and
    # one process cannot load both copies (they register the same protobuf names).
    from tritonclient.grpc import service_pb2 as pb

    data = np.random.default_rng(rows).normal(size=(rows, N_FEATURES)).round(6)
    request = pb.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[rows, N_FEATURES])
    tensor.contents.fp64_contents.extend(data.reshape(-1).tolist())
    request.outputs.add(name="predict_proba")
    message = request.SerializeToString()
    return b"\x00" + len(message).to_bytes(4, "big") + message


def check_grpc_answer(server: Server, rows: int) -> None:
    """The server answers the benchmark's gRPC request correctly (h2load cannot tell)."""
    import numpy as np
    import tritonclient.grpc as triton
    from tritonclient.grpc import service_pb2 as pb

    frame = grpc_infer_frame(server.model, rows)
    request = pb.ModelInferRequest.FromString(frame[5:])
    client = triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        tensor = triton.InferInput("input-0", [rows, N_FEATURES], "FP64")
        values = np.array(request.inputs[0].contents.fp64_contents).reshape(rows, N_FEATURES)
        tensor.set_data_from_numpy(values)
        wanted = [triton.InferRequestedOutput("predict_proba")]
        proba = client.infer(server.model, [tensor], outputs=wanted).as_numpy("predict_proba")
    finally:
        client.close()
    if proba is None or proba.shape != (rows, 3):
        raise RuntimeError(f"{server.name} answered the gRPC request wrongly: {proba!r}")


# --- servers --------------------------------------------------------------------------------


class Server:
    """A server process started alone; `command` and `url` are set by the subclasses."""

    name = ""
    only_connections: set[int] | None = None  # drive it only in cases with these connections
    grpc = False  # serves the Open Inference Protocol's gRPC on grpc_port

    def __init__(self, model: str, artifact: Path) -> None:
        self.model = model
        self.artifact = artifact
        self.port = free_port()
        self.grpc_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def infer_url(self) -> str:
        return f"{self.base}/v2/models/{self.model}/infer"

    def command(self) -> tuple[list[str], Path]:
        raise NotImplementedError

    def start(self) -> float:
        """Start and return the cold start: process start to the first correct answer."""
        argv, cwd = self.command()
        log = open(WORK / f"{self.name}-{self.model}.log", "wb")  # noqa: SIM115
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        body = infer_body(self.model, 1)
        deadline = started + 120
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {log.name}")
            try:
                request = urllib.request.Request(
                    self.infer_url(), data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not answer within 120 s; see {log.name}")

    def rss_mb(self) -> float:
        """Resident memory of the process and its children (MLServer runs worker processes)."""
        assert self.proc is not None
        pids = {self.proc.pid}
        changed = True
        while changed:
            changed = False
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                pid, ppid = int(stat.parent.name), int(fields[1])
                if ppid in pids and pid not in pids:
                    pids.add(pid)
                    changed = True
        total_kb = 0
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            total_kb += int(match.group(1)) if match else 0
        return total_kb / 1024

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class OurServer(Server):
    name = "serving"
    extra_config = ""
    grpc = True

    def command(self) -> tuple[list[str], Path]:
        config = WORK / self.model / f"{self.name}.yaml"
        config.write_text(
            "modelType: joblib\njob: classification\n"
            f"model:\n  method: LOCAL\n  path: {self.artifact}\n"
            f"inputSize: {N_FEATURES}\nname: {self.model}\n{self.extra_config}"
        )
        argv = [sys.executable, "-m", "serving", "--config", str(config), "--host", "127.0.0.1"]
        return argv + ["--port", str(self.port), "--grpc-port", str(self.grpc_port)], ROOT


class UnbatchedServer(OurServer):
    """This server with micro-batching off: checks that batching costs nothing at c=1."""

    name = "unbatched"
    extra_config = "batching:\n  enabled: false\n"
    only_connections = {1}
    grpc = False


class MLServer(Server):
    name = "mlserver"
    grpc = True

    def command(self) -> tuple[list[str], Path]:
        folder = WORK / f"mlserver-{self.model}"
        model_dir = folder / self.model
        model_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.artifact, model_dir / "model.joblib")
        (folder / "settings.json").write_text(
            json.dumps(
                {
                    "http_port": self.port,
                    "grpc_port": self.grpc_port,
                    "metrics_port": free_port(),
                    "host": "127.0.0.1",
                }
            )
        )
        (model_dir / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": self.model,
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib"},
                }
            )
        )
        return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)], folder


class FloorServer(Server):
    name = "floor"

    def command(self) -> tuple[list[str], Path]:
        # As a module from the repository root: run as a script, bench/serving.py would shadow
        # the serving package.
        return [sys.executable, "-m", "bench.serving_floor", "--port", str(self.port)], ROOT


def ensure_mlserver() -> str | None:
    """Create MLServer's venv if needed; return why it cannot be used, or None."""
    python = MLSERVER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import mlserver_sklearn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return None  # (tools/get-mlserver.sh installs MLServer alone, for the codec tests)
    print("installing MLServer 1.7.1 into .tools/mlserver-venv ...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        subprocess.run(
            [str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *MLSERVER_PACKAGES],
            check=True,
            timeout=1200,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"could not install MLServer: {exc}"
    return None


# --- load -----------------------------------------------------------------------------------


def run_h2load(port: int, frame: bytes, streams: int, duration: float) -> Result:
    """ModelInfer over one HTTP/2 connection with `streams` concurrent streams."""
    with tempfile.NamedTemporaryFile("wb", suffix=".bin", delete=False) as body:
        body.write(frame)
    try:
        out = subprocess.run(
            ["h2load", "-c1", f"-m{streams}", f"-D{max(1, round(duration))}", "-d", body.name]
            + ["-H", "content-type: application/grpc", "-H", "te: trailers"]
            + [f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(body.name)
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    total = re.search(r"requests: (\d+) total", out)
    errors = int(total.group(1)) - int(done.group(1)) if done and total else 0  # type: ignore[union-attr]
    return Result(rps, float("nan"), float("nan"), max(errors, 0))


def drive(server: Server, case: Case, duration: float) -> Result:
    if case.protocol == "grpc":
        return run_h2load(
            server.grpc_port, grpc_infer_frame(server.model, case.rows), case.connections, duration
        )
    return run_wrk(
        server.infer_url(), infer_body(case.model, case.rows), case.connections, duration
    )


def measure_cold_starts(servers: list[Server], rounds: int, runs: dict[str, ServerRun]) -> None:
    """Median of `rounds` starts per server, interleaved like the load rounds."""
    starts: dict[str, list[float]] = {}
    for _ in range(rounds):
        for server in servers:
            try:
                starts.setdefault(server.name, []).append(server.start())
            finally:
                server.stop()
    for server in servers:
        seconds = starts[server.name]
        runs[server.name].cold_starts[server.model] = seconds
        runs[server.name].cold_start_s[server.model] = statistics.median(seconds)
        print(
            f"-- {server.name} ({server.model}) cold start "
            + ", ".join(f"{t:.2f}" for t in seconds)
            + " s",
            flush=True,
        )


def bench_model(
    servers: list[Server],
    cases: list[Case],
    duration: float,
    rounds: int,
    runs: dict[str, ServerRun],
) -> None:
    """Start the servers one at a time, then drive them one at a time in interleaved rounds.

    Load on a shared machine drifts over minutes; interleaving (case by case, server by
    server, several rounds, medians) keeps that drift out of the ratios. A server that is not
    being driven is idle.
    """
    measure_cold_starts(servers, rounds, runs)
    samples: dict[tuple[str, str], list[Result]] = {}
    try:
        grpc_rows = {case.rows for case in cases if case.protocol == "grpc"}
        for server in servers:
            server.start()
            run_wrk(server.infer_url(), infer_body(server.model, 1), 8, 1.0)  # warm-up
            if server.grpc and grpc_rows:
                for rows in grpc_rows:
                    check_grpc_answer(server, rows)
                run_h2load(server.grpc_port, grpc_infer_frame(server.model, 1), 8, 1.0)
            print(f"-- {server.name} ({server.model}) ready", flush=True)
        for round_no in range(rounds):
            for case in cases:
                for server in servers:
                    if server.only_connections and case.connections not in server.only_connections:
                        continue
                    if case.protocol == "grpc" and not server.grpc:
                        continue
                    result = drive(server, case, duration)
                    samples.setdefault((server.name, case.label), []).append(result)
                    print(
                        f"   round {round_no + 1} {case.label:<26} {server.name:<9}"
                        f" {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                        f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                        flush=True,
                    )
        for server in servers:
            runs[server.name].rss_mb[server.model] = server.rss_mb()
    finally:
        for server in servers:
            server.stop()
    for (name, label), results in samples.items():
        runs[name].rounds[label] = results
        runs[name].results[label] = Result(
            statistics.median(r.rps for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results),
            sum(r.errors for r in results),
        )


def paired_ratio(a: ServerRun | None, b: ServerRun | None, label: str, what: str) -> float | None:
    """Median over rounds of a/b, each from the same round: measurements minutes apart see
    different machines on a shared host, back-to-back ones nearly the same."""
    if a is None or b is None or label not in a.rounds or label not in b.rounds:
        return None
    pairs = zip(a.rounds[label], b.rounds[label], strict=True)
    ratios = [getattr(x, what) / getattr(y, what) for x, y in pairs if getattr(y, what)]
    ratios = [r for r in ratios if r == r]  # no NaN (a missing percentile)
    return statistics.median(ratios) if ratios else None


def paired_cold_start(a: ServerRun, b: ServerRun | None, model: str) -> float | None:
    if b is None or model not in a.cold_starts or model not in b.cold_starts:
        return None
    pairs = zip(a.cold_starts[model], b.cold_starts[model], strict=True)
    return statistics.median(x / y for x, y in pairs)


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(runs: dict[str, ServerRun], cases: list[Case]) -> None:
    ours, ml, floor = runs["serving"], runs.get("mlserver"), runs["floor"]
    unbatched = runs.get("unbatched")
    print()
    columns = ["case", "server", "req/s", "p50 ms", "p99 ms", "errors"]
    columns += ["vs MLServer req/s", "vs MLServer p99", "vs floor req/s"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * 9)
    for case in cases:
        for run in (ours, unbatched, ml, floor):
            if run is None or case.label not in run.results:
                continue
            r = run.results[case.label]
            vs_ml = vs_p99 = vs_floor = ""
            if run is ours:
                if ml is not None and case.label in ml.results:
                    vs_ml = ratio(paired_ratio(ours, ml, case.label, "rps"))
                    vs_p99 = ratio(paired_ratio(ours, ml, case.label, "p99_ms"))
                if case.label in floor.results:
                    vs_floor = ratio(paired_ratio(ours, floor, case.label, "rps"))
            print(
                f"| {case.label} | {run.name} | {r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
                f"| {r.errors} | {vs_ml} | {vs_p99} | {vs_floor} |"
            )
    print()
    print("| server | model | cold start s (median) | RSS MiB |")
    print("|---|---|---|---|")
    for run in (ours, ml):
        if run is None:
            continue
        for model, seconds in run.cold_start_s.items():
            print(f"| {run.name} | {model} | {seconds:.2f} | {run.rss_mb.get(model, 0):.0f} |")
    print()
    print_targets(runs)


def print_targets(runs: dict[str, ServerRun]) -> None:
    """The issue's targets, checked on this run's ratios."""
    ours, ml, floor = runs["serving"], runs.get("mlserver"), runs["floor"]
    unbatched = runs.get("unbatched")
    checks: list[tuple[str, float | None, str, float]] = []

    def add(name: str, value: float | None, op: str, limit: float) -> None:
        checks.append((name, value, op, limit))

    lr8, rf64 = "LogReg 1 row c=8", "RandomForest 1 row c=64"
    lr8_grpc = f"{lr8} gRPC"
    add(f"{lr8}: req/s vs MLServer", paired_ratio(ours, ml, lr8, "rps"), ">=", 2.0)
    add(f"{lr8_grpc}: req/s vs MLServer", paired_ratio(ours, ml, lr8_grpc, "rps"), ">=", 3.0)
    add(f"{lr8}: p99 vs MLServer", paired_ratio(ours, ml, lr8, "p99_ms"), "<=", 1.0)
    add(f"{lr8}: req/s vs floor", paired_ratio(ours, floor, lr8, "rps"), ">=", 0.7)
    add(f"{rf64}: req/s vs MLServer", paired_ratio(ours, ml, rf64, "rps"), ">=", 10.0)
    add(f"{rf64}: p99 vs MLServer", paired_ratio(ours, ml, rf64, "p99_ms"), "<=", 0.25)
    for model in ("lr", "rf"):
        add(f"cold start {model} vs MLServer", paired_cold_start(ours, ml, model), "<=", 0.5)
    for label in ("LogReg 1 row c=1", "RandomForest 1 row c=1"):
        add(
            f"{label}: batching on vs off req/s",
            paired_ratio(ours, unbatched, label, "rps"),
            ">=",
            0.9,
        )
    print("| target | measured | wanted | met |")
    print("|---|---|---|---|")
    for name, value, op, limit in checks:
        if value is None:
            print(f"| {name} | - | {op} {limit} | not measured |")
            continue
        met = value >= limit if op == ">=" else value <= limit
        print(f"| {name} | {value:.2f}x | {op} {limit}x | {'yes' if met else 'NO'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--no-mlserver", action="store_true", help="skip the MLServer anchor")
    parser.add_argument(
        "--no-unbatched", action="store_true", help="skip the batching-off check at c=1"
    )
    parser.add_argument("--only", choices=["lr", "rf"], help="run one model's cases only")
    parser.add_argument("--protocol", choices=["rest", "grpc"], help="run one protocol's cases")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    artifacts = train_models()
    cases = [c for c in CASES if args.only in (None, c.model)]
    cases = [c for c in cases if args.protocol in (None, c.protocol)]
    if any(c.protocol == "grpc" for c in cases) and shutil.which("h2load") is None:
        print("h2load is not installed: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    models = sorted({c.model for c in cases}, key=["lr", "rf"].index)

    runs = {name: ServerRun(name) for name in ("serving", "unbatched", "floor")}
    why_not = "--no-mlserver" if args.no_mlserver else ensure_mlserver()
    if why_not is None:
        runs["mlserver"] = ServerRun("mlserver")
    else:
        print(f"MLServer skipped: {why_not}")
    for model in models:
        model_cases = [c for c in cases if c.model == model]
        servers: list[Server] = [OurServer(model, artifacts[model])]
        if not args.no_unbatched:
            servers.append(UnbatchedServer(model, artifacts[model]))
        if "mlserver" in runs:
            servers.append(MLServer(model, artifacts[model]))
        servers.append(FloorServer(model, artifacts[model]))
        bench_model(servers, model_cases, args.duration, args.rounds, runs)
    print_table(runs, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
