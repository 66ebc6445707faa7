"""Crash safety with real processes: a Celery worker killed with SIGKILL in the middle of a
deploy or an undeploy, and a console restart, leave deployments that converge.

The worker runs tasks with acks_late; what a killed worker held is redone by the periodic
reconcile (tasks.sync_deployment) once the deployment has been stuck for
RECONCILE_STALE_SECONDS (6 s in these stacks), and every task is idempotent.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import Registered, register_iris, wait_for_status
from tests.support.net import wait_until
from tests.support.processes import alive, serving_pids
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

CONVERGE_SECONDS = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """A console of its own: these tests kill and restart its processes."""
    with ConsoleStack(Path(tmp_path_factory.mktemp("crash-var"))) as console:
        yield console


@pytest.fixture(scope="module")
def model(stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_iris(stack, tmp_path_factory.mktemp("crash-models"), "crash-iris")


def _status(client: httpx.Client, name: str) -> str:
    return client.get(f"/api/deployments/{name}/").json()["status"]


def _poll_until_status(client: httpx.Client, name: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = _status(client, name)
        if status == wanted:
            return
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.02)
    raise AssertionError(f"{name} never was {wanted}; saw {seen}")


def _kill_worker(stack: ConsoleStack) -> None:
    stack.stop_process("worker", sig=signal.SIGKILL)


def _state(stack: ConsoleStack, name: str) -> dict | None:
    path = stack.var_dir / "runtime" / name / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_worker_killed_mid_deploy_converges_to_running(stack, model):
    client = stack.client("deployer")
    name = "crash-deploy"
    _kill_worker(stack)  # the task waits in the broker until a worker takes it
    response = client.post("/api/deployments/", json={"name": name, "model": model.model})
    assert response.status_code == 202, response.text
    assert _status(client, name) == "pending"

    stack.start_worker()
    _poll_until_status(client, name, "deploying")  # the worker has claimed the deploy...
    _kill_worker(stack)  # ...and dies in the middle of it
    assert _status(client, name) == "deploying"

    stack.start_worker()
    body = wait_for_status(client, name, {"running", "failed"}, timeout=CONVERGE_SECONDS)
    assert body["status"] == "running", body["status_reason"]
    wait_until(lambda: len(serving_pids(stack.var_dir, name)) == 1, 60, "one serving process")
    assert alive(_state(stack, name)["pid"])  # its supervisor, the one the state file records
    ok = client.post(f"/api/deployments/{name}/predict/", json=[[5.1, 3.5, 1.4, 0.2]])
    assert ok.status_code == 200, ok.text

    client.post(f"/api/deployments/{name}/undeploy/")
    wait_for_status(client, name, {"stopped"}, timeout=CONVERGE_SECONDS)


def test_worker_killed_mid_undeploy_converges_to_stopped(stack, model):
    client = stack.client("deployer")
    name = "crash-undeploy"
    response = client.post("/api/deployments/", json={"name": name, "model": model.model})
    assert response.status_code == 202, response.text
    assert wait_for_status(client, name, {"running", "failed"})["status"] == "running"
    pid = _state(stack, name)["pid"]

    # A serving process that does not stop at once (frozen with SIGSTOP) keeps the undeploy
    # task busy in its stop-and-wait loop: that is where the worker dies.
    os.kill(pid, signal.SIGSTOP)
    received_before = stack.log("worker").count("undeploy_deployment[")
    assert client.post(f"/api/deployments/{name}/undeploy/").status_code == 202
    wait_until(
        lambda: stack.log("worker").count("undeploy_deployment[") > received_before,
        60,
        "the worker to take the undeploy",
    )
    time.sleep(1.0)
    assert _status(client, name) == "stopping"
    _kill_worker(stack)
    assert _status(client, name) == "stopping"
    assert alive(pid), "the serving process should still be there after the worker died"

    stack.start_worker()
    wait_for_status(client, name, {"stopped"}, timeout=CONVERGE_SECONDS)
    assert not alive(pid)
    assert serving_pids(stack.var_dir, name) == []
    assert _state(stack, name) is None
    events = client.get(f"/api/deployments/{name}/events/").json()["results"]
    assert [e["action"] for e in events].count("stopped") == 1


def test_console_restart_finds_serving_processes_again(stack, model):
    client = stack.client("deployer")
    name = "crash-restart"
    response = client.post("/api/deployments/", json={"name": name, "model": model.model})
    assert response.status_code == 202, response.text
    before = wait_for_status(client, name, {"running", "failed"})
    assert before["status"] == "running", before["status_reason"]
    pid = _state(stack, name)["pid"]  # the deployment's supervisor
    replicas = serving_pids(stack.var_dir, name)

    # Everything of the console goes away (the worker hard, the web server politely).
    _kill_worker(stack)
    stack.stop_process("web")
    assert alive(pid)

    stack.start_worker()
    stack.start_web()
    client = stack.client("deployer")
    # Two reconcile periods later the record still says running, with the same process.
    time.sleep(8)
    after = client.get(f"/api/deployments/{name}/").json()
    assert after["status"] == "running", after
    assert after["endpoint"] == before["endpoint"]
    assert alive(pid)
    assert serving_pids(stack.var_dir, name) == replicas
    ok = client.post(f"/api/deployments/{name}/predict/", json=[[5.1, 3.5, 1.4, 0.2]])
    assert ok.status_code == 200, ok.text

    # And it is still under control: undeploy stops that very process.
    assert client.post(f"/api/deployments/{name}/undeploy/").status_code == 202
    wait_for_status(client, name, {"stopped"})
    wait_until(lambda: not alive(pid), 60, "the serving process to stop")


def test_a_serving_process_that_died_while_the_console_was_down_is_started_again(stack, model):
    client = stack.client("deployer")
    name = "crash-gone"
    response = client.post("/api/deployments/", json={"name": name, "model": model.model})
    assert response.status_code == 202, response.text
    running = wait_for_status(client, name, {"running", "failed"})
    assert running["status"] == "running"
    pid = _state(stack, name)["pid"]
    _kill_worker(stack)
    os.killpg(pid, signal.SIGKILL)
    stack.start_worker()
    # The status sync finds its supervisor gone and starts it again, as a kubelet would, and
    # says so (a supervisor that keeps dying young is left failed: tests/unit/test_tasks.py).
    deadline = time.monotonic() + CONVERGE_SECONDS
    while time.monotonic() < deadline:
        body = client.get(f"/api/deployments/{name}/").json()
        if body["status"] == "running" and body["restarts"] == 1:
            break
        time.sleep(0.5)
    assert body["status"] == "running" and body["restarts"] == 1, body
    assert body["endpoint"] == running["endpoint"]
    assert httpx.post(
        f"{body['endpoint']}/predict", json=[[5.1, 3.5, 1.4, 0.2]], timeout=30
    ).is_success
    assert _state(stack, name)["pid"] != pid
    events = client.get(f"/api/deployments/{name}/events/").json()
    events = events["results"] if isinstance(events, dict) else events
    assert any("started it again" in e["message"] for e in events), events
    client.post(f"/api/deployments/{name}/undeploy/")
    wait_for_status(client, name, {"stopped"})
