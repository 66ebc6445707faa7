"""Session fixtures: small real models saved to disk and real serving processes for them."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import joblib
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from serving.config import ModelSource, ServingConfig, dump_config  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServingProcess:
    """One serving process; `url` is its base URL once `wait_ready()` returned."""

    def __init__(
        self, config: Path, env: dict[str, str] | None = None, log_path: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or config.with_suffix(f".{self.port}.log")
        # No gRPC unless a test asks for it: serving's default port would be shared by all.
        full_env = {"SERVING_GRPC_PORT": "0", **os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(config), "--host", "127.0.0.1"]
            + ["--port", str(self.port)],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> ServingProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serving exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"serving did not become ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def start_serving() -> Iterator[Callable[..., ServingProcess]]:
    """Factory: start a serving process for a config; every one is stopped at the end."""
    started: list[ServingProcess] = []

    def start(config: Path, env: dict[str, str] | None = None, wait: bool = True) -> ServingProcess:
        server = ServingProcess(config, env)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def iris() -> tuple[LogisticRegression, object]:
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(X, y), X


@pytest.fixture(scope="session")
def diabetes() -> tuple[Ridge, object]:
    X, y = load_diabetes(return_X_y=True)
    return Ridge().fit(X, y), X


def write_config(directory: Path, name: str, cfg: ServingConfig) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(dump_config(cfg))
    return path


@pytest.fixture(scope="session")
def iris_config(workdir: Path, iris: tuple[LogisticRegression, object]) -> Path:
    artifact = workdir / "iris.joblib"
    joblib.dump(iris[0], artifact)
    cfg = ServingConfig(
        model_type="joblib",
        job="classification",
        model=ModelSource(method="LOCAL", path=str(artifact)),
        input_size=4,
        name="iris",
        version="3",
        max_batch_rows=1000,
        max_body_bytes=1_000_000,
    )
    return write_config(workdir, "iris", cfg)


@pytest.fixture(scope="session")
def diabetes_config(workdir: Path, diabetes: tuple[Ridge, object]) -> Path:
    artifact = workdir / "diabetes.pkl"
    artifact.write_bytes(pickle.dumps(diabetes[0]))
    cfg = ServingConfig(
        model_type="pkl",
        job="regression",
        model=ModelSource(method="LOCAL", path=str(artifact)),
        input_size=10,
        name="diabetes",
    )
    return write_config(workdir, "diabetes", cfg)


@pytest.fixture(scope="session")
def iris_server(start_serving: Callable[..., ServingProcess], iris_config: Path) -> ServingProcess:
    return start_serving(iris_config)


@pytest.fixture(scope="session")
def diabetes_server(
    start_serving: Callable[..., ServingProcess], diabetes_config: Path
) -> ServingProcess:
    return start_serving(diabetes_config)
