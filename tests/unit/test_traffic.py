"""Traffic rules without servers: the API's canary/shadow/autoscaling bodies and their errors,
what each change records and enqueues, the proxy's weighted choice, the metrics arithmetic, and
the canary analysis' verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from deployments import constants as st
from deployments.lifecycle import LifecycleError
from deployments.models import Deployment, DeploymentEvent, ModelVersion
from deployments.runtimes import proxy
from deployments.runtimes.local import LocalRuntime
from deployments.runtimes.proxy import Routes
from deployments.runtimes.supervisor import SHADOW_SESSION_NICE, lower_sessions
from deployments.specs import serving_spec
from deployments.tasks import deploy_deployment
from deployments.traffic import analysis
from deployments.traffic.changes import change_traffic

pytestmark = pytest.mark.django_db
DEPLOY = deploy_deployment.name


@pytest.fixture
def api(db: None) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create(username="ops", is_superuser=True))
    return client


@pytest.fixture
def three(make_version: Callable[..., ModelVersion]) -> list[ModelVersion]:
    return [make_version(version=n) for n in (1, 2, 3)]


def _deployment(make_deployment: Callable[..., Deployment], versions: list[ModelVersion]):
    return make_deployment(version=versions[0])


# The API -------------------------------------------------------------------------------------


def test_patch_canary_and_shadow_show_in_traffic_with_who_asked(
    api: APIClient, make_deployment, three, on_commit_tasks
) -> None:
    deployment = _deployment(make_deployment, three)
    with on_commit_tasks() as tasks:
        response = api.patch(
            "/api/deployments/iris-prod/", {"canary": {"version": 2, "weight": 30}}, format="json"
        )
    assert response.status_code == 202, response.json()
    assert response.json()["traffic"] == [
        {"version": 1, "weight": 70, "role": "primary"},
        {"version": 2, "weight": 30, "role": "canary"},
    ]
    assert tasks == [(DEPLOY, deployment.pk)]
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    response = api.patch("/api/deployments/iris-prod/", {"shadow": {"version": 3}}, format="json")
    assert response.json()["traffic"][-1] == {"version": 3, "weight": 0, "role": "shadow"}
    event = DeploymentEvent.objects.filter(deployment=deployment).order_by("id").first()
    assert (event.action, event.actor_name, event.message) == (
        "traffic",
        "ops",
        "canary v2 at 30%",
    )
    spec = serving_spec(Deployment.objects.get(pk=deployment.pk))
    assert [(t.role, t.version, t.weight) for t in spec.traffic] == [
        ("canary", 2, 30),
        ("shadow", 3, 0),
    ]
    assert "version: '2'" in spec.traffic[0].config_yaml


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"canary": {"version": 2, "weight": 101}}, "canary", st.WEIGHT_MESSAGE),
        ({"canary": {"version": 9, "weight": 10}}, "canary", "iris has no version 9"),
        ({"canary": {"version": 1, "weight": 10}}, "detail", "already the primary"),
        ({"shadow": {"version": "two"}}, "shadow", "iris has no version or alias"),
        (
            {"canary": {"version": 2, "analysis": {"steps": [50, 10]}}},
            "canary",
            "increasing order",
        ),
        ({"canary": {"version": 2}, "replicas": 3}, "canary", "request of its own"),
    ],
)
def test_bad_traffic_bodies_get_plain_errors_naming_the_field(
    api: APIClient, make_deployment, three, body: dict, field: str, words: str
) -> None:
    _deployment(make_deployment, three)
    response = api.patch("/api/deployments/iris-prod/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert words in str(response.json())


def test_autoscaling_is_refused_on_the_local_runtime(
    api: APIClient, make_deployment, three
) -> None:
    _deployment(make_deployment, three)
    response = api.patch(
        "/api/deployments/iris-prod/",
        {"autoscaling": {"min": 1, "max": 4, "target_cpu": 70}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"detail": st.LOCAL_NO_AUTOSCALING}


def test_canary_on_kubernetes_without_a_gateway_is_refused(
    make_deployment, three, settings
) -> None:
    settings.DEPLOY_RUNTIME = "kubernetes"
    settings.K8S_GATEWAY = ""
    deployment = _deployment(make_deployment, three)
    with pytest.raises(LifecycleError) as refused:
        change_traffic(deployment, canary=three[1], weight=10)
    assert str(refused.value) == st.NO_GATEWAY
    settings.K8S_GATEWAY = "infra/gw"
    change_traffic(deployment, canary=three[1], weight=10)
    settings.K8S_GATEWAY = ""
    # Autoscaling needs no Gateway.
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    deployment.refresh_from_db()
    change_traffic(deployment, autoscaling={"min": 1, "max": 3, "target_cpu": 50})
    assert serving_spec(deployment).autoscaling is not None


def test_promote_makes_the_canary_primary_and_keeps_rollback(
    api: APIClient, make_deployment, three
) -> None:
    deployment = _deployment(make_deployment, three)
    change_traffic(deployment, canary=three[1], weight=30)
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    response = api.post("/api/deployments/iris-prod/promote/")
    assert response.status_code == 202
    body = response.json()
    assert body["traffic"] == [{"version": 2, "weight": 100, "role": "primary"}]
    assert body["previous_version"] == 1
    # While that change is pending, another traffic change waits.
    response = api.patch("/api/deployments/iris-prod/", {"shadow": {"version": 3}}, format="json")
    assert response.json() == {"detail": "iris-prod is pending; wait until it settles"}
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    assert api.post("/api/deployments/iris-prod/promote/").json() == {
        "detail": "iris-prod has no canary to promote"
    }


def test_ending_the_canary_is_recorded_and_null_is_accepted(
    api: APIClient, make_deployment, three
) -> None:
    deployment = _deployment(make_deployment, three)
    change_traffic(deployment, canary=three[1], weight=30)
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    response = api.patch("/api/deployments/iris-prod/", {"canary": None}, format="json")
    assert response.status_code == 202
    assert response.json()["traffic"] == [{"version": 1, "weight": 100, "role": "primary"}]
    assert DeploymentEvent.objects.filter(message="canary v2 ended").exists()


# The proxy's choice ---------------------------------------------------------------------------


def test_weighted_round_robin_gives_each_version_its_exact_share() -> None:
    routes = Routes()
    routes.load(
        {
            "backends": [
                {"version": "1", "port": 1001, "weight": 70},
                {"version": "2", "port": 1002, "weight": 30},
            ],
            "shadow": None,
        }
    )
    picks = [routes.pick().version for _ in range(1000)]
    assert Counter(picks) == {"1": 700, "2": 300}
    assert Counter(picks[:10]) == {"1": 7, "2": 3}  # spread out, not 7 then 3
    # A version that refused the connection is avoided for that request.
    assert {routes.pick({1002}).version for _ in range(10)} == {"1"}
    routes.load({"backends": [{"version": "1", "port": 1001, "weight": 100}], "shadow": None})
    assert {routes.pick().version for _ in range(10)} == {"1"}


async def _http_server(name: bytes, answer: asyncio.Event | None = None) -> asyncio.Server:
    """A keep-alive HTTP/1.1 server that answers every request with `name`, once `answer` is
    set (at once without one)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                length = proxy._content_length(head) or 0
                await reader.readexactly(length)
                if answer is not None:
                    await answer.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(name), name))
                await writer.drain()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_a_shadow_that_falls_behind_gets_copies_a_few_at_a_time_and_drops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's answers never wait for the shadow; copies go SHADOW_CONNECTIONS at a time,
    then wait in a queue; past it they are dropped, and shadow.json counts every one. While the
    proxy is busy (its own CPU), copies wait even with connections free."""
    monkeypatch.setattr(proxy, "SHADOW_MAX_QUEUED", 3)
    report = tmp_path / "shadow.json"

    async def scenario() -> tuple[list[bytes], dict, dict, dict]:
        release = asyncio.Event()
        primary, shadow = await _http_server(b"primary"), await _http_server(b"shadow", release)
        routes = {
            "backends": [
                {"version": "1", "port": primary.sockets[0].getsockname()[1], "weight": 1}
            ],
            "shadow": {"version": "3", "port": shadow.sockets[0].getsockname()[1]},
        }
        (tmp_path / "routes.json").write_text(json.dumps(routes))
        px = proxy.Proxy(tmp_path / "routes.json")
        px.reload()
        stable = await asyncio.get_running_loop().create_server(
            lambda: proxy.ClientConnection(px), "127.0.0.1", 0
        )
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", stable.sockets[0].getsockname()[1]
        )
        bodies = []

        async def call(n: int) -> None:
            for _ in range(n):
                writer.write(b"POST /predict HTTP/1.1\r\ncontent-length: 2\r\n\r\n[]")
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                bodies.append(await reader.readexactly(proxy._content_length(head) or 0))

        async def settled() -> dict:
            for _ in range(100):
                await asyncio.sleep(0.02)
                px.report_shadow()
                if json.loads(report.read_text())["queued"] == 0:
                    break
            return json.loads(report.read_text())

        await call(10)
        await asyncio.sleep(0.1)  # the copies' connections are made
        px.report_shadow()
        behind = json.loads(report.read_text())
        release.set()
        after = await settled()
        px.busy = True
        await call(2)
        await asyncio.sleep(0.1)
        px.report_shadow()
        busy = json.loads(report.read_text())
        px.busy = False
        px.send_pending(px.routes.shadow)
        assert (await settled())["answered"] == busy["answered"] + 2
        writer.close()
        for server in (stable, primary, shadow):
            server.close()
        return bodies, behind, after, busy

    bodies, behind, after, busy = asyncio.run(scenario())
    assert bodies == [b"primary"] * 12
    connections = proxy.SHADOW_CONNECTIONS
    assert behind == {
        "version": "3",
        "copies": 10,
        "answered": 0,
        "dropped": 10 - connections - 3,
        "queued": connections + 3,
    }
    assert after == {**behind, "answered": connections + 3, "queued": 0}
    assert busy == {**after, "copies": 12, "queued": 2}


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroup here")
def test_a_shadows_own_sessions_get_a_low_weight_and_ours_keeps_its_own() -> None:
    """Linux shares CPU between sessions (autogroups) first: the shadow's sandbox starts one of
    its own, which `lower_sessions` sets to a low weight; the supervisor's is left alone."""
    ours = Path("/proc/self/autogroup").read_text()
    with (
        subprocess.Popen(["sleep", "30"]) as same,
        subprocess.Popen(["sleep", "30"], start_new_session=True) as apart,
    ):
        try:
            lower_sessions(same.pid)
            lower_sessions(apart.pid)
            group = Path(f"/proc/{apart.pid}/autogroup").read_text()
            assert group.endswith(f"nice {SHADOW_SESSION_NICE}\n"), group
            assert Path(f"/proc/{same.pid}/autogroup").read_text() == ours
            assert Path("/proc/self/autogroup").read_text() == ours
        finally:
            same.kill()
            apart.kill()


