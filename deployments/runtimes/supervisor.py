"""The supervisor of one local deployment: its serving processes (replicas), kept as a kubelet
keeps a pod's containers.

`python -m deployments.runtimes.supervisor --config FOLDER/config.yaml --listen-fd N` runs
detached, one per deployment, started by the local runtime with the deployment's listening
socket (its reserved port) as file descriptor N. Every replica inherits that one socket and
accepts from its queue, so:

- N replicas serve one port, and whichever is free takes the next connection;
- a replica that stops (a rollout, a scale-down) leaves queued connections to the others: the
  queue belongs to the socket, which lives as long as any holder, the supervisor included.

It reads what to run from FOLDER/desired.json (config checksum, replicas; written by the
runtime with config.yaml) and reports in FOLDER/status.json. A change of config is rolled:
the new replicas start, and the old ones are stopped (drained) only once all new ones are
ready. A replica that dies is restarted with backoff; after too many restarts in a window the
supervisor gives up (status `failed`) and, if nothing serves any more, exits.

With `--grpc-listen-fd M` (the deployment's gRPC port) each replica of the primary version also
serves gRPC on a Unix socket in FOLDER/grpc/, and a relay process (grpc_relay.py) started here
hands each connection on M to one of them (gRPC is not split: canary and shadow get none).

Replicas write stdout and stderr into a pipe the supervisor copies to FOLDER/serving.log (the
deployment's log), keeping the end of each replica's output to explain its death.

With a canary or a shadow (desired.json's `traffic`), each version gets a pool of its own on a
private loopback port (the primary's N replicas, one for a canary or shadow, configs
config.yaml and config.yaml.ROLE) and the stable socket is served by the traffic proxy
(`runtimes/proxy.py`), which splits by weight and mirrors to the shadow. The supervisor writes
FOLDER/routes.json with the versions that are ready, so weight goes to a version only once it
answers. Switching to the proxy and back follows the same order as a rollout: the new side
starts, and the old one drains only once the new one is ready. Without canary or shadow the
replicas accept from the stable socket themselves, with no proxy in between.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from deployments import constants as st
from deployments.runtimes.base import last_error_line

DIRECT = "direct"  # replicas on the stable socket (no canary, no shadow)
PRIMARY = "primary"  # the primary version's replicas behind the proxy
PROXY = "proxy"
# A version that leaves the routes keeps serving this long, so the proxy has re-read them.
ROUTE_GRACE_SECONDS = 0.5

POLL_SECONDS = 0.1
DRAIN_SECONDS = 35.0  # serving's graceful timeout (30 s) and some
TAIL_BYTES = 16_384
LOG_MAX_BYTES = 50 * 1024 * 1024  # serving.log is rotated to serving.log.1 past this
PR_SET_PDEATHSIG = 1
SHADOW_NICE = 19
# Not 19 as well: at 19 a busy machine starved the shadow entirely (2,000 copies sent one at a
# time not answered within a minute); at 10 it weighs about a tenth of the primary.
SHADOW_SESSION_NICE = 10


class Replica:
    def __init__(
        self,
        pool: Pool,
        checksum: str,
        proc: subprocess.Popen,
        output: int,
        notify: int,
        grpc_socket: Path | None = None,
    ) -> None:
        self.pool = pool
        self.grpc_socket = grpc_socket
        self.checksum = checksum
        self.proc = proc
        self.output = output
        self.notify = notify
        self.ready = False
        self.stop_deadline: float | None = None
        self.started_at = time.monotonic()
        self.tail = b""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """A replica gets SIGTERM when the supervisor dies, so none outlives it unsupervised."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _idle_priority() -> None:  # pragma: no cover - runs in the child before exec
    """A shadow's replica: `_die_with_parent`, and the lowest CPU priority (SCHED_IDLE where
    the system has it, else nice 19), kept across exec and by its children. It ranks the
    shadow within its session only; `lower_sessions` weighs the session itself."""
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, SHADOW_NICE)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def lower_sessions(pid: int) -> None:
    """A low CPU weight (SHADOW_SESSION_NICE) for the sessions of `pid` and its descendants.
    The sandbox starts the serving process in a session of its own, and Linux (autogroup)
    shares CPU between sessions before it looks at their processes' priorities: without this a
    shadow alone in its session weighs as much as the primary. Our own session (the proxy's)
    is left as it is."""
    ours = os.getsid(0)
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            if os.getsid(current) != ours:
                Path(f"/proc/{current}/autogroup").write_text(f"{SHADOW_SESSION_NICE}\n")
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(child) for child in children)


