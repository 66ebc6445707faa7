"""The supervisor of one local deployment: its serving processes (replicas), kept as a kubelet
keeps a pod's containers.

`python -m deployments.runtimes.supervisor --config FOLDER/config.yaml --listen-fd N` runs
detached, one per deployment, started by the local runtime with the deployment's listening
socket (its reserved port) as file descriptor N. Every replica inherits that one socket and
accepts from its queue, so:

- N replicas serve one port, and whichever is free takes the next connection;
- a replica that stops (a rollout, a scale-down) leaves queued connections to the others: the
  queue belongs to the socket, which lives as long as any holder, the supervisor included.

With `--grpc-listen-fd M` (the deployment's gRPC port) each replica also serves gRPC on a Unix
socket in FOLDER/grpc/, and a relay process (grpc_relay.py) started here hands each connection
on M to one of them.

It reads what to run from FOLDER/desired.json (config checksum, replicas; written by the
runtime with config.yaml) and reports in FOLDER/status.json. A change of config is rolled:
the new replicas start, and the old ones are stopped (drained) only once all new ones are
ready. A replica that dies is restarted with backoff; after too many restarts in a window the
supervisor gives up (status `failed`) and, if nothing serves any more, exits.

Replicas write stdout and stderr into a pipe the supervisor copies to FOLDER/serving.log (the
deployment's log), keeping the end of each replica's output to explain its death.
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

POLL_SECONDS = 0.1
DRAIN_SECONDS = 35.0  # serving's graceful timeout (30 s) and some
TAIL_BYTES = 16_384
LOG_MAX_BYTES = 50 * 1024 * 1024  # serving.log is rotated to serving.log.1 past this
PR_SET_PDEATHSIG = 1


class Replica:
    def __init__(
        self,
        checksum: str,
        proc: subprocess.Popen,
        output: int,
        notify: int,
        grpc_socket: Path | None = None,
    ) -> None:
        self.checksum = checksum
        self.grpc_socket = grpc_socket
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
        self.log_path = folder / "serving.log"
        self.log = self.log_path.open("ab", buffering=0)
        self.selector = selectors.DefaultSelector()
        self.replicas: list[Replica] = []
        self.target = ""
        self.wanted = 0
        self.restarts = 0
        self.crashes: list[float] = []
        self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
        self.next_start = 0.0
        self.reason = ""
        self.gave_up = ""
        self.stopping = False
        self.last_status: dict | None = None

    # What to run ------------------------------------------------------------------------------

    def read_desired(self) -> None:
        try:
            desired = json.loads((self.folder / "desired.json").read_text())
        except (OSError, ValueError):
            return  # being replaced: keep what we had
        if desired["checksum"] != self.target:
            # A new config: its own restart budget, and its first start now.
            self.target = desired["checksum"]
            self.crashes = []
            self.gave_up = ""
            self.reason = ""
            self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
            self.next_start = 0.0
        self.wanted = int(desired["replicas"])
        self.restarts = max(self.restarts, int(desired.get("restarts", 0)))

    # Replicas ---------------------------------------------------------------------------------

    def start_replica(self) -> None:
        output_r, output_w = os.pipe()
        notify_r, notify_w = os.pipe()
        listen_fd = self.listener.fileno()
        grpc_socket = None
        if self.grpc_listener is not None:
            self.serial += 1
            grpc_socket = self.grpc_folder / f"{self.serial}.sock"
        command, env, cwd = self.serving_process(
            self.folder / "config.yaml",
            listen_fd=listen_fd,
            notify_fd=notify_w,
            grpc_socket=grpc_socket,
        )
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output_w,
                stderr=output_w,
                pass_fds=(listen_fd, notify_w),
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - this process has one thread
            )
        finally:
            os.close(output_w)
            os.close(notify_w)
        replica = Replica(self.target, proc, output_r, notify_r, grpc_socket)
        for fd in (output_r, notify_r):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, replica)
        self.replicas.append(replica)

    def stop_replica(self, replica: Replica) -> None:
        if replica.stop_deadline is None:
            self.forget_grpc_socket(replica)  # new gRPC connections go to the others
            replica.stop_deadline = time.monotonic() + DRAIN_SECONDS
            with contextlib.suppress(ProcessLookupError):
                replica.proc.send_signal(signal.SIGTERM)

    def forget_grpc_socket(self, replica: Replica) -> None:
        if replica.grpc_socket is not None:
            replica.grpc_socket.unlink(missing_ok=True)

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
        for replica in list(self.replicas):
            returncode = replica.proc.poll()
            if returncode is None:
                if replica.stop_deadline is not None and now > replica.stop_deadline:
                    replica.proc.kill()
                continue
            self.pump(0)  # its last words
            self.forget_grpc_socket(replica)
            for fd in (replica.output, replica.notify):
                if fd >= 0:
                    self.selector.unregister(fd)
                    os.close(fd)
            self.replicas.remove(replica)
            if replica.stop_deadline is None and replica.checksum == self.target:
                self.crashed(replica, returncode, now)

    def crashed(self, replica: Replica, returncode: int, now: float) -> None:
        self.reason = describe_exit(returncode, replica.tail)
        self.write_log(f"[supervisor] a serving process ended: {self.reason}\n".encode())
        if now - replica.started_at >= st.RESTART_STABLE_SECONDS:
            self.backoff = st.RESTART_BACKOFF_FIRST_SECONDS
        window = now - st.RESTART_WINDOW_SECONDS
        self.crashes = [t for t in self.crashes if t >= window] + [now]
        if len(self.crashes) > st.MAX_RESTARTS_IN_WINDOW:
            self.gave_up = (
                f"{self.reason} (restarted {st.MAX_RESTARTS_IN_WINDOW} times within "
                f"{st.RESTART_WINDOW_SECONDS:g} s, then given up)"
            )
            self.write_log(f"[supervisor] giving up: {self.gave_up}\n".encode())
            return
        self.restarts += 1
        self.next_start = max(self.next_start, now + self.backoff)
        self.write_log(f"[supervisor] restarting it in {self.backoff:g} s\n".encode())
        self.backoff = min(self.backoff * 2, st.RESTART_BACKOFF_MAX_SECONDS)

    def converge(self) -> None:
        """One step towards `wanted` ready replicas of `target`."""
        live = [r for r in self.replicas if r.stop_deadline is None]
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

    # Status -----------------------------------------------------------------------------------

    def write_status(self) -> None:
        current = [r for r in self.replicas if r.checksum == self.target]
        status = {
            "checksum": self.target,
            "replicas": self.wanted,
            "ready": sum(r.ready and r.stop_deadline is None for r in current),
            "pids": sorted(r.proc.pid for r in current if r.stop_deadline is None),
            "old": sum(r.checksum != self.target for r in self.replicas),
            # Ready replicas of any config still taking connections (the old ones during a
            # rollout): what answers now.
            "serving": sum(r.ready and r.stop_deadline is None for r in self.replicas),
            "restarts": self.restarts,
            "reason": self.reason,
            "failed": self.gave_up,
        }
        if status == self.last_status:
            return
        partial = self.folder / "status.json.partial"
        partial.write_text(json.dumps(status))
        partial.replace(self.folder / "status.json")
        self.last_status = status

    # Main loop --------------------------------------------------------------------------------

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
            if self.gave_up and not self.replicas:
                self.listener.close()  # nothing serves: refuse connections rather than queue
                if self.grpc_listener is not None:
                    self.grpc_listener.close()
                return 1
            self.pump(POLL_SECONDS)
        for replica in self.replicas:
            self.stop_replica(replica)
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