# Metrics and the analysis ---------------------------------------------------------------------

METRICS = """
serving_requests_total{method="POST",route="/predict",status="200"} 90.0
serving_requests_total{method="POST",route="/predict",status="500"} 10.0
serving_requests_total{method="GET",route="/metrics",status="200"} 7.0
serving_request_duration_seconds_bucket{le="0.001",method="POST",route="/predict",status="200"} 50.0
serving_request_duration_seconds_bucket{le="0.01",method="POST",route="/predict",status="200"} 90.0
serving_request_duration_seconds_bucket{le="+Inf",method="POST",route="/predict",status="200"} 90.0
serving_request_duration_seconds_bucket{le="0.001",method="POST",route="/predict",status="500"} 0.0
serving_request_duration_seconds_bucket{le="0.01",method="POST",route="/predict",status="500"} 0.0
serving_request_duration_seconds_bucket{le="+Inf",method="POST",route="/predict",status="500"} 10.0
"""


def test_counters_and_p99_from_serving_metrics() -> None:
    seen = analysis.parse_counters(METRICS)
    assert (seen["requests"], seen["errors"]) == (100.0, 10.0)  # /metrics is not traffic
    # 99 of 100 within 10 ms? No: 90 are, the p99 lies beyond the last finite bucket.
    assert analysis.quantile_ms(0.99, seen["buckets"]) == 10.0
    assert analysis.quantile_ms(0.5, seen["buckets"]) == 1.0
    assert analysis.quantile_ms(0.25, seen["buckets"]) == pytest.approx(0.5)


