"""Reconcile decisions (deployments/tasks.py): what an observation does to a record, and what the
periodic sync does for each status, fresh or stale.

The runtime is the real LocalRuntime on a temporary folder: with no state file it reports a
deployment stopped; with a state file whose process is gone it reports the process's last log
lines; with a process that holds the config but never answers, it reports deploying. Tasks the
decisions publish land on the in-memory broker and are read back, never run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from deployments import constants as st
from deployments import tasks
from deployments.models import Deployment, DeploymentEvent
from deployments.runtimes.base import Observation
from deployments.runtimes.kubernetes.observe import summarize
from deployments.runtimes.local import LocalRuntime

pytestmark = pytest.mark.django_db

DEPLOY = tasks.deploy_deployment.name
UNDEPLOY = tasks.undeploy_deployment.name
WATCH = tasks.watch_deployment.name


def events(deployment: Deployment) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.status, e.message)
        for e in DeploymentEvent.objects.filter(deployment=deployment).order_by("id")
    ]


def stale_age() -> float:
    return settings.RECONCILE_STALE_SECONDS + 60.0


@pytest.fixture
def runtime(tmp_path: Path) -> LocalRuntime:
    return LocalRuntime(tmp_path / "runtime", settings.BASE_DIR)


def no_such_pid() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def write_state(
    runtime: LocalRuntime,
    name: str,
    pid: int,
    log: str = "",
    status: dict | None = None,
    started_at: float = 0.0,
) -> Path:
    """What LocalRuntime.apply leaves behind for a deployment's supervisor (here: not started),
    and what that supervisor last reported (`status`)."""
    folder = runtime.root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text("modelType: joblib\n")
    (folder / "serving.log").write_text(log)
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))
    endpoint = "http://127.0.0.1:9"  # the discard port: nothing answers there
    state = {"pid": pid, "port": 9, "endpoint": endpoint, "checksum": "x"}
    state["started_at"] = started_at
    (folder / "state.json").write_text(json.dumps(state))
    return folder


@pytest.fixture
def stuck_process(runtime: LocalRuntime) -> Iterator[Callable[[str], None]]:
    """A process that holds a deployment's config path, as serving does, and never answers:
    the local runtime sees a serving process still loading its model."""
    started: list[subprocess.Popen] = []

    def start(name: str) -> None:
        config = runtime.root / name / "config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(config)])
        started.append(proc)
        write_state(runtime, name, proc.pid)

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


# record_observation ----------------------------------------------------------------------------


def test_ready_replicas_move_a_deploying_record_to_running(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.DEPLOYING)
    seen = Observation(st.RUNNING, "2/2 replicas ready", replicas_ready=2, endpoint="http://e")
    tasks.record_observation(deployment, seen)
    assert (deployment.status, deployment.status_reason) == (st.RUNNING, "2/2 replicas ready")
    assert (deployment.replicas_ready, deployment.endpoint) == (2, "http://e")
    assert events(deployment) == [("status", st.RUNNING, "2/2 replicas ready")]


@pytest.mark.parametrize("status", sorted(st.ACTIVE))
def test_an_active_deployment_found_stopped_has_failed(
    make_deployment: Callable[..., Deployment], status: str
) -> None:
    deployment = make_deployment(status)
    tasks.record_observation(deployment, Observation(st.STOPPED, "no process"))
    assert deployment.status == st.FAILED
    assert deployment.status_reason == "the serving process is gone: no process"
    expected = [] if status == st.FAILED else [("status", st.FAILED, deployment.status_reason)]
    assert events(deployment) == expected


def test_found_stopped_without_a_reason(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(st.RUNNING)
    tasks.record_observation(deployment, Observation(st.STOPPED))
    assert deployment.status_reason == "the serving process is gone: not found"


def test_a_new_reason_in_the_same_status_is_written_without_an_event(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.DEGRADED, replicas_ready=1, endpoint="http://e")
    tasks.record_observation(deployment, Observation(st.DEGRADED, "1/3 replicas ready", 1))
    assert (deployment.status, deployment.status_reason) == (st.DEGRADED, "1/3 replicas ready")
    assert deployment.endpoint == "http://e"  # an observation without one keeps it
    tasks.record_observation(deployment, Observation(st.DEGRADED, "1/3 replicas ready", 2))
    assert deployment.replicas_ready == 2
    assert events(deployment) == []


def test_the_runtime_s_events_are_recorded(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(st.RUNNING)
    seen = Observation(st.RUNNING, "", events=["pod a restarted", "pod b pulled its image"])
    tasks.record_observation(deployment, seen)
    assert events(deployment) == [
        ("runtime", st.RUNNING, "pod a restarted"),
        ("runtime", st.RUNNING, "pod b pulled its image"),
    ]


@pytest.mark.parametrize("status", [st.STOPPING, st.STOPPED])
def test_a_late_observation_cannot_undo_an_undeploy(
    make_deployment: Callable[..., Deployment], status: str
) -> None:
    deployment = make_deployment(status)
    tasks.record_observation(deployment, Observation(st.RUNNING, "1/1 replicas ready", 1))
    assert Deployment.objects.get(pk=deployment.pk).status == status
    assert events(deployment) == []


def test_a_failed_deployment_that_serves_again_recovers(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.FAILED, status_reason="OOMKilled")
    tasks.record_observation(deployment, Observation(st.DEGRADED, "1/2 replicas ready", 1))
    assert (deployment.status, deployment.replicas_ready) == (st.DEGRADED, 1)


@pytest.mark.parametrize("status", [st.DEPLOYING, st.RUNNING])
def test_a_deployment_scaled_to_zero_has_not_failed(
    make_deployment: Callable[..., Deployment], status: str
) -> None:
    deployment = make_deployment(status, replicas=0)
    scaled = {"metadata": {"generation": 2}, "spec": {"replicas": 0}, "status": {}}
    tasks.record_observation(deployment, summarize(scaled, [], [], "http://e"))
    assert deployment.status != st.FAILED, deployment.status_reason


# sync_deployment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "task"), [(st.PENDING, DEPLOY), (st.STOPPING, UNDEPLOY), (st.DEPLOYING, DEPLOY)]
)
def test_sync_redoes_the_lost_task_of_a_stale_deployment(
    make_deployment: Callable[..., Deployment],
    runtime: LocalRuntime,
    broker,
    status: str,
    task: str,
) -> None:
    deployment = make_deployment(status, age_seconds=stale_age())
    tasks.sync_deployment(deployment, runtime)
    assert broker.published() == [(task, [deployment.pk])]
    assert Deployment.objects.get(pk=deployment.pk).status == status
    assert events(deployment) == []


@pytest.mark.parametrize("status", [st.PENDING, st.STOPPING, st.DEPLOYING])
def test_sync_leaves_work_in_progress_alone_while_it_is_fresh(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime, broker, status: str
) -> None:
    deployment = make_deployment(status, age_seconds=settings.RECONCILE_STALE_SECONDS / 2)
    tasks.sync_deployment(deployment, runtime)
    assert broker.published() == []
    assert Deployment.objects.get(pk=deployment.pk).status == status


def test_sync_leaves_a_stale_deploy_that_a_watch_follows(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime, broker
) -> None:
    deployment = make_deployment(st.DEPLOYING, age_seconds=stale_age())
    cache.set(tasks._watch_key(deployment.pk), time.time(), timeout=60)
    tasks.sync_deployment(deployment, runtime)
    assert broker.published() == []


def test_sync_leaves_a_stopped_deployment_alone(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime, broker
) -> None:
    deployment = make_deployment(st.STOPPED, age_seconds=stale_age())
    tasks.sync_deployment(deployment, runtime)
    assert broker.published() == []
    assert Deployment.objects.get(pk=deployment.pk).status == st.STOPPED
    assert events(deployment) == []


@pytest.mark.parametrize("status", sorted(st.SERVING))
def test_sync_fails_a_serving_deployment_whose_process_is_not_recorded(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime, broker, status: str
) -> None:
    deployment = make_deployment(status, endpoint="http://127.0.0.1:9", replicas_ready=1)
    tasks.sync_deployment(deployment, runtime)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert stored.status == st.FAILED
    assert stored.status_reason == (
        "the serving process is gone: no serving process is recorded for this deployment"
    )
    assert (stored.replicas_ready, stored.endpoint) == (0, "http://127.0.0.1:9")
    assert broker.published() == []


def test_sync_fails_a_running_deployment_whose_process_exited_with_its_log(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime
) -> None:
    log = "".join(f"line {i}\n" for i in range(10)) + "MemoryError: cannot allocate\n"
    # The supervisor's last word: the last error line of the replica that died.
    status = {"ready": 0, "reason": "MemoryError: cannot allocate (exit code 1)", "restarts": 3}
    # (Its supervisor died seconds after it started, restarted 3 times: not started again.)
    write_state(runtime, "iris-prod", no_such_pid(), log, status, started_at=time.time())
    deployment = make_deployment(st.RUNNING, port=20002)
    tasks.sync_deployment(deployment, runtime)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert stored.status == st.FAILED
    assert stored.status_reason == (
        "the serving processes stopped: MemoryError: cannot allocate (exit code 1)"
    )


def test_sync_keeps_the_reason_of_a_failed_deployment(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime
) -> None:
    deployment = make_deployment(st.FAILED, status_reason="OOMKilled: raise the memory limit")
    tasks.sync_deployment(deployment, runtime)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert (stored.status, stored.status_reason) == (
        st.FAILED,
        "OOMKilled: raise the memory limit",
    )
    assert events(deployment) == []


def test_sync_sees_a_process_still_loading_as_deploying(
    make_deployment: Callable[..., Deployment], runtime: LocalRuntime, stuck_process
) -> None:
    stuck_process("iris-prod")
    deployment = make_deployment(st.DEGRADED)
    tasks.sync_deployment(deployment, runtime)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert stored.status == st.DEPLOYING
    # Its supervisor has not reported this config's replicas yet.
    assert stored.status_reason == "starting the serving processes"


def test_sync_all_stops_orphans_and_syncs_every_live_record(
    make_version, make_deployment: Callable[..., Deployment], broker
) -> None:
    runtime = LocalRuntime(settings.LOCAL_RUNTIME_DIR, settings.BASE_DIR)
    write_state(runtime, "orphan", no_such_pid())
    version = make_version()
    running = make_deployment(st.RUNNING, name="running", version=version)
    pending = make_deployment(st.PENDING, name="pending", version=version, age_seconds=stale_age())
    stopped = make_deployment(st.STOPPED, name="stopped", version=version)
    try:
        tasks.sync_all_deployments()
        assert runtime.list_deployed() == set()
        assert Deployment.objects.get(pk=running.pk).status == st.FAILED
        assert broker.published() == [(DEPLOY, [pending.pk])]
        assert Deployment.objects.get(pk=stopped.pk).status == st.STOPPED
    finally:
        runtime.remove("orphan")


# The tasks' own decisions, where they need no serving process ----------------------------------


@pytest.mark.parametrize("status", [s for s in st.STATUSES if s not in (st.PENDING, st.DEPLOYING)])
def test_deploy_task_skips_a_deployment_it_does_not_own(
    make_deployment: Callable[..., Deployment], broker, status: str
) -> None:
    deployment = make_deployment(status)
    tasks.deploy_deployment(deployment.pk)
    assert Deployment.objects.get(pk=deployment.pk).status == status
    assert (events(deployment), broker.published()) == ([], [])


def test_tasks_of_a_deleted_deployment_do_nothing(broker) -> None:
    tasks.deploy_deployment(12345)
    tasks.undeploy_deployment(12345)
    tasks.watch_deployment(12345, time.time())
    assert broker.published() == []


def test_undeploy_task_ends_stopped(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(st.STOPPING, endpoint="http://127.0.0.1:9", replicas_ready=1)
    tasks.undeploy_deployment(deployment.pk)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert (stored.status, stored.endpoint, stored.replicas_ready) == (st.STOPPED, "", 0)
    assert events(deployment) == [("stopped", st.STOPPED, "")]


@pytest.mark.parametrize("status", [s for s in st.STATUSES if s != st.STOPPING])
def test_undeploy_task_ignores_a_deployment_that_is_not_stopping(
    make_deployment: Callable[..., Deployment], status: str
) -> None:
    deployment = make_deployment(status)
    tasks.undeploy_deployment(deployment.pk)
    assert Deployment.objects.get(pk=deployment.pk).status == status
    assert events(deployment) == []


@pytest.fixture
def settings_runtime(stuck_process, runtime: LocalRuntime, settings) -> Callable[[str], None]:
    """The stuck process, in the folder of the runtime `get_runtime()` builds from settings."""
    settings.LOCAL_RUNTIME_DIR = runtime.root
    return stuck_process


def test_watch_follows_a_deploy_in_time_and_publishes_the_next_look(
    make_deployment: Callable[..., Deployment], settings_runtime, broker
) -> None:
    settings_runtime("iris-prod")
    deployment = make_deployment(st.DEPLOYING)
    deadline = time.time() + 600
    tasks.watch_deployment(deployment.pk, deadline)
    assert Deployment.objects.get(pk=deployment.pk).status == st.DEPLOYING
    assert broker.published() == [(WATCH, [deployment.pk, deadline])]
    assert cache.get(tasks._watch_key(deployment.pk)) is not None


def test_watch_fails_a_deploy_past_its_deadline(
    make_deployment: Callable[..., Deployment], settings_runtime, broker
) -> None:
    settings_runtime("iris-prod")
    deployment = make_deployment(st.DEPLOYING)
    tasks.watch_deployment(deployment.pk, time.time() - 1)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert stored.status == st.FAILED
    assert stored.status_reason == (
        f"not ready within {settings.DEPLOY_TIMEOUT_SECONDS} s: starting the serving processes"
    )
    assert broker.published() == []


def test_a_supervisor_that_gave_up_or_serves_nothing_is_not_revived(
    runtime: LocalRuntime, make_deployment: Callable[..., Deployment]
) -> None:
    from deployments.specs import serving_spec

    spec = serving_spec(make_deployment(port=20001))
    write_state(runtime, spec.name, no_such_pid(), status={"failed": "it crashed 4 times"})
    assert runtime.revive(spec) == ""
    state = {"port": 20001, "replicas": 0}
    (runtime.root / spec.name / "state.json").write_text(json.dumps(state))
    assert runtime.revive(spec) == ""
    (runtime.root / spec.name / "state.json").unlink()
    assert runtime.revive(spec) == ""  # never started here
