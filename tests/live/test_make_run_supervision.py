"""`make run` supervises its worker and web server: either one killed comes back on its own
(with a log line), the serving processes stay up meanwhile, and Ctrl-C still stops all."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live.helpers import IRIS_ROW, register_iris, wait_for_status
from tests.support.net import answers, wait_until
from tests.support.processes import alive, serving_pids
from tests.support.runconsole import RunConsole, children_of
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runconsole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunConsole]:
    stack = ConsoleStack(Path(tmp_path_factory.mktemp("supervision-var"))).prepare()
    console = RunConsole(stack)
    try:
        console.start()
        yield console
    finally:
        if console.proc and console.proc.poll() is None:
            console.interrupt()
        stack.stop()


def test_a_killed_worker_and_web_server_come_back(runconsole: RunConsole, tmp_path: Path) -> None:
    stack = runconsole.stack
    register_iris(stack, tmp_path, "supervised", versions=1)
    client = stack.client("deployer")
    response = client.post("/api/deployments/", json={"name": "before", "model": "supervised"})
    assert response.status_code == 202, response.text
    wait_for_status(client, "before", "running")
    serving = serving_pids(stack.var_dir, "before")
    assert serving

    worker = runconsole.child("celery")
    pool = [pid for pid, _ in children_of(worker)]
    assert pool, "the worker's prefork pool"
    os.kill(worker, signal.SIGKILL)
    wait_until(
        lambda: any("celery" in cmd and pid != worker for pid, cmd in _children(runconsole)),
        10,
        "a new worker process",
    )
    assert "The worker process exited (-9); restarting it" in runconsole.log()
    # Its pool processes went with it (orphaned, they kept each other alive before).
    wait_until(lambda: not any(alive(pid) for pid in pool), 10, "the old pool to be stopped")
    response = client.post("/api/deployments/", json={"name": "after", "model": "supervised"})
    assert response.status_code == 202, response.text
    wait_for_status(client, "after", "running")

    web = runconsole.child("gunicorn")
    web_workers = [pid for pid, _ in children_of(web)]
    os.kill(web, signal.SIGKILL)
    wait_until(
        lambda: any("gunicorn" in cmd and pid != web for pid, cmd in _children(runconsole)),
        10,
        "a new web server process",
    )
    wait_until(lambda: answers(f"{stack.url}/accounts/login/"), 60, "the web server to answer")
    assert "The web process exited (-9); restarting it" in runconsole.log()
    wait_until(lambda: not any(alive(pid) for pid in web_workers), 10, "the old web workers")
    assert client.get("/api/deployments/before/").json()["status"] == "running"
    ok = client.post("/api/deployments/before/predict/", json=[IRIS_ROW])
    assert ok.status_code == 200, ok.text
    # The serving processes lived through all of it.
    assert all(alive(pid) for pid in serving)

    runconsole.interrupt()
    wait_until(lambda: not any(alive(pid) for pid in serving), 30, "serving to stop on Ctrl-C")
    assert not _children(runconsole)


def _children(runconsole: RunConsole) -> list[tuple[int, str]]:
    return children_of(runconsole.proc.pid)