def _ready_for_analysis(make_deployment, three, **config: object) -> Deployment:
    deployment = _deployment(make_deployment, three)
    steps = {"steps": [50, 100], "interval_s": 10, "max_error_rate": 0.05, "max_p99_ms": 100}
    change_traffic(deployment, canary=three[1], analysis={**steps, **config})
    Deployment.objects.filter(pk=deployment.pk).update(status=st.RUNNING)
    deployment.refresh_from_db()
    return deployment


def test_analysis_steps_while_the_canary_holds_then_promotes(make_deployment, three) -> None:
    deployment = _ready_for_analysis(make_deployment, three)
    state: dict = {}
    steps = []
    for now, seen in [
        (0, (0.0, 5.0, 0)),  # starts: the first step
        (5, (0.0, 5.0, 30)),  # within the interval: holds
        (10, (0.01, 8.0, 30)),  # the interval is over and the numbers held: next step
        (21, (0.0, 5.0, 40)),  # the last step held: promote
    ]:
        actions = analysis._analyse(deployment, state, seen, float(now))
        steps.append((len(actions), state["analysis"]["step"], state["analysis"].get("done")))
    assert steps == [(1, 0, None), (0, 0, None), (1, 1, None), (1, 1, "promoted")]


def test_analysis_rolls_back_on_the_first_failed_threshold(
    make_deployment, three, on_commit_tasks
) -> None:
    deployment = _ready_for_analysis(make_deployment, three)
    state: dict = {}
    analysis._analyse(deployment, state, (0.0, 0.0, 0), 0.0)
    assert analysis._analyse(deployment, state, (0.2, 5.0, 10), 1.0) == []  # too few to judge
    with on_commit_tasks() as tasks:
        (rollback,) = analysis._analyse(deployment, state, (0.2, 5.0, 10), 2.0)
        rollback()
    assert tasks == [(DEPLOY, deployment.pk)]
    assert state["analysis"]["done"] == "rolled back"
    event = DeploymentEvent.objects.filter(action="analysis-rollback").get()
    assert "error rate 20.00% is over the 5.00% allowed (max_error_rate)" in event.message
    assert "on 20 requests" in event.message
    assert Deployment.objects.get(pk=deployment.pk).canary_weight == 0
    # Over: no further step, whatever comes.
    assert analysis._analyse(deployment, state, (0.0, 1.0, 500), 100.0) == []


