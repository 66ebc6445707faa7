"""Tabular benchmark: DataFrame pipelines and boosting libraries, this server vs MLServer 1.7.1.

    .venv/bin/python -m bench.tabular   # about 3 minutes; --duration 10 for steadier figures

(Run it as a module from the repository root: as a script, bench/serving.py would shadow the
serving package.) Each server is started alone on loopback and driven with wrk, in the same
run, so only the ratios mean anything on a shared machine:

- pipeline: ColumnTransformer(OneHotEncoder on two string columns, StandardScaler on two
  numbers) then HistGradientBoostingClassifier, one row per request at 16 connections. This
  server gets the row as an object on /predict (and, for the same body as MLServer, one OIP
  tensor per column); MLServer gets its PandasCodec request (one tensor per column, BYTES for
  strings, `content_type: pd`) on its scikit-learn runtime.
- hgb c=1: HistGradientBoostingClassifier (20 features, 100 iterations), one row, one
  connection: this server, the same server without its OpenMP handling (every call on all
  cores with OpenMP's default spin-waiting, as before), and MLServer.
- lightgbm / xgboost: classifiers on 20 features at 16 connections, the OIP matrix request;
  MLServer runs mlserver-lightgbm / mlserver-xgboost on the library's own model file.

MLServer lives in .tools/mlserver-venv (created on first use, with its LightGBM and XGBoost
runtimes). Artifacts and logs go to var/bench-tabular/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.serving import MLSERVER_VENV, free_port
from bench.wrk import Result, run_wrk

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench-tabular"
MLSERVER_PACKAGES = [
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "mlserver-lightgbm==1.7.1",
    "mlserver-xgboost==1.7.1",
    "uvloop<0.22",  # MLServer 1.7.1 fails to start with uvloop 0.22+
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
    "numpy==2.4.6",
    "xgboost-cpu==3.2.0",
    "lightgbm==4.7.0",
]
N_FEATURES = 20
ROW = {"age": 42, "city": "paris", "income": 51234.5, "plan": "pro"}


# --- models and requests --------------------------------------------------------------------


def train() -> dict[str, Path]:
    """The artifacts: joblib files for this server and MLServer's sklearn runtime, and the
    boosting libraries' own model files for MLServer's LightGBM and XGBoost runtimes."""
    import joblib
    import numpy as np
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from xgboost import XGBClassifier

    from tests.support.tabular import frame_pipeline

    paths: dict[str, Path] = {}
    WORK.mkdir(parents=True, exist_ok=True)
    pipeline, _ = frame_pipeline()
    pipeline.steps[-1][1].set_params(max_iter=100)
    from tests.support.tabular import customers

    frame, y = customers()
    pipeline.fit(frame, y)
    X, labels = make_classification(
        n_samples=4000, n_features=N_FEATURES, n_informative=10, random_state=0
    )
    X = X.astype(np.float64)
    models = {
        "pipeline": pipeline,
        "hgb": HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, labels),
        "lightgbm": LGBMClassifier(n_estimators=100, verbose=-1).fit(X, labels),
        "xgboost": XGBClassifier(n_estimators=100).fit(X, labels),
    }
    for name, estimator in models.items():
        folder = WORK / name
        folder.mkdir(exist_ok=True)
        joblib.dump(estimator, folder / "model.joblib")
        paths[name] = folder / "model.joblib"
    models["lightgbm"].booster_.save_model(str(WORK / "lightgbm" / "model.bst"))
    models["xgboost"].get_booster().save_model(str(WORK / "xgboost" / "model.json"))
    return paths


def matrix_body(rows: int = 1) -> bytes:
    import numpy as np

    data = np.random.default_rng(rows).normal(size=(rows, N_FEATURES)).round(6)
    tensor = {"name": "input-0", "shape": [rows, N_FEATURES], "datatype": "FP64"}
    return json.dumps({"inputs": [{**tensor, "data": data.reshape(-1).tolist()}]}).encode()


def pandas_codec_body() -> bytes:
    """One row as MLServer's PandasCodec encodes a DataFrame: a tensor per column."""
    datatypes = {"age": "INT64", "city": "BYTES", "income": "FP64", "plan": "BYTES"}
    inputs = []
    for name, value in ROW.items():
        tensor = {"name": name, "shape": [1, 1], "datatype": datatypes[name], "data": [value]}
        if datatypes[name] == "BYTES":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


# --- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    argv: list[str]
    cwd: Path
    url: str
    ready_body: bytes
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(WORK / f"{self.label.replace(' ', '-')}.log", "wb")  # noqa: SIM115
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited early; see {log.name}")
            request = urllib.request.Request(
                self.url, data=self.ready_body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.label} did not answer within 120 s; see {log.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def ours(model: str, artifact: Path, schema: list[dict] | None, before: bool = False) -> Server:
    """This server; `before`: without its OpenMP handling (bench/tabular_before.py)."""
    import yaml

    port = free_port()
    config = {
        "modelType": "joblib",
        "job": "classification",
        "model": {"method": "LOCAL", "path": str(artifact)},
        "inputSize": len(schema) if schema else N_FEATURES,
        "name": model,
        "grpcPort": 0,
    }
    if schema:
        config["inputSchema"] = schema
        config["sampleRows"] = [ROW]
    path = WORK / model / f"serving{'-before' if before else ''}.yaml"
    path.write_text(yaml.safe_dump(config))
    module = "bench.tabular_before" if before else "serving"
    argv = [sys.executable, "-m", module, "--config", str(path), "--host", "127.0.0.1"]
    ready = b"[" + json.dumps(ROW).encode() + b"]" if schema else matrix_body()
    url = f"http://127.0.0.1:{port}/predict" if schema else (
        f"http://127.0.0.1:{port}/v2/models/{model}/infer"
    )  # fmt: skip
    name = f"serving{' (no OpenMP handling)' if before else ''}"
    return Server(name, [*argv, "--port", str(port)], ROOT, url, ready)


def mlserver(model: str, runtime: str, uri: str, ready: bytes) -> Server:
    port = free_port()
    folder = WORK / f"mlserver-{model}"
    model_dir = folder / model
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / model / uri, model_dir / uri)
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    (folder / "settings.json").write_text(json.dumps({**settings, "host": "127.0.0.1"}))
    (model_dir / "model-settings.json").write_text(
        json.dumps({"name": model, "implementation": runtime, "parameters": {"uri": f"./{uri}"}})
    )
    url = f"http://127.0.0.1:{port}/v2/models/{model}/infer"
    argv = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)]
    return Server(f"mlserver {runtime.split('.')[0]}", argv, folder, url, ready)


