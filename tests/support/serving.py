"""Real serving processes for tests (`python -m serving` on a free loopback port), and the
config files they read."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from serving.config import ModelSource, ServingConfig, dump_config
from tests.support.models import save
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


class ServingProcess:
    """One serving process; `url` is its base URL once `wait_ready()` returned.

    With `listener` it accepts on that socket, as the local runtime's replicas share one
    (`--fd`), and tells its readiness through a pipe (`--notify-fd`)."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        listener: socket.socket | None = None,
    ) -> None:
        self.port = listener.getsockname()[1] if listener else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or config.with_suffix(f".{self.port}.log")
        # No gRPC unless a test asks for it: serving's default port would be shared by all.
        full_env = {"SERVING_GRPC_PORT": "0", **os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", "serving", "--config", str(config), "--host", "127.0.0.1"]
        self._notify: int | None = None
        pass_fds: tuple[int, ...] = ()
        if listener is None:
            argv += ["--port", str(self.port)]
        else:
            self._notify, notify_end = os.pipe()
            argv += ["--fd", str(listener.fileno()), "--notify-fd", str(notify_end)]
            pass_fds = (listener.fileno(), notify_end)
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )  # fmt: skip
        if listener is not None:
            os.close(notify_end)

    def wait_ready(self, timeout: float = 90.0) -> ServingProcess:
        deadline = time.monotonic() + timeout
        if self._notify is not None:  # "ready" from this process, not another on the socket
            readable, _, _ = select.select([self._notify], [], [], timeout)
            if readable and os.read(self._notify, 16).startswith(b"ready"):
                return self
            self.stop()
            raise RuntimeError(f"serving did not say it was ready in {timeout}s: {self.log()}")
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
        if self._notify is not None:
            os.close(self._notify)
            self._notify = None
        return self.proc.returncode


def write_config(directory: Path, name: str, cfg: ServingConfig) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(dump_config(cfg))
    return path


def serve_estimator(
    directory: Path,
    name: str,
    estimator: object,
    *,
    model_type: str,
    job: str,
    input_size: int,
    trusted_types: list[str] | None = None,
    **fields: object,
) -> Path:
    """Save `estimator` as `<name>.<model_type>` in `directory`; the path of a config serving it.
    `trusted_types` approves globals beyond serving's allowlist (test-only classes)."""
    artifact = save(estimator, directory / f"{name}.{model_type}", model_type)
    cfg = ServingConfig(
        model_type=model_type,
        job=job,
        model=ModelSource(method="LOCAL", path=str(artifact), trusted_types=trusted_types or []),
        input_size=input_size,
        name=name,
        **fields,
    )
    return write_config(directory, name, cfg)