def describe_exit(returncode: int, output: bytes) -> str:
    """Why a replica ended, in a line that starts with what matters: its last error line (for
    a traceback, the exception) or the signal that killed it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    line = last_error_line(output.decode(errors="replace"))
    if line:
        return f"{line} (exit code {returncode})"
    return f"exited with code {returncode}"


def forget_grpc_socket(replica: Replica) -> None:
    if replica.grpc_socket is not None:
        replica.grpc_socket.unlink(missing_ok=True)


def private_listener() -> socket.socket:
    """A loopback socket on a port of the kernel's choosing, for one version behind the proxy."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


class Pool:
    """The replicas of one config on one listening socket, with their own restart budget."""

    def __init__(
        self, supervisor: Supervisor, name: str, config: Path, listener: socket.socket
    ) -> None:
        self.supervisor = supervisor
        self.name = name
        self.config = config
        self.listener = listener
        self.private = listener is not supervisor.listener
        self.replicas: list[Replica] = []
        self.target = ""
        self.wanted = 0
        self.version = ""
        self.restarts = 0
        self.crashes: list[float] = []
        self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
        self.next_start = 0.0
        self.reason = ""
        self.gave_up = ""
        self.leave_at: float | None = None  # out of the routes: stop serving after the grace

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def want(self, checksum: str, replicas: int) -> None:
        if checksum != self.target:
            # A new config: its own restart budget, and its first start now.
            self.target = checksum
            self.crashes = []
            self.gave_up = ""
            self.reason = ""
            self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
            self.next_start = 0.0
        self.wanted = replicas
        self.leave_at = None

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.stop_deadline is None]

    def ready_count(self) -> int:
        """Ready replicas of the wanted config."""
        return sum(r.ready for r in self.live() if r.checksum == self.target)

    def serving(self) -> bool:
        """Some replica answers (of this config or the one before, still draining in)."""
        return any(r.ready for r in self.live())

    def command(
        self, notify_w: int, grpc_socket: Path | None
    ) -> tuple[list[str], dict[str, str], Path]:
        listen_fd = self.listener.fileno()
        if self.name == PROXY:
            from deployments.runtimes.local import PROJECT_DIR

            command = [sys.executable, "-m", "deployments.runtimes.proxy"]
            command += ["--listen-fd", str(listen_fd), "--notify-fd", str(notify_w)]
            command += ["--routes", str(self.supervisor.folder / "routes.json")]
            # The deployment's processes are found by its config's path on their command line.
            command += ["--deployment", str(self.supervisor.folder / "config.yaml")]
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT_DIR)}
            return command, env, PROJECT_DIR
        return self.supervisor.serving_process(
            self.config, listen_fd=listen_fd, notify_fd=notify_w, grpc_socket=grpc_socket
        )

    def start_replica(self) -> None:
        output_r, output_w = os.pipe()
        notify_r, notify_w = os.pipe()
        grpc_socket = self.supervisor.next_grpc_socket() if self.name in (DIRECT, PRIMARY) else None
        command, env, cwd = self.command(notify_w, grpc_socket)
        before_exec = _idle_priority if self.name == st.SHADOW else _die_with_parent
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output_w,
                stderr=output_w,
                pass_fds=(self.listener.fileno(), notify_w),
                preexec_fn=before_exec,  # noqa: PLW1509 - this process has one thread
            )
        finally:
            os.close(output_w)
            os.close(notify_w)
        replica = Replica(self, self.target, proc, output_r, notify_r, grpc_socket)
        for fd in (output_r, notify_r):
            os.set_blocking(fd, False)
            self.supervisor.selector.register(fd, selectors.EVENT_READ, replica)
        self.replicas.append(replica)

    def stop_replica(self, replica: Replica) -> None:
        if replica.stop_deadline is None:
            forget_grpc_socket(replica)  # new gRPC connections go to the others
            replica.stop_deadline = time.monotonic() + DRAIN_SECONDS
            with contextlib.suppress(ProcessLookupError):
                replica.proc.send_signal(signal.SIGTERM)

    def crashed(self, replica: Replica, returncode: int, now: float) -> None:
        log = self.supervisor.write_log
        self.reason = describe_exit(returncode, replica.tail)
        what = "the traffic proxy" if self.name == PROXY else "a serving process"
        if self.name not in (DIRECT, PRIMARY, PROXY):
            what = f"a serving process of the {self.name} (v{self.version})"
        log(f"[supervisor] {what} ended: {self.reason}\n".encode())
        if now - replica.started_at >= st.RESTART_STABLE_SECONDS:
            self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
        window = now - st.RESTART_WINDOW_SECONDS
        self.crashes = [t for t in self.crashes if t >= window] + [now]
        if len(self.crashes) > st.MAX_RESTARTS_IN_WINDOW:
            self.gave_up = (
                f"{self.reason} (restarted {st.MAX_RESTARTS_IN_WINDOW} times within "
                f"{st.RESTART_WINDOW_SECONDS:g} s, then given up)"
            )
            log(f"[supervisor] giving up: {self.gave_up}\n".encode())
            return
        self.restarts += 1
        self.next_start = max(self.next_start, now + self.backoff)
        log(f"[supervisor] restarting it in {self.backoff:g} s\n".encode())
        self.backoff = min(self.backoff * 2, st.RESTART_BACKOFF_MAX_SECONDS)

    def converge(self) -> None:
        """One step towards `wanted` ready replicas of `target`."""
        if self.leave_at is not None and time.monotonic() >= self.leave_at:
            self.wanted = 0
        live = self.live()
        current = [r for r in live if r.checksum == self.target]
        old = [r for r in live if r.checksum != self.target]
        # Scale down: the ones not ready yet go first.
        for replica in sorted(current, key=lambda r: r.ready)[: max(0, len(current) - self.wanted)]:
            self.stop_replica(replica)
            current.remove(replica)
        if not self.gave_up and time.monotonic() >= self.next_start:
            for _ in range(self.wanted - len(current)):
                self.start_replica()
        # Switch: the old config's replicas drain once every new one is ready.
        if old and sum(r.ready for r in current) >= self.wanted:
            for replica in old:
                self.stop_replica(replica)