def ensure_mlserver() -> str | None:
    """MLServer's venv with its LightGBM and XGBoost runtimes; why not, or None."""
    python = MLSERVER_VENV / "bin" / "python"
    probe = "import mlserver_sklearn, mlserver_lightgbm, mlserver_xgboost"
    if python.exists() and subprocess.run([str(python), "-c", probe]).returncode == 0:
        return None
    print("installing MLServer 1.7.1 and its runtimes into .tools/mlserver-venv ...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        pip = [str(MLSERVER_VENV / "bin" / "pip"), "install", "-q", *MLSERVER_PACKAGES]
        subprocess.run(pip, check=True, timeout=1200)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return f"could not install MLServer: {exc}"
    return None


# --- the run --------------------------------------------------------------------------------


def measure(server: Server, body: bytes, connections: int, duration: float) -> Result:
    try:
        server.start()
        run_wrk(server.url, body, connections, 1.0)  # warm-up
        return run_wrk(server.url, body, connections, duration)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--no-mlserver", action="store_true")
    args = parser.parse_args()
    why_not = "--no-mlserver" if args.no_mlserver else ensure_mlserver()
    paths = train()
    from sklearn.utils.fixes import parse_version  # noqa: F401 - scikit-learn is importable

    schema = [
        {"name": "age", "type": "integer"},
        {"name": "city", "type": "category", "categories": ["london", "paris", "tokyo"]},
        {"name": "income", "type": "number"},
        {"name": "plan", "type": "category", "categories": ["basic", "pro"]},
    ]
    objects = b"[" + json.dumps(ROW).encode() + b"]"
    pd_body = pandas_codec_body()
    matrix = matrix_body()
    cases: list[tuple[str, int, list[tuple[Server, bytes]]]] = []
    pipeline_ours = ours("pipeline", paths["pipeline"], schema)
    pipeline_oip = ours("pipeline", paths["pipeline"], schema)
    pipeline_oip.url = pipeline_oip.url.replace("/predict", "/v2/models/pipeline/infer")
    pipeline_oip.label = "serving (OIP PandasCodec body)"
    pipeline_oip.ready_body = pd_body
    cases.append(("pipeline 1 row c=16", 16, [(pipeline_ours, objects), (pipeline_oip, pd_body)]))
    cases.append(
        (
            "hgb 1 row c=1",
            1,
            [
                (ours("hgb", paths["hgb"], None), matrix),
                (ours("hgb", paths["hgb"], None, before=True), matrix),
            ],
        )
    )
    cases.append(("lightgbm 1 row c=16", 16, [(ours("lightgbm", paths["lightgbm"], None), matrix)]))
    cases.append(("xgboost 1 row c=16", 16, [(ours("xgboost", paths["xgboost"], None), matrix)]))
    if why_not is None:
        cases[0][2].append(
            (
                mlserver("pipeline", "mlserver_sklearn.SKLearnModel", "model.joblib", pd_body),
                pd_body,
            )
        )
        cases[1][2].append(
            (mlserver("hgb", "mlserver_sklearn.SKLearnModel", "model.joblib", matrix), matrix)
        )
        cases[2][2].append(
            (mlserver("lightgbm", "mlserver_lightgbm.LightGBMModel", "model.bst", matrix), matrix)
        )
        cases[3][2].append(
            (mlserver("xgboost", "mlserver_xgboost.XGBoostModel", "model.json", matrix), matrix)
        )
    else:
        print(f"MLServer skipped: {why_not}")
    table = []
    for label, connections, runs in cases:
        results = []
        for server, body in runs:
            result = measure(server, body, connections, args.duration)
            print(
                f"{label:<22} {server.label:<32} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f}"
                f" ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                flush=True,
            )
            results.append((server.label, result))
        table.append((label, results))
    print("\n| case | server | req/s | p50 ms | p99 ms | req/s vs MLServer | p99 vs MLServer |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for label, results in table:
        anchor = next((r for name, r in results if name.startswith("mlserver")), None)
        for name, r in results:
            vs = f"{r.rps / anchor.rps:.2f}x" if anchor and anchor.rps else "-"
            p99 = f"{r.p99_ms / anchor.p99_ms:.2f}x" if anchor and anchor.p99_ms else "-"
            figures = f"{r.rps:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f}"
            print(f"| {label} | {name} | {figures} | {vs} | {p99} |")


if __name__ == "__main__":
    main()
