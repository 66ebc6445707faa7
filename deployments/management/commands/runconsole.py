"""`make run`: the web server, a Celery worker (with beat) and the local runtime, in one command.

The web server and the worker are supervised: one that exits is started again after a backoff
(1 s, doubling up to 30 s; reset once it has run a minute), and the serving processes stay up
meanwhile. Each runs in a process group of its own, killed once it exits, so its own children
(Celery's pool, gunicorn's workers) never outlive it. Ctrl-C stops all of it, serving processes
included; the next start redeploys what was running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand

from console.processes import web_command, worker_command
from deployments.lifecycle import resume_all
from deployments.runtimes import get_runtime

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A process that ran this long before it exited is restarted after the first backoff again.
STABLE_SECONDS = 60.0


class Supervised:
    """One child process of `make run`, restarted with backoff when it exits."""

    def __init__(self, name: str, command: Callable[[], list[str]]) -> None:
        self.name = name
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.backoff = FIRST_BACKOFF_SECONDS
        self.restart_at: float | None = None

    def start(self) -> None:
        # A process group of its own: what it leaves when it dies (a killed worker's pool
        # processes, a killed web server's workers) is stopped with it, not orphaned.
        self.proc = subprocess.Popen(self.command(), cwd=settings.BASE_DIR, process_group=0)
        self.started_at = time.monotonic()
        self.restart_at = None

    def stop_leftovers(self) -> None:
        """Kill what remains of the exited process's group."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def check(self, say: Callable[[str], None]) -> None:
        """Notice an exit and schedule the restart; restart when its time has come."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                say(f"Restarting the {self.name} process.")
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        self.stop_leftovers()
        if now - self.started_at >= STABLE_SECONDS:
            self.backoff = FIRST_BACKOFF_SECONDS
        say(
            f"The {self.name} process exited ({self.proc.returncode}); "
            f"restarting it in {self.backoff:g} s."
        )
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stop_leftovers()


class Command(BaseCommand):
    help = "Run the whole console (web, worker, beat) on this machine until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("CONSOLE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("CONSOLE_PORT", 8000)))

    def handle(self, *args, host: str, port: int, **options) -> None:
        resumed = resume_all()
        if resumed:
            self.stdout.write(f"Redeploying: {', '.join(resumed)}")
        children = [
            Supervised("worker", worker_command),
            Supervised("web", lambda: web_command(host, port)),
        ]
        for child in children:
            child.start()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nThe console is starting at http://{host}:{port}  (Ctrl-C stops it)\n"
            )
        )
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        def say(line: str) -> None:
            self.stderr.write(line)
            self.stderr.flush()

        try:
            while not stopping:
                for child in children:
                    child.check(say)
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping the console and its serving processes...")
            for child in children:
                child.terminate()
            for child in children:
                child.wait(timeout=15)
            runtime = get_runtime()
            if runtime.name == "local":
                for name in runtime.list_deployed():
                    runtime.remove(name)
