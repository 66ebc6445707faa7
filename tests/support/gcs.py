"""gcp-storage-emulator as a real server on loopback, and the real client pointed at it.

The server runs through tests/support/gcs_emulator.py, which makes it honour
`ifGenerationMatch=0` on uploads as GCS does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


class GcsEmulator:
    """One emulator process; `url` is what STORAGE_EMULATOR_HOST should say."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> GcsEmulator:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.gcs_emulator", "start", "--host", "127.0.0.1"]
                + ["--port", str(self.port), "--in-memory", "--quiet"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited: {self.log_path.read_text()}")
            try:
                httpx.get(f"{self.url}/storage/v1/b", timeout=1)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, project: str = "test"):
        """The real google-cloud-storage client, talking to this emulator anonymously."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.url},
        )

    def ensure_bucket(self, name: str, project: str = "test") -> None:
        client = self.client(project)
        if not client.bucket(name).exists():
            client.create_bucket(name)
