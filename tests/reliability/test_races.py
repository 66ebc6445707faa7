"""Concurrent requests against a live console: the state machine's guards hold.

Statuses change only by a conditional UPDATE on the current status (Deployment.move_to), so of
racing requests exactly one wins; the others get a 409 or are no-ops, and the runtime ends with
exactly as many serving processes as the final status says.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.api import wait_for_status
from tests.support.net import wait_until
from tests.support.processes import serving_pids

pytestmark = pytest.mark.integration

SETTLED = {"running", "stopped", "failed", "degraded"}


def _parallel(calls: list) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _events(client: httpx.Client, name: str) -> list[dict]:
    return client.get(f"/api/deployments/{name}/events/", params={"limit": 500}).json()["results"]


def test_twenty_concurrent_creates_make_one_deployment(console, iris_model):
    clients = [console.client("deployer") for _ in range(20)]
    body = {"name": "race-create", "model": iris_model.model, "version": 1}
    responses = _parallel([lambda c=c: c.post("/api/deployments/", json=body) for c in clients])

    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 1, codes
    assert codes.count(409) == 19, codes
    for r in responses:
        if r.status_code == 409:
            assert "already exists" in r.json()["detail"]
    admin = console.client("admin")
    listed = admin.get("/api/deployments/", params={"limit": 500}).json()["results"]
    assert [d["name"] for d in listed].count("race-create") == 1
    assert [e["action"] for e in _events(admin, "race-create")].count("create") == 1

    assert wait_for_status(admin, "race-create", SETTLED)["status"] == "running"
    assert len(serving_pids(console.var_dir, "race-create")) == 1
    assert admin.post("/api/deployments/race-create/undeploy/").status_code == 202
    wait_for_status(admin, "race-create", {"stopped"})
    wait_until(lambda: not serving_pids(console.var_dir, "race-create"), 60, "no serving process")


def test_double_clicks_do_nothing_twice(console, iris_model):
    client = console.client("deployer")
    create = {"name": "race-double", "model": iris_model.model, "version": 1}
    assert client.post("/api/deployments/", json=create).status_code == 202
    wait_for_status(client, "race-double", SETTLED)

    # Two rollouts to version 2 at once: one rolls, the other finds nothing left to change or
    # a deployment already on its way; never two rollouts.
    patches = _parallel(
        [lambda: client.patch("/api/deployments/race-double/", json={"version": 2})] * 2
    )
    assert sorted(r.status_code for r in patches) in ([202, 202], [202, 409]), [
        r.text for r in patches
    ]
    assert wait_for_status(client, "race-double", SETTLED)["version"] == 2
    updates = [e for e in _events(client, "race-double") if e["action"] == "update"]
    assert len(updates) == 1, updates

    # Rollback clicked twice: one rollback (to 1), not a rollback and a roll-forward.
    rollbacks = _parallel([lambda: client.post("/api/deployments/race-double/rollback/")] * 2)
    assert sorted(r.status_code for r in rollbacks) == [202, 409], [r.text for r in rollbacks]
    assert wait_for_status(client, "race-double", SETTLED)["version"] == 1

    # Undeploy twice: one undeploy event, both answers fine.
    undeploys = _parallel([lambda: client.post("/api/deployments/race-double/undeploy/")] * 2)
    assert [r.status_code for r in undeploys] == [202, 202]
    wait_for_status(client, "race-double", {"stopped"})
    actions = [e["action"] for e in _events(client, "race-double")]
    assert actions.count("undeploy") == 1
    assert actions.count("rollback") == 1

    # Deploy twice: one deploy; the second is refused because the first is under way.
    deploys = _parallel([lambda: client.post("/api/deployments/race-double/deploy/")] * 2)
    assert sorted(r.status_code for r in deploys) == [202, 409], [r.text for r in deploys]
    conflict = next(r for r in deploys if r.status_code == 409)
    assert "can be deployed only when" in conflict.json()["detail"]
    assert wait_for_status(client, "race-double", SETTLED)["status"] == "running"
    assert [e["action"] for e in _events(client, "race-double")].count("deploy") == 1
    assert len(serving_pids(console.var_dir, "race-double")) == 1

    client.post("/api/deployments/race-double/undeploy/")
    wait_for_status(client, "race-double", {"stopped"})


def test_deploy_and_undeploy_racing_end_consistent(console, iris_model):
    client = console.client("deployer")
    name = "race-flip"
    assert (
        client.post(
            "/api/deployments/", json={"name": name, "model": iris_model.model, "version": 1}
        ).status_code
        == 202
    )
    wait_for_status(client, name, SETTLED)
    for round_ in range(3):
        calls = []
        for i in range(8):
            verb = "undeploy" if (i + round_) % 2 == 0 else "deploy"
            calls.append(lambda verb=verb: client.post(f"/api/deployments/{name}/{verb}/"))
        responses = _parallel(calls)
        assert all(r.status_code in (202, 409) for r in responses), [r.text for r in responses]
        final = wait_for_status(client, name, {"running", "stopped", "failed"}, timeout=120)
        # Let the reconcile pass once more, then the runtime must agree with the record.
        pids = serving_pids(console.var_dir, name)
        if final["status"] == "running":
            assert len(pids) == 1, (final, pids)
            assert final["endpoint"]
            ok = client.post(f"/api/deployments/{name}/predict/", json=[[5.1, 3.5, 1.4, 0.2]])
            assert ok.status_code == 200, ok.text
        else:
            assert final["status"] == "stopped", final
            wait_until(lambda: not serving_pids(console.var_dir, name), 60, "no serving process")
    client.post(f"/api/deployments/{name}/undeploy/")
    wait_for_status(client, name, {"stopped"})
    wait_until(lambda: not serving_pids(console.var_dir, name), 60, "no serving process")
