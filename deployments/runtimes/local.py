"""The embedded runtime: the serving processes of each deployment on this machine, kept by a
supervisor process of its own (deployments/runtimes/supervisor.py).

Each deployment has a folder under LOCAL_RUNTIME_DIR: config.yaml and desired.json (what to
run: written here), state.json (the supervisor's pid: written here), status.json (what the
supervisor sees), serving.log (what the serving processes wrote). Supervisors are started
detached (double fork, new session), so they outlive the worker task that started them and a
console restart finds them again by the state file.

The endpoint is http://HOST:PORT with the port the console reserved for the deployment
(`ServingSpec.port`, a column of its record), bound here and handed to the supervisor as a
listening socket that every replica shares. It is never read back from a file in the folder:
the model's code runs as the same user and could rewrite those.

Crash safety: apply and remove of one deployment hold an exclusive file lock (two workers, or a
deploy and an undeploy racing, take turns; the kernel drops the lock of a killed worker), the
files are replaced atomically, and remove also stops any process of the deployment that no
state file records (one started by a worker killed before it could write the file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from deployments import constants as st
from deployments import isolation
from deployments.runtimes.base import Observation, Runtime, RuntimeFailure, ServingSpec

STOP_TIMEOUT_SECONDS = 15.0  # the supervisor drains its replicas first
PROJECT_DIR = Path(__file__).resolve().parents[2]
LISTEN_BACKLOG = 1024
LOG_READ_BYTES = 1024 * 1024


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


def serving_process(
    config: Path, listen_fd: int, notify_fd: int, grpc_socket: Path | None = None
) -> tuple[list[str], dict[str, str], Path]:
    """The command, environment and working folder of one serving process (a replica): it
    serves on the inherited socket `listen_fd` (and gRPC on the Unix socket `grpc_socket`),
    writes 'ready' to `notify_fd` once it accepts connections, and runs isolated
    (deployments/isolation.py)."""
    return isolation.serving_process(config, listen_fd, notify_fd, grpc_socket)


def grpc_port(port: int) -> int:
    """The gRPC port of the local deployment whose REST port is `port`."""
    return port - st.LOCAL_GRPC_PORT_OFFSET


def spawn_detached(
    command: list[str], log_path: Path, cwd: Path, env: dict[str, str], pass_fds: tuple = ()
) -> int:
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
                    pass_fds=pass_fds,
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


def listen(host: str, port: int, what: str = "port") -> socket.socket:
    """The deployment's listening socket on its reserved port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeFailure(
            f"{what} {port} of this deployment is taken by another program ({exc.strerror})",
            permanent=False,
        ) from None
    sock.listen(LISTEN_BACKLOG)
    return sock


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def write_atomic(path: Path, text: str) -> None:
    """A reader sees the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def read_tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a text file (reading at most its last megabyte)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_READ_BYTES))
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode(errors="replace").splitlines()
    if size > LOG_READ_BYTES:
        text = text[1:]  # the first may be cut
    return text[-lines:] if lines > 0 else []


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
    reserves_ports = True

    def __init__(
        self, root: Path, project_dir: Path = PROJECT_DIR, host: str = "127.0.0.1"
    ) -> None:
        self.root = root
        self.project_dir = project_dir
        self.host = host

    def _dir(self, name: str) -> Path:
        return self.root / name

    def _config(self, name: str) -> Path:
        return self._dir(name) / "config.yaml"

    def endpoint(self, spec: ServingSpec) -> str:
        return f"http://{self.host}:{spec.port}" if spec.port else ""

    def grpc_endpoint(self, spec: ServingSpec) -> str:
        return f"{self.host}:{grpc_port(spec.port)}" if spec.port else ""

    def pick_port(self, taken: set[int]) -> int:
        ports = list(range(st.LOCAL_PORT_FIRST, st.LOCAL_PORT_LAST + 1))
        random.shuffle(ports)  # two consoles on one machine rarely pick the same
        for port in ports:
            free = port_is_free(self.host, port) and port_is_free(self.host, grpc_port(port))
            if port not in taken and free:
                return port
        raise RuntimeFailure("no free port left for a new deployment", permanent=False)

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

    def _read(self, name: str, file: str) -> dict | None:
        try:
            return json.loads((self._dir(name) / file).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _alive(self, name: str, state: dict) -> bool:
        pid = state.get("pid")
        return pid is not None and process_alive(pid, str(self._config(name)))

    def logs(self, name: str, tail: int) -> list[str]:
        return read_tail(self._dir(name) / "serving.log", tail)

    def apply(self, spec: ServingSpec) -> str:
        if not spec.port:
            raise RuntimeFailure(f"no port is reserved for {spec.name}", permanent=True)
        try:
            isolation.isolation_required(f"the serving processes of {spec.name}")
        except isolation.IsolationUnavailable as exc:
            raise RuntimeFailure(str(exc), permanent=True) from None
        with self._locked(spec.name):
            self._apply(spec)
        return self.endpoint(spec)

    def revive(self, spec: ServingSpec) -> str:
        """A supervisor that is gone without having given up (killed: its replicas went with
        it) is started again, as a kubelet restarts a pod's containers; its restarts go on.
        One that died within RESTART_STABLE_SECONDS of its start after MAX_RESTARTS_IN_WINDOW
        restarts is not: that failure stands, with its log, rather than a restart loop."""
        with self._locked(spec.name):
            state = self._read(spec.name, "state.json")
            if not state or state.get("replicas") == 0 or self._alive(spec.name, state):
                return ""
            status = self._read(spec.name, "status.json") or {}
            young = time.time() - float(state.get("started_at", 0)) < st.RESTART_STABLE_SECONDS
            restarts = int(status.get("restarts", 0)) + 1
            looping = young and restarts > st.MAX_RESTARTS_IN_WINDOW
            if status.get("failed") or looping or not spec.port:
                return ""  # it gave up on a crashing model, or itself keeps dying
            self._apply(spec, restarts=restarts)
        return "the supervisor of the serving processes was gone (killed?): started it again"

    def _apply(self, spec: ServingSpec, restarts: int = 0) -> None:
        folder = self._dir(spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        state = self._read(spec.name, "state.json")
        running = bool(state and self._alive(spec.name, state) and state["port"] == spec.port)
        if spec.replicas == 0:
            # Nothing serves: no process holds the port, so connections are refused.
            self._stop(spec.name, state)
            write_atomic(folder / "state.json", json.dumps({"port": spec.port, "replicas": 0}))
            (folder / "status.json").unlink(missing_ok=True)
            return
        # A running supervisor rolls to a new config or replica count by itself.
        if spec.autoscaling is not None:
            raise RuntimeFailure(st.LOCAL_NO_AUTOSCALING, permanent=True)
        write_atomic(self._config(spec.name), spec.config_yaml)
        # A canary's or shadow's config beside the primary's (config.yaml.ROLE): the
        # supervisor runs each on a private port behind its traffic proxy.
        for target in spec.traffic:
            write_atomic(folder / f"config.yaml.{target.role}", target.config_yaml)
        desired: dict = {"checksum": spec.config_checksum, "replicas": spec.replicas}
        if spec.traffic:
            desired["traffic"] = [
                {
                    "role": t.role,
                    "version": t.version,
                    "weight": t.weight,
                    "checksum": t.config_checksum,
                }
                for t in spec.traffic
            ]
            desired["traffic_key"] = spec.traffic_key
        if restarts:
            desired["restarts"] = restarts  # counted on by the new supervisor
        write_atomic(folder / "desired.json", json.dumps(desired))
        if running:
            return
        self._stop(spec.name, state)
        (folder / "status.json").unlink(missing_ok=True)
        assert spec.port  # apply() refused a spec without one
        listener = listen(self.host, spec.port)
        try:
            grpc_listener = listen(self.host, grpc_port(spec.port), "gRPC port")
        except RuntimeFailure:
            listener.close()
            raise
        try:
            command = [
                sys.executable,
                "-m",
                "deployments.runtimes.supervisor",
                "--config",
                str(self._config(spec.name)),
                "--listen-fd",
                str(listener.fileno()),
                "--grpc-listen-fd",
                str(grpc_listener.fileno()),
            ]
            pid = spawn_detached(
                command,
                folder / "supervisor.log",
                self.project_dir,
                isolation.host_env(),
                pass_fds=(listener.fileno(), grpc_listener.fileno()),
            )
        finally:
            listener.close()
            grpc_listener.close()
        new_state = {"pid": pid, "port": spec.port, "started_at": time.time()}
        # Atomic: a worker killed here leaves the old file or the new one, never half of one.
        write_atomic(folder / "state.json", json.dumps(new_state))

    def remove(self, name: str) -> None:
        with self._locked(name):
            self._stop(name, self._read(name, "state.json"))
            folder = self._dir(name)
            for file in ("state.json", "config.yaml", "desired.json", "status.json"):
                (folder / file).unlink(missing_ok=True)
            for version_config in folder.glob("config.yaml.*"):
                version_config.unlink(missing_ok=True)
            (folder / "routes.json").unlink(missing_ok=True)

    def _stop(self, name: str, state: dict | None) -> None:
        """Stop the supervisor (it drains its replicas), then anything of this deployment
        still running (started by a worker killed before it wrote the state file)."""
        if state and self._alive(name, state):
            stop_process_group(state["pid"])
        for pid in pids_with_marker(str(self._config(name))):
            stop_process_group(pid)

    def observe(self, spec: ServingSpec) -> Observation:
        state = self._read(spec.name, "state.json")
        if state is None:
            return Observation(st.STOPPED, "no serving process is recorded for this deployment")
        endpoint = self.endpoint(spec)
        if state.get("replicas") == 0:
            if spec.replicas == 0:
                return Observation(st.RUNNING, "scaled to 0 replicas: nothing serves", 0, endpoint)
            return Observation(st.DEPLOYING, "starting the serving processes", 0, endpoint)
        status = self._read(spec.name, "status.json") or {}
        ready = int(status.get("ready", 0))
        # While a rollout is under way the old replicas answer: they count as ready.
        serving = int(status.get("serving", ready))

        def seen(what: str, reason: str = "", ready: int = ready) -> Observation:
            restarts = int(status.get("restarts", 0))
            return Observation(what, reason, ready, endpoint, restarts=restarts)

        if not self._alive(spec.name, state):
            last = status.get("reason") or "their supervisor exited"
            reason = status.get("failed") or f"the serving processes stopped: {last}"
            return seen(st.FAILED, reason, 0)
        rolled = status.get("checksum") == spec.config_checksum
        if not rolled or status.get("replicas") != spec.replicas:
            return seen(st.DEPLOYING, "starting the serving processes", serving)
        if status.get("traffic_key", "") != spec.traffic_key:
            what = "its traffic proxy" if spec.traffic else "the primary alone"
            return seen(st.DEPLOYING, f"switching the endpoint to {what}", serving)
        if status.get("failed"):
            return seen(st.FAILED, status["failed"])
        if ready >= spec.replicas:
            return seen(st.RUNNING, traffic_reason(spec, status.get("versions") or {}))
        if status.get("reason"):  # a replica of this config died: it is being restarted
            why = f"{ready} of {spec.replicas} ready; restarting one after: {status['reason']}"
            return seen(st.DEGRADED, why)
        if status.get("old"):
            why = f"rolling out: {ready} of {spec.replicas} new replicas ready, the old serve"
            return seen(st.DEPLOYING, why, serving)
        return seen(st.DEPLOYING, "waiting for the serving process to load the model")

    def version_endpoints(self, spec: ServingSpec) -> dict[int, str]:
        """Each version's own serving processes (behind the traffic proxy), by version number:
        where its /metrics are read. Empty without canary or shadow."""
        status = self._read(spec.name, "status.json") or {}
        found: dict[int, str] = {}
        ports = {t.role: t.version for t in spec.traffic}
        for role, seen in (status.get("versions") or {}).items():
            port = seen.get("port") if isinstance(seen, dict) else None
            if role in ports and isinstance(port, int) and 0 < port < 65536:
                found[ports[role]] = f"http://127.0.0.1:{port}"
        primary_port = status.get("primary_port")
        if spec.traffic and isinstance(primary_port, int) and 0 < primary_port < 65536:
            found[spec.version] = f"http://127.0.0.1:{primary_port}"
        return found

    def shadow_dropped(self, spec: ServingSpec) -> int | None:
        """The traffic proxy's count (shadow.json), if it is of the spec's shadow."""
        shadow = next((t for t in spec.traffic if t.role == st.SHADOW), None)
        report = self._read(spec.name, "shadow.json") or {}
        if shadow is None or report.get("version") != str(shadow.version):
            return None
        dropped = report.get("dropped")
        return dropped if isinstance(dropped, int) else None

    def list_deployed(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {p.parent.name for p in self.root.glob("*/state.json")}


def traffic_reason(spec: ServingSpec, versions: dict) -> str:
    """What a person should know of the canary and shadow: not ready yet, or failing."""
    notes = []
    for target in spec.traffic:
        seen = versions.get(target.role) or {}
        share = f"its {target.weight}% go to the primary" if target.role == st.CANARY else ""
        if seen.get("failed"):
            notes.append(f"{target.role} v{target.version} failed: {seen['failed']}")
        elif not seen.get("ready"):
            why = f": {seen['reason']}" if seen.get("reason") else ""
            notes.append(
                f"{target.role} v{target.version} is not ready yet{why}"
                + (f" ({share} until it is)" if share else "")
            )
    return "; ".join(notes)
