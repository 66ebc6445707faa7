"""The embedded runtime: one `python -m serving` process per deployment on this machine.

Each deployment has a folder under LOCAL_RUNTIME_DIR with its config, its log and a state file
(pid, port, config checksum). Processes are started detached (double fork, new session), so
they outlive the worker task that started them and a console restart finds them again by the
state file.

Crash safety: apply and remove of one deployment hold an exclusive file lock (two workers, or a
deploy and an undeploy racing, take turns; the kernel drops the lock of a killed worker), the
state file is replaced atomically, and remove also stops any serving process of the deployment
that no state file records (one started by a worker killed before it could write the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from deployments import constants as st
from deployments.isolation import IsolationUnavailable, serving_process
from deployments.runtimes.base import Observation, Runtime, RuntimeFailure, ServingSpec

STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_alive(pid: int, marker: str) -> bool:
    """True if `pid` runs and is ours: not a zombie and its command line holds `marker`."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in {"Z", "X"} and marker in cmdline


def spawn_detached(command: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> int:
    """Start `command` in its own session, reparented away from us; returns its pid.

    The intermediate child exits at once, so the server is not our child: it survives the
    worker process and never lingers as our zombie.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        try:
            os.close(read_end)
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            os.write(write_end, str(proc.pid).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(child, 0)
    if not data:
        raise RuntimeFailure(f"could not start {command[0]}", permanent=False)
    return int(data)


def pids_with_marker(marker: str) -> list[int]:
    """Live processes whose command line holds `marker` (a deployment's config path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_alive(int(entry.name), marker):
            found.append(int(entry.name))
    return found


def stop_process_group(pid: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM the group led by `pid`, then SIGKILL it if it has not exited in time."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_alive(pid, ""):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self, root: Path, project_dir: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.project_dir = project_dir
        self.host = host

    def _dir(self, name: str) -> Path:
        return self.root / name

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{name}.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _state(self, name: str) -> dict | None:
        try:
            return json.loads((self._dir(name) / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _alive(self, name: str, state: dict) -> bool:
        return process_alive(state["pid"], str(self._dir(name) / "config.yaml"))

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = (self._dir(name) / "serving.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(line for line in text.strip().splitlines()[-lines:])

    def apply(self, spec: ServingSpec) -> str:
        with self._locked(spec.name):
            return self._apply(spec)

    def _apply(self, spec: ServingSpec) -> str:
        state = self._state(spec.name)
        if state and self._alive(spec.name, state) and state["checksum"] == spec.config_checksum:
            return state["endpoint"]
        self._remove(spec.name)
        folder = self._dir(spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yaml"
        config.write_text(spec.config_yaml)
        port = free_port()
        log = folder / "serving.log"
        log.write_text("")
        try:
            command, env, cwd = serving_process(config, self.host, port)
        except IsolationUnavailable as exc:
            raise RuntimeFailure(str(exc), permanent=True) from None
        pid = spawn_detached(command, log, cwd, env)
        endpoint = f"http://{self.host}:{port}"
        new_state = {
            "pid": pid,
            "port": port,
            "endpoint": endpoint,
            "checksum": spec.config_checksum,
            "started_at": time.time(),
        }
        # Atomic: a worker killed here leaves the old file or the new one, never half of one.
        partial = folder / "state.json.partial"
        partial.write_text(json.dumps(new_state))
        partial.replace(folder / "state.json")
        return endpoint

    def remove(self, name: str) -> None:
        with self._locked(name):
            self._remove(name)

    def _remove(self, name: str) -> None:
        state = self._state(name)
        if state and self._alive(name, state):
            stop_process_group(state["pid"])
        # Processes no state file records: started by a worker killed before writing it.
        for pid in pids_with_marker(str(self._dir(name) / "config.yaml")):
            stop_process_group(pid)
        folder = self._dir(name)
        (folder / "state.json").unlink(missing_ok=True)
        (folder / "config.yaml").unlink(missing_ok=True)

    def observe(self, spec: ServingSpec) -> Observation:
        state = self._state(spec.name)
        if state is None:
            return Observation(st.STOPPED, "no serving process is recorded for this deployment")
        endpoint = state["endpoint"]
        if not self._alive(spec.name, state):
            tail = self.log_tail(spec.name)
            reason = "the serving process exited"
            return Observation(
                st.FAILED, f"{reason}: {tail}" if tail else reason, endpoint=endpoint
            )
        try:
            with urllib.request.urlopen(f"{endpoint}/v2/health/ready", timeout=2) as resp:
                ready = resp.status == 200
        except (urllib.error.URLError, OSError, TimeoutError):
            ready = False
        if ready:
            return Observation(st.RUNNING, "", replicas_ready=1, endpoint=endpoint)
        return Observation(
            st.DEPLOYING, "waiting for the serving process to load the model", endpoint=endpoint
        )

    def list_deployed(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {p.parent.name for p in self.root.glob("*/state.json")}
