"""`manage.py runconsole` (what `make run` starts) under test, and the processes it runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.net import answers, wait_until
from tests.support.stack import ROOT, ConsoleStack


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(stat[1]) == pid and stat[0] not in {"Z", "X"}:
            found.append((int(entry.name), cmdline))
    return found


class RunConsole:
    """`manage.py runconsole` in its own process group, on a stack's settings."""

    def __init__(self, stack: ConsoleStack) -> None:
        self.stack = stack
        self.proc: subprocess.Popen | None = None
        self.output = stack.var_dir / "runconsole.log"

    def start(self) -> None:
        log = self.output.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runconsole", "--port", str(self.stack.port)],
            cwd=ROOT,
            env=self.stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: answers(f"{self.stack.url}/accounts/login/"), 90, "runconsole's web")

    def child(self, word: str) -> int:
        """The pid of runconsole's child whose command line holds `word` (celery, gunicorn)."""
        pids = [pid for pid, cmd in children_of(self.proc.pid) if word in cmd]
        assert len(pids) == 1, children_of(self.proc.pid)
        return pids[0]

    def crash(self) -> None:
        """SIGKILL runconsole, its web server and its worker at once (not the serving
        processes: those run in sessions of their own)."""
        groups = [pid for pid, _ in children_of(self.proc.pid)]  # web and worker: their own
        for group in [self.proc.pid, *groups]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def interrupt(self) -> None:
        """Ctrl-C, as a user stops `make run`."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)

    def log(self) -> str:
        return self.output.read_text(errors="replace")
