"""Deployments that behave like deployments on the local runtime: one endpoint for life, changes
that drop no request, true replicas, restarts of dead serving processes, and their logs."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.helpers import IRIS_ROW, page_text, register_iris, wait_for, wait_for_status
from tests.support.net import wait_until
from tests.support.processes import alive, serving_pids
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

MODEL = "live-iris"
# What `make run` does to the serving processes on Ctrl-C.
STOP_SERVING = """
from deployments.runtimes import get_runtime
runtime = get_runtime()
for name in runtime.list_deployed():
    runtime.remove(name)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    console = ConsoleStack(Path(tmp_path_factory.mktemp("live-var")))
    try:
        yield console.start()
    finally:
        console.stop()


@pytest.fixture(scope="module")
def versions(stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    return register_iris(stack, tmp_path_factory.mktemp("live-models"), MODEL, versions=2)


@pytest.fixture
def client(stack: ConsoleStack) -> Iterator[httpx.Client]:
    with stack.client("deployer") as c:
        yield c


def _deploy(client: httpx.Client, name: str, **extra: object) -> dict:
    response = client.post("/api/deployments/", json={"name": name, "model": MODEL, **extra})
    assert response.status_code == 202, response.text
    return wait_for_status(client, name, "running")


def _patch(client: httpx.Client, name: str, **fields: object) -> None:
    response = client.patch(f"/api/deployments/{name}/", json=fields)
    assert response.status_code == 202, response.text


class Traffic:
    """A client sending predictions to an endpoint without pause, each on a new connection
    (as curl does), noting every failure and the versions that answered."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=30, limits=limits) as http:
            while not self.stopping.is_set():
                try:
                    response = http.post(f"{self.endpoint}/predict", json=[IRIS_ROW])
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                elif not self.versions or self.versions[-1] != response.headers["model-version"]:
                    self.versions.append(response.headers["model-version"])

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


def _answering_replicas(endpoint: str, tries: int = 60) -> set[int]:
    """The instance ids of the serving processes that answer /metrics on `endpoint`, over
    concurrent connections."""
    seen: set[int] = set()

    def scrape() -> None:
        text = httpx.get(f"{endpoint}/metrics", timeout=30).text
        seen.add(int(float(re.search(r"^serving_instance_id (\S+)$", text, re.M).group(1))))

    for _ in range(tries // 6):
        threads = [threading.Thread(target=scrape) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return seen


def test_version_change_and_rollback_keep_the_endpoint_and_drop_no_request(
    client: httpx.Client, versions: list[int]
) -> None:
    first = _deploy(client, "steady", version=versions[0])
    endpoint = first["endpoint"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
    with Traffic(endpoint) as traffic:
        wait_until(lambda: traffic.versions, 30, "the first answers")
        _patch(client, "steady", version=versions[1])
        seen: list[tuple[str, int]] = []

        def switched(b: dict) -> bool:
            seen.append((b["status"], b["replicas_ready"]))
            return b["status"] == "running" and b["version"] == 2

        body = wait_for(client, "steady", switched)
        assert body["endpoint"] == endpoint
        # The old replica answers until the new one is ready: the count never drops to 0.
        assert ("deploying" in {status for status, _ in seen}) and all(r >= 1 for _, r in seen), (
            seen
        )
        wait_until(lambda: traffic.versions[-1] == str(versions[1]), 60, "the new version")
        response = client.post("/api/deployments/steady/rollback/")
        assert response.status_code == 202, response.text
        body = wait_for(client, "steady", lambda b: b["status"] == "running" and b["version"] == 1)
        assert body["endpoint"] == endpoint
        wait_until(lambda: traffic.versions[-1] == str(versions[0]), 60, "the rolled-back one")
    assert traffic.failures == []
    # (While a switch is under way both versions answer for a moment.)
    assert traffic.versions[0] == traffic.versions[-1] == str(versions[0])
    assert str(versions[1]) in traffic.versions


def test_replicas_are_processes_and_zero_serves_nothing(
    stack: ConsoleStack, client: httpx.Client, versions: list[int]
) -> None:
    endpoint = _deploy(client, "scaled")["endpoint"]
    _patch(client, "scaled", replicas=2)
    body = wait_for(client, "scaled", lambda b: b["status"] == "running" and b["replicas"] == 2)
    assert body["replicas_ready"] == 2
    assert body["endpoint"] == endpoint
    wait_until(lambda: len(serving_pids(stack.var_dir, "scaled")) == 2, 60, "one replica to go")
    assert len(_answering_replicas(endpoint)) == len(serving_pids(stack.var_dir, "scaled")) == 2

    _patch(client, "scaled", replicas=0)
    body = wait_for(client, "scaled", lambda b: b["replicas"] == 0 and b["replicas_ready"] == 0)
    body = wait_for_status(client, "scaled", "running")
    assert "nothing serves" in body["status_reason"]
    wait_until(lambda: not serving_pids(stack.var_dir, "scaled"), 60, "every replica to stop")
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{endpoint}/predict", json=[IRIS_ROW], timeout=10)
    assert "nothing serves" in page_text(stack, "/deployments/scaled/")

    _patch(client, "scaled", replicas=1)
    body = wait_for(client, "scaled", lambda b: b["status"] == "running" and b["replicas_ready"])
    assert body["endpoint"] == endpoint
    assert httpx.post(f"{endpoint}/predict", json=[IRIS_ROW], timeout=30).status_code == 200


def test_redeploy_and_console_restart_keep_the_endpoint(
    stack: ConsoleStack, client: httpx.Client, versions: list[int]
) -> None:
    endpoint = _deploy(client, "kept")["endpoint"]
    assert client.post("/api/deployments/kept/undeploy/").status_code == 202
    wait_for_status(client, "kept", "stopped")
    assert client.post("/api/deployments/kept/deploy/").status_code == 202
    assert wait_for_status(client, "kept", "running")["endpoint"] == endpoint

    # A console restart as `make run` does one: everything stops, serving included, and the
    # next start redeploys what was running.
    stack.stop_process("worker")
    stack.stop_process("web")
    stack.manage("shell", "-c", STOP_SERVING)
    wait_until(lambda: not serving_pids(stack.var_dir, "kept"), 60, "serving to stop")
    # As runconsole does: what was running is queued again before the worker starts.
    stack.manage("shell", "-c", "from deployments.lifecycle import resume_all; resume_all()")
    stack.start_worker()
    stack.start_web()
    body = wait_for(client, "kept", lambda b: b["status"] == "running" and bool(_serving(b)))
    assert body["endpoint"] == endpoint


def _serving(body: dict) -> bool:
    try:
        return httpx.post(f"{body['endpoint']}/predict", json=[IRIS_ROW], timeout=5).is_success
    except httpx.HTTPError:
        return False


def test_a_killed_serving_process_is_restarted_and_counted(
    stack: ConsoleStack, client: httpx.Client, versions: list[int]
) -> None:
    endpoint = _deploy(client, "phoenix")["endpoint"]
    [pid] = serving_pids(stack.var_dir, "phoenix")
    os.kill(pid, signal.SIGKILL)
    body = wait_for(client, "phoenix", lambda b: b["restarts"] == 1 and b["status"] == "running")
    assert body["endpoint"] == endpoint
    [new_pid] = serving_pids(stack.var_dir, "phoenix")
    assert new_pid != pid and not alive(pid)
    assert httpx.post(f"{endpoint}/predict", json=[IRIS_ROW], timeout=30).status_code == 200
    page = page_text(stack, "/deployments/phoenix/")
    assert re.search(r'Restarts</dt><dd id="restarts">1<', page)


def test_a_model_failing_every_start_ends_failed_with_its_last_error_line(
    stack: ConsoleStack, client: httpx.Client, versions: list[int]
) -> None:
    deployed = _deploy(client, "doomed")["version"]
    # The artifact changed behind the console's back: serving refuses it on every start.
    version = client.get(f"/api/models/{MODEL}/versions/{deployed}/").json()
    blob = Path(version["uri"].removeprefix("file://"))
    original = blob.read_bytes()
    try:
        blob.write_bytes(original + b"tampered")
        [pid] = serving_pids(stack.var_dir, "doomed")
        os.kill(pid, signal.SIGKILL)
        body = wait_for_status(client, "doomed", "failed", timeout=180)
    finally:
        blob.write_bytes(original)
    assert "sha256" in body["status_reason"], body
    assert '{"ts"' not in body["status_reason"]
    assert body["restarts"] == 3
    log = stack.client("deployer").get("/api/deployments/doomed/logs/?tail=200").json()["lines"]
    assert any("sha256" in line for line in log)


def test_logs_show_what_the_serving_process_wrote(
    stack: ConsoleStack, client: httpx.Client, versions: list[int]
) -> None:
    _deploy(client, "chatty")
    ok = client.post("/api/deployments/chatty/predict/", json=[IRIS_ROW])
    assert ok.status_code == 200

    def lines() -> list[str]:
        response = stack.client("viewer").get("/api/deployments/chatty/logs/?tail=50")
        assert response.status_code == 200, response.text
        return response.json()["lines"]

    wait_until(lambda: any('"path":"/predict"' in line for line in lines()), 30, "access lines")
    assert any(f"model {MODEL} ready" in line for line in lines())
    assert (
        len(stack.client("viewer").get("/api/deployments/chatty/logs/?tail=1").json()["lines"]) == 1
    )
    assert client.get("/api/deployments/chatty/logs/?tail=0").status_code == 400
    assert client.get("/api/deployments/chatty/logs/?tail=x").status_code == 400


def test_grpc_is_served_on_a_stable_port_by_every_replica(
    client: httpx.Client, versions: list[int]
) -> None:
    import numpy as np
    import tritonclient.grpc as triton

    from tests.support.models import iris_classifier

    body = _deploy(client, "by-grpc", version=versions[0], replicas=2)
    port = int(body["endpoint"].rsplit(":", 1)[1])
    assert body["grpc_endpoint"] == f"127.0.0.1:{port - 10000}"
    estimator, X = iris_classifier()

    def infer() -> triton.InferResult:
        # A new channel each time: the relay hands each connection to the next replica.
        with triton.InferenceServerClient(url=body["grpc_endpoint"]) as grpc_client:
            tensor = triton.InferInput("input-0", [3, 4], "FP64")
            tensor.set_data_from_numpy(X[:3])
            return grpc_client.infer("by-grpc", [tensor])

    for _ in range(4):
        got = infer().as_numpy("predict_proba")
        np.testing.assert_allclose(got, estimator.predict_proba(X[:3]), rtol=0, atol=1e-9)

    _patch(client, "by-grpc", version=versions[1])
    after = wait_for(client, "by-grpc", lambda b: b["status"] == "running" and b["version"] == 2)
    assert after["grpc_endpoint"] == body["grpc_endpoint"]
    wait_until(lambda: infer().get_response().model_version == str(versions[1]), 60, "v2")
    assert client.post("/api/deployments/by-grpc/undeploy/").status_code == 202
    wait_for_status(client, "by-grpc", "stopped")
    assert client.get("/api/deployments/by-grpc/").json()["grpc_endpoint"] == ""
