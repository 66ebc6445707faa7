"""`make run` (manage.py runconsole) restarted: after a crash it finds the serving processes it
left running and keeps them; after Ctrl-C (which stops them) it starts them again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import register_iris, wait_for_status
from tests.support.net import answers, wait_until
from tests.support.processes import alive, serving_pids
from tests.support.stack import ROOT, ConsoleStack

pytestmark = pytest.mark.integration

NAME = "make-run-iris"


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

    def crash(self) -> None:
        """SIGKILL runconsole, its web server and its worker at once (not the serving
        processes: those run in sessions of their own)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def interrupt(self) -> None:
        """Ctrl-C, as a user stops `make run`."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


@pytest.fixture(scope="module")
def runconsole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunConsole]:
    stack = ConsoleStack(Path(tmp_path_factory.mktemp("make-run-var"))).prepare()
    console = RunConsole(stack)
    try:
        yield console
    finally:
        if console.proc and console.proc.poll() is None:
            console.interrupt()
        stack.stop()


def _pid(stack: ConsoleStack) -> int:
    """The deployment's one serving process (its supervisor's replica)."""
    pids = serving_pids(stack.var_dir, NAME)
    assert len(pids) == 1, pids
    return pids[0]


def test_make_run_keeps_or_restarts_serving_processes(runconsole, tmp_path):
    stack = runconsole.stack
    runconsole.start()
    register_iris(stack, tmp_path, "make-run-model", versions=1)
    client = stack.client("deployer")
    response = client.post("/api/deployments/", json={"name": NAME, "model": "make-run-model"})
    assert response.status_code == 202, response.text
    assert wait_for_status(client, NAME, {"running", "failed"})["status"] == "running"
    first = _pid(stack)

    # A crash of the whole console: the serving process lives on, and the next start keeps it.
    runconsole.crash()
    assert alive(first)
    runconsole.start()
    time.sleep(8)  # two reconcile periods
    body = client.get(f"/api/deployments/{NAME}/").json()
    assert body["status"] == "running", body
    assert serving_pids(stack.var_dir, NAME) == [first]
    assert "Redeploying" not in runconsole.log()
    ok = client.post(f"/api/deployments/{NAME}/predict/", json=[[5.1, 3.5, 1.4, 0.2]])
    assert ok.status_code == 200, ok.text

    # Ctrl-C stops everything, serving included; the next start redeploys what was running.
    runconsole.interrupt()
    wait_until(lambda: not alive(first), 60, "the serving process to stop with the console")
    runconsole.start()
    assert f"Redeploying: {NAME}" in runconsole.log()
    body = wait_for_status(client, NAME, {"running", "failed"}, timeout=120)
    assert body["status"] == "running", body["status_reason"]
    second = _pid(stack)
    assert second != first
    assert serving_pids(stack.var_dir, NAME) == [second]
    runconsole.interrupt()
    wait_until(lambda: not alive(second), 60, "the serving process to stop with the console")
