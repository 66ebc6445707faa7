"""Traffic on the local runtime, through the deployment's stable endpoint: a shadow gets a copy
of every request, a canary answers its share, promote drops no request, and the automatic
analysis rolls a failing canary back by itself."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from tests.live.helpers import IRIS_ROW, register_iris, wait_for, wait_for_status
from tests.support.models import iris_classifier, save
from tests.support.net import wait_until
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

MODEL = "traffic-iris"
NEGATIVE_ROW = [-5.1, 3.5, 1.4, 0.2]  # a value the failing version never saw


@pytest.fixture(scope="module")
def versions(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """Two good versions and, last, one that answers 500 on rows with a negative value."""
    folder = tmp_path_factory.mktemp("traffic-models")
    numbers = register_iris(console, folder, MODEL, versions=2)
    # Each feature one-hot encoded by the values seen in training (zeros too, for serving's
    # warm-up): a row with an unseen value fails in the model, as a 500.
    _, X = iris_classifier()
    X = np.vstack([X, np.zeros((1, 4))])
    y = np.arange(len(X)) % 3
    failing = Pipeline(
        [("onehot", OneHotEncoder()), ("lr", LogisticRegression(max_iter=1000))]
    ).fit(X, y)
    path = save(failing, folder / "failing.joblib", "joblib")
    with path.open("rb") as f:
        response = console.client("deployer").post(
            f"/api/models/{MODEL}/versions/",
            files={"file": (path.name, f)},
            data={"model_type": "joblib"},
        )
    assert response.status_code == 201, response.text
    return [*numbers, response.json()["version"]]


@pytest.fixture
def client(console: ConsoleStack) -> Iterator[httpx.Client]:
    with console.client("deployer") as c:
        yield c


def _patch(client: httpx.Client, name: str, body: dict) -> dict:
    response = client.patch(f"/api/deployments/{name}/", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def _events(client: httpx.Client, name: str) -> list[dict]:
    return client.get(f"/api/deployments/{name}/events/").json()["results"]


def _answers(endpoint: str, n: int, row: list[float] = IRIS_ROW) -> Counter:
    """Versions that answered `n` predictions over one keep-alive connection."""
    seen: Counter = Counter()
    with httpx.Client(timeout=30) as http:
        for _ in range(n):
            response = http.post(f"{endpoint}/predict", json=[row])
            assert response.status_code == 200, response.text
            seen[int(response.headers["model-version"])] += 1
    return seen


def _status(console: ConsoleStack, name: str) -> dict:
    try:
        return json.loads((Path(console.var_dir) / "runtime" / name / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _copies(console: ConsoleStack, name: str) -> dict:
    """What the proxy reports of the shadow's copies (shadow.json): sent, answered, dropped."""
    try:
        return json.loads((Path(console.var_dir) / "runtime" / name / "shadow.json").read_text())
    except (OSError, ValueError):
        return {"copies": 0, "answered": 0, "dropped": 0, "queued": 0}


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _served(url: str) -> float:
    """Predictions a version's own serving process has answered (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('serving_requests_total{method="POST",route="/predict"')
    )


class Caller:
    """Predictions without pause, each on a new connection, noting failures and versions."""

    def __init__(self, endpoint: str, rows: list[list[float]] | None = None) -> None:
        self.endpoint = endpoint
        self.rows = rows or [IRIS_ROW]
        self.failures: list[str] = []
        self.versions: Counter = Counter()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=30, limits=limits) as http:
            i = 0
            while not self.stopping.is_set():
                row = self.rows[i % len(self.rows)]
                i += 1
                try:
                    response = http.post(f"{self.endpoint}/predict", json=[row])
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                else:
                    self.versions[int(response.headers["model-version"])] += 1

    def __enter__(self) -> Caller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


@pytest.fixture(scope="module")
def split(console: ConsoleStack, versions: list[int]) -> Iterator[str]:
    """A running deployment of the first version; its endpoint."""
    client = console.client("deployer")
    body = {"name": "split", "model": MODEL, "version": versions[0]}
    response = client.post("/api/deployments/", json=body)
    assert response.status_code == 202, response.text
    yield wait_for_status(client, "split", "running")["endpoint"]
    client.post("/api/deployments/split/undeploy/")


def test_canary_answers_its_share_shadow_gets_every_request_promote_drops_none(
    console: ConsoleStack, client: httpx.Client, versions: list[int], split: str
) -> None:
    v1, v2, v3 = versions  # the shadow is the failing version: nobody sees its answers
    endpoint = split
    body = _patch(
        client, "split", {"canary": {"version": v2, "weight": 30}, "shadow": {"version": v3}}
    )
    assert body["traffic"] == [
        {"version": v1, "weight": 70, "role": "primary"},
        {"version": v2, "weight": 30, "role": "canary"},
        {"version": v3, "weight": 0, "role": "shadow"},
    ]
    wait_for_status(client, "split", "running")

    def ready(role: str) -> bool:
        return bool(_status(console, "split").get("versions", {}).get(role, {}).get("ready"))

    wait_until(lambda: ready("canary") and ready("shadow"), 60, "the canary and the shadow")
    time.sleep(0.5)  # the proxy re-reads its routes every 0.1 s
    shadow_url = f"http://127.0.0.1:{_status(console, 'split')['versions']['shadow']['port']}"
    before = _served(shadow_url)
    copies_before = _copies(console, "split")

    # The canary answers 30% (the model-version header says who answered); the shadow's
    # answers never reach the caller, yet it got a copy of every request. The shadow is best
    # effort (lowest CPU priority; copies wait in a queue, dropped past it): at one request at a
    # time none is dropped, each is answered or still queued, and with CPU to spare (a machine
    # not overloaded) the queue empties within the minute.
    seen = _answers(endpoint, 2000)
    assert set(seen) == {v1, v2}
    assert 0.27 <= seen[v2] / 2000 <= 0.33, seen

    def settled() -> bool:
        now = _copies(console, "split")
        return now["copies"] - copies_before["copies"] >= 2000 and not now["queued"]

    wait_until(settled, 60, "the shadow's 2000 copies answered or dropped")
    now = _copies(console, "split")
    copies = {k: now[k] - copies_before[k] for k in ("copies", "answered", "dropped")}
    # (The copies include the console's health checks through the endpoint.)
    assert copies["answered"] == copies["copies"] and copies["dropped"] == 0, copies
    assert _served(shadow_url) - before == 2000
    # Each version's measured numbers, the shadow's included, are kept on the deployment.
    metrics = wait_for(
        client,
        "split",
        lambda b: all(str(v) in b["traffic_metrics"] for v in (v1, v2, v3)),
    )["traffic_metrics"]
    assert metrics[str(v3)]["role"] == "shadow"
    assert metrics[str(v3)]["copies_dropped"] == 0
    # The shadow's serving process (inside its sandbox) runs at the lowest CPU priority.
    shadow_config = str(Path(console.var_dir) / "runtime" / "split" / "config.yaml.shadow")
    shadow_pids = [
        int(cmdline.parent.name)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline")
        if b"serving" in (text := _read_bytes(cmdline)) and shadow_config.encode() in text
    ]
    assert shadow_pids
    assert {os.sched_getscheduler(pid) for pid in shadow_pids} == {os.SCHED_IDLE}
    # ... and its sandbox's session a low weight (Linux shares CPU between sessions first).
    for pid in shadow_pids:
        group = _read_bytes(Path(f"/proc/{pid}/autogroup"))
        if os.getsid(pid) == pid and group:
            assert group.endswith(b"nice 10\n"), group

    # Promote while requests are in flight: none fails, and the canary ends with all of them.
    with Caller(endpoint) as caller:
        time.sleep(1)
        response = client.post("/api/deployments/split/promote/")
        assert response.status_code == 202, response.text
        wait_for(
            client,
            "split",
            lambda b: b["status"] == "running" and b["traffic"][0]["version"] == v2,
        )
        wait_until(
            lambda: "canary" not in _status(console, "split").get("versions", {"canary": 1}),
            60,
            "the promoted version alone behind the proxy",
        )
        time.sleep(1)
    assert caller.failures == []
    assert caller.versions[v2] > 0
    final = client.get("/api/deployments/split/").json()
    assert final["traffic"] == [
        {"version": v2, "weight": 100, "role": "primary"},
        {"version": v3, "weight": 0, "role": "shadow"},
    ]
    assert _answers(endpoint, 100) == {v2: 100}
    actions = {(e["action"], e["actor"]) for e in _events(client, "split")}
    assert {("traffic", "deployer"), ("promote", "deployer")} <= actions


def test_analysis_rolls_a_failing_canary_back_by_itself(
    client: httpx.Client, versions: list[int], split: str
) -> None:
    failing = versions[-1]
    endpoint = split
    analysis = {"steps": [50, 100], "interval_s": 5, "max_error_rate": 0.05, "max_p99_ms": 2000}
    # (The shadow, if the test before left one, ends in the same request.)
    body = _patch(
        client, "split", {"canary": {"version": failing, "analysis": analysis}, "shadow": None}
    )
    assert body["traffic"][1] == {"version": failing, "weight": 0, "role": "canary"}
    primary = body["traffic"][0]["version"]
    # Callers send some rows the canary fails on; the primary answers them all.
    with Caller(endpoint, rows=[IRIS_ROW, IRIS_ROW, NEGATIVE_ROW]) as caller:
        wait_for(client, "split", lambda b: b["traffic"][1]["weight"] == 50, timeout=60)
        rolled = wait_for(
            client,
            "split",
            lambda b: b["traffic"][1]["weight"] == 0 and b["status"] == "running",
            timeout=60,
        )
    assert caller.versions[failing] > 0  # it did answer its share for a while
    assert all(f.startswith("500") for f in caller.failures), caller.failures[:3]
    assert rolled["traffic"][0] == {"version": primary, "weight": 100, "role": "primary"}
    assert rolled["canary_analysis"] == analysis
    events = _events(client, "split")
    rollback = [e for e in events if e["action"] == "analysis-rollback"]
    assert len(rollback) == 1, events
    assert "max_error_rate" in rollback[0]["message"]
    assert rollback[0]["actor"] == ""  # nobody: the analysis did it
    # It stays at 0: the analysis is over.
    time.sleep(3)
    assert client.get("/api/deployments/split/").json()["traffic"][1]["weight"] == 0