class Supervisor:
    def __init__(
        self, folder: Path, listener: socket.socket, grpc_listener: socket.socket | None = None
    ) -> None:
        from deployments.runtimes.local import serving_process

        self.serving_process = serving_process
        self.folder = folder
        self.listener = listener
        self.grpc_listener = grpc_listener
        self.grpc_folder = folder / "grpc"
        self.relay: subprocess.Popen | None = None
        self.serial = 0  # names the replicas' gRPC sockets
        self.restarts_before = 0  # counted by an earlier supervisor (a revived deployment)
        self.log_path = folder / "serving.log"
        self.log = self.log_path.open("ab", buffering=0)
        self.selector = selectors.DefaultSelector()
        self.pools: dict[str, Pool] = {}
        self.target = ""
        self.wanted = 0
        self.traffic: list[dict] = []
        self.traffic_key = ""
        self.applied_key = ""  # the traffic in effect on the stable socket
        self.stopping = False
        self.last_status: dict | None = None
        self.last_routes: dict | None = None

    # What to run ------------------------------------------------------------------------------

    def read_desired(self) -> None:
        try:
            desired = json.loads((self.folder / "desired.json").read_text())
        except (OSError, ValueError):
            return  # being replaced: keep what we had
        self.target = desired["checksum"]
        self.wanted = int(desired["replicas"])
        self.traffic = list(desired.get("traffic") or [])
        self.traffic_key = str(desired.get("traffic_key") or "")
        # (Kept when a later desired.json, from a plain apply, no longer says it.)
        self.restarts_before = max(self.restarts_before, int(desired.get("restarts", 0)))

    # gRPC -------------------------------------------------------------------------------------

    def next_grpc_socket(self) -> Path | None:
        if self.grpc_listener is None:
            return None
        self.serial += 1
        return self.grpc_folder / f"{self.serial}.sock"

    def start_relay(self) -> None:
        """The gRPC relay, (re)started whenever it is not running."""
        if self.grpc_listener is None or (self.relay and self.relay.poll() is None):
            return
        fd = self.grpc_listener.fileno()
        command = [sys.executable, "-m", "deployments.runtimes.grpc_relay"]
        command += ["--listen-fd", str(fd), "--sockets", str(self.grpc_folder)]
        self.relay = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(fd,),
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - this process has one thread
        )

    def stop_relay(self) -> None:
        if self.relay is not None and self.relay.poll() is None:
            self.relay.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.relay.wait(5)

    def pool(self, name: str) -> Pool:
        if name not in self.pools:
            listener = self.listener if name in (DIRECT, PROXY) else private_listener()
            config = self.folder / (
                "config.yaml" if name in (DIRECT, PRIMARY) else f"config.yaml.{name}"
            )
            self.pools[name] = Pool(self, name, config, listener)
        return self.pools[name]

    @property
    def replicas(self) -> list[Replica]:
        return [r for pool in self.pools.values() for r in pool.replicas]

    # Replicas ---------------------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Copy the replicas' output to the log and notice the ones that became ready."""
        for key, _ in self.selector.select(timeout):
            replica: Replica = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                self.selector.unregister(key.fd)
                os.close(key.fd)
                if key.fd == replica.output:
                    replica.output = -1
                else:
                    replica.notify = -1
                continue
            if key.fd == replica.notify:
                if not replica.ready and b"ready" in data and replica.pool.name == st.SHADOW:
                    lower_sessions(replica.proc.pid)  # its processes are all started now
                replica.ready = replica.ready or b"ready" in data
            else:
                self.write_log(data)
                replica.tail = (replica.tail + data)[-TAIL_BYTES:]

    def write_log(self, data: bytes) -> None:
        self.log.write(data)
        if self.log.tell() > LOG_MAX_BYTES:
            self.log.close()
            self.log_path.replace(self.log_path.with_name("serving.log.1"))
            self.log = self.log_path.open("ab", buffering=0)

    def reap(self) -> None:
        now = time.monotonic()
        for replica in self.replicas:
            returncode = replica.proc.poll()
            if returncode is None:
                if replica.stop_deadline is not None and now > replica.stop_deadline:
                    replica.proc.kill()
                continue
            self.pump(0)  # its last words
            forget_grpc_socket(replica)
            for fd in (replica.output, replica.notify):
                if fd >= 0:
                    self.selector.unregister(fd)
                    os.close(fd)
            pool = replica.pool
            pool.replicas.remove(replica)
            if replica.stop_deadline is None and replica.checksum == pool.target:
                pool.crashed(replica, returncode, now)

    def converge(self) -> None:
        """One step towards what desired.json asks, in rollout order (new side ready first)."""
        if self.traffic:
            self.converge_split()
        else:
            self.converge_direct()
        for pool in self.pools.values():
            pool.converge()
        for name, pool in list(self.pools.items()):
            if (pool.private or name == PROXY) and pool.wanted == 0 and not pool.replicas:
                if pool.private:
                    pool.listener.close()
                del self.pools[name]
        self.write_routes()

    def converge_direct(self) -> None:
        direct = self.pool(DIRECT)
        direct.want(self.target, self.wanted)
        proxy = self.pools.get(PROXY)
        if proxy is not None and direct.ready_count() >= self.wanted:
            proxy.want(PROXY, 0)  # it finishes its requests; the replicas take new ones
        if proxy is None or not proxy.replicas:
            for pool in self.pools.values():
                if pool.private:
                    pool.want(pool.target, 0)
            if not any(p.private for p in self.pools.values()):
                self.applied_key = ""

    def converge_split(self) -> None:
        primary = self.pool(PRIMARY)
        primary.want(self.target, self.wanted)
        roles = {PRIMARY}
        for entry in self.traffic:
            pool = self.pool(entry["role"])
            pool.version = str(entry["version"])
            pool.want(entry["checksum"], 1)
            roles.add(entry["role"])
        for name, pool in self.pools.items():
            if pool.private and name not in roles and pool.wanted and pool.leave_at is None:
                pool.leave_at = time.monotonic() + ROUTE_GRACE_SECONDS
        proxy = self.pool(PROXY)
        if primary.serving() or proxy.replicas:
            proxy.want(PROXY, 1)
        direct = self.pools.get(DIRECT)
        if direct is not None and proxy.serving():
            direct.want(direct.target, 0)  # the proxy answers now: the direct replicas drain
        if proxy.serving() and (direct is None or not direct.replicas):
            self.applied_key = self.traffic_key

    def write_routes(self) -> None:
        """routes.json for the proxy: the versions that answer, and their weights."""
        if PROXY not in self.pools:
            return
        primary = self.pools.get(PRIMARY)
        backends: list[dict] = []
        shadow = None
        canary_weight = 0
        for entry in self.traffic:
            pool = self.pools.get(entry["role"])
            if pool is None or not pool.serving() or pool.leave_at is not None:
                continue  # weight goes to a version only once it answers
            if entry["role"] == st.SHADOW:
                shadow = {"version": pool.version, "port": pool.port}
            else:
                canary_weight = int(entry["weight"])
                backends.append(
                    {"version": pool.version, "port": pool.port, "weight": canary_weight}
                )
        if primary is not None and primary.serving():
            backends.insert(
                0, {"version": "primary", "port": primary.port, "weight": 100 - canary_weight}
            )
        routes = {"backends": backends, "shadow": shadow}
        if routes == self.last_routes:
            return
        partial = self.folder / "routes.json.partial"
        partial.write_text(json.dumps(routes))
        partial.replace(self.folder / "routes.json")
        self.last_routes = routes

    # Status -----------------------------------------------------------------------------------

    def write_status(self) -> None:
        serving = self.pools.get(PRIMARY if self.traffic else DIRECT) or self.pool(DIRECT)
        current = [r for r in serving.replicas if r.checksum == serving.target]
        versions = {
            name: {
                "version": pool.version,
                "port": pool.port,
                "ready": pool.ready_count(),
                "failed": pool.gave_up,
                "reason": pool.reason,
            }
            for name, pool in self.pools.items()
            if pool.private and name != PRIMARY
        }
        status = {
            "checksum": serving.target,
            "replicas": self.wanted,
            "ready": serving.ready_count(),
            "pids": sorted(r.proc.pid for r in current if r.stop_deadline is None),
            "old": sum(r.checksum != serving.target for r in serving.replicas),
            # Ready replicas of any config still taking connections (the old ones during a
            # rollout): what answers now.
            "serving": sum(r.ready for r in serving.live()),
            "restarts": self.restarts_before
            + sum(p.restarts for p in self.pools.values() if p.name in (DIRECT, PRIMARY)),
            "reason": serving.reason,
            "failed": serving.gave_up,
            "traffic_key": self.applied_key,
            "versions": versions,
        }
        if PRIMARY in self.pools:
            status["primary_port"] = self.pools[PRIMARY].port
        if status == self.last_status:
            return
        partial = self.folder / "status.json.partial"
        partial.write_text(json.dumps(status))
        partial.replace(self.folder / "status.json")
        self.last_status = status

    # Main loop --------------------------------------------------------------------------------

    def gave_up(self) -> bool:
        serving = self.pools.get(PRIMARY if self.traffic else DIRECT)
        return bool(serving and serving.gave_up)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        if self.grpc_listener is not None:
            # Sockets of an earlier supervisor's replicas answer nobody any more.
            shutil.rmtree(self.grpc_folder, ignore_errors=True)
            self.grpc_folder.mkdir()
        try:
            return self.supervise()
        finally:
            self.stop_relay()

    def supervise(self) -> int:
        while not self.stopping:
            self.read_desired()
            self.reap()
            self.converge()
            self.start_relay()
            self.write_status()
            if self.gave_up() and not self.replicas:
                self.listener.close()  # nothing serves: refuse connections rather than queue
                if self.grpc_listener is not None:
                    self.grpc_listener.close()
                return 1
            self.pump(POLL_SECONDS)
        for replica in self.replicas:
            replica.pool.stop_replica(replica)
        while self.replicas:
            self.pump(POLL_SECONDS)
            self.reap()
        return 0

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True


def main(argv: list[str]) -> int:
    # The config's path, not only the folder: the runtime finds a deployment's processes,
    # this one included, by that path on their command lines.
    folder = Path(argv[argv.index("--config") + 1]).parent
    listener = socket.socket(fileno=int(argv[argv.index("--listen-fd") + 1]))
    grpc_listener = None
    if "--grpc-listen-fd" in argv:
        grpc_listener = socket.socket(fileno=int(argv[argv.index("--grpc-listen-fd") + 1]))
    return Supervisor(folder, listener, grpc_listener).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
