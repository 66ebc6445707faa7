"""120 concurrent API operations over ten deployments: each deployment ends in the state its
last accepted request asked for, and the runtime agrees with the record (the processes that
run, the version that answers)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live.helpers import IRIS_ROW, register_iris, wait_for, wait_for_status
from tests.support.net import wait_until
from tests.support.processes import serving_pids
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

DEPLOYMENTS = [f"busy-{i}" for i in range(10)]
OPERATIONS = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    console = ConsoleStack(Path(tmp_path_factory.mktemp("busy-var")))
    try:
        yield console.start()
    finally:
        console.stop()


def _operation(stack: ConsoleStack, name: str, kind: str, value: int) -> httpx.Response:
    with stack.client("deployer") as client:
        if kind == "version":
            return client.patch(f"/api/deployments/{name}/", json={"version": value})
        if kind == "replicas":
            return client.patch(f"/api/deployments/{name}/", json={"replicas": value})
        return client.post(f"/api/deployments/{name}/{kind}/")


def test_every_deployment_converges_to_its_last_accepted_request(
    stack: ConsoleStack, tmp_path: Path
) -> None:
    versions = register_iris(stack, tmp_path, "busy-iris", versions=2)
    client = stack.client("deployer")
    for name in DEPLOYMENTS:
        body = {"name": name, "model": "busy-iris", "version": versions[0]}
        assert client.post("/api/deployments/", json=body).status_code == 202
    for name in DEPLOYMENTS:
        wait_for_status(client, name, "running", timeout=300)

    rng = random.Random(13)
    kinds = ["version", "version", "replicas", "rollback", "undeploy", "deploy"]
    plan = []
    for _ in range(OPERATIONS):
        kind = rng.choice(kinds)
        value = rng.choice(versions) if kind == "version" else rng.choice([1, 2])
        plan.append((rng.choice(DEPLOYMENTS), kind, value))
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda op: _operation(stack, *op), plan))
    assert all(a.status_code in (202, 400, 409) for a in answers), [
        (a.status_code, a.text[:200]) for a in answers if a.status_code not in (202, 400, 409)
    ]
    accepted = [a.json() for a in answers if a.status_code == 202]
    assert len(accepted) >= len(DEPLOYMENTS)

    # The last accepted request of each deployment (the record's last change) says what it
    # should be; every deployment must get there and the runtime must agree.
    last: dict[str, dict] = {}
    for body in sorted(accepted, key=lambda b: b["updated_at"]):
        last[body["name"]] = body
    for name in DEPLOYMENTS:
        _check_converged(stack, client, name, last.get(name))


def _check_converged(
    stack: ConsoleStack, client: httpx.Client, name: str, wanted: dict | None
) -> None:
    settled = wait_for(
        client, name, lambda b: b["status"] in {"running", "stopped", "failed"}, timeout=300
    )
    if wanted is not None and wanted["status"] in {"stopping", "stopped"}:
        # (A change to a stopped deployment only edits its record: no order to check.)
        assert settled["status"] == "stopped", (name, settled)
        wait_until(lambda: not serving_pids(stack.var_dir, name), 60, f"{name} to stop")
        return
    if wanted is not None:
        assert settled["version"] == wanted["version"], (name, settled, wanted)
        assert settled["replicas"] == wanted["replicas"], (name, settled, wanted)
    body = wait_for(
        client, name, lambda b: b["status"] == "running" and b["replicas_ready"] == b["replicas"]
    )
    wait_until(
        lambda: len(serving_pids(stack.var_dir, name)) == body["replicas"],
        60,
        f"{name} to run {body['replicas']} processes",
    )
    answer = httpx.post(f"{body['endpoint']}/predict", json=[IRIS_ROW], timeout=30)
    assert answer.status_code == 200
    assert answer.headers["model-version"] == str(body["version"])