def test_analysis_names_the_latency_threshold(make_deployment, three) -> None:
    deployment = _ready_for_analysis(make_deployment, three)
    state: dict = {}
    analysis._analyse(deployment, state, (0.0, 0.0, 0), 0.0)
    analysis._analyse(deployment, state, (0.0, 250.0, 25), 1.0)
    assert (
        "p99 latency 250.0 ms is over the 100 ms allowed (max_p99_ms)"
        in state["analysis"]["reason"]
    )


# The traffic panel's forms ---------------------------------------------------------------------


def test_the_panel_sets_a_canary_for_a_deployer_and_refuses_a_viewer(
    client, make_deployment, three
) -> None:
    deployment = _deployment(make_deployment, three)
    viewer = User.objects.create(username="look")
    client.force_login(viewer)
    url = "/deployments/iris-prod/traffic/canary/"
    assert client.post(url, {"version": three[1].pk, "weight": 30}).status_code == 403
    client.force_login(User.objects.create(username="ops", is_superuser=True))
    page = client.post(url, {"version": three[1].pk, "weight": 30}, follow=True)
    assert "Canary v2 at 30%." in page.content.decode()
    deployment.refresh_from_db()
    assert (deployment.canary_version, deployment.canary_weight) == (three[1], 30)
    page = client.post(url, {"version": three[1].pk, "weight": 130}, follow=True)
    assert st.WEIGHT_MESSAGE in page.content.decode()
    live = client.get("/deployments/iris-prod/traffic/").content.decode()
    assert 'id="traffic-canary" data-version="2" data-weight="30"' in live


def test_the_shadows_dropped_copies_are_read_from_the_proxy_and_shown(
    client, make_deployment, three, tmp_path: Path
) -> None:
    deployment = _deployment(make_deployment, three)
    deployment = change_traffic(deployment, shadow=three[2])
    runtime, spec = LocalRuntime(tmp_path), serving_spec(deployment)
    (tmp_path / deployment.name).mkdir()
    report = tmp_path / deployment.name / "shadow.json"
    assert runtime.shadow_dropped(spec) is None  # nothing counted yet
    counts = {"copies": 50, "answered": 38, "dropped": 12, "queued": 0}
    report.write_text(json.dumps({"version": "3", **counts}))
    assert runtime.shadow_dropped(spec) == 12
    report.write_text(json.dumps({"version": "2", **counts}))
    assert runtime.shadow_dropped(spec) is None  # an earlier shadow's count
    seen = {"role": "shadow", "requests_per_s": 4.0, "error_rate": 0.0, "p99_ms": 2.0}
    state = {"metrics": {"3": {**seen, "copies_dropped": 12}}}
    Deployment.objects.filter(pk=deployment.pk).update(traffic_state=state)
    client.force_login(User.objects.create(username="look"))
    live = client.get("/deployments/iris-prod/traffic/").content.decode()
    assert "copy of each (12 dropped: it fell behind)" in live
