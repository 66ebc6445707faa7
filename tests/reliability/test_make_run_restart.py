"""`make run` (manage.py runconsole) restarted: after a crash it finds the serving processes it
left running and keeps them; after Ctrl-C (which stops them) it starts them again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import register_iris, wait_for_status
from tests.support.net import wait_until
from tests.support.processes import alive, serving_pids
from tests.support.runconsole import RunConsole
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

NAME = "make-run-iris"


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
