"""What users ask of deployments (deployments/lifecycle.py): which requests each status allows,
the error a refused one gets, and the one task an accepted one enqueues after commit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deployments import constants as st
from deployments import lifecycle
from deployments.lifecycle import LifecycleError
from deployments.models import Deployment, DeploymentEvent, ModelVersion
from deployments.tasks import deploy_deployment, undeploy_deployment

pytestmark = pytest.mark.django_db

DEPLOY = deploy_deployment.name
UNDEPLOY = undeploy_deployment.name


def events(deployment: Deployment) -> list[tuple[str, str]]:
    return [
        (e.action, e.status)
        for e in DeploymentEvent.objects.filter(deployment=deployment).order_by("id")
    ]


def test_create_records_pending_and_enqueues_one_deploy(
    make_version: Callable[..., ModelVersion], on_commit_tasks
) -> None:
    version = make_version()
    with on_commit_tasks() as tasks:
        deployment = lifecycle.create_deployment(
            name="iris-prod", version=version, replicas=2, cpu_request="250m"
        )
    assert tasks == [(DEPLOY, deployment.pk)]
    assert (deployment.status, deployment.replicas, deployment.cpu_request) == (
        st.PENDING,
        2,
        "250m",
    )
    assert deployment.memory_request == st.DEFAULT_RESOURCES["memory_request"]
    assert events(deployment) == [("create", st.PENDING)]
    assert DeploymentEvent.objects.get(deployment=deployment).message == (
        "created with iris v1 and 2 replica(s)"
    )


def test_create_with_a_taken_name_is_a_conflict_and_enqueues_nothing(
    make_version: Callable[..., ModelVersion], on_commit_tasks
) -> None:
    version = make_version()
    first = lifecycle.create_deployment(name="iris-prod", version=version)
    with on_commit_tasks() as tasks, pytest.raises(LifecycleError) as caught:
        lifecycle.create_deployment(name="iris-prod", version=version)
    assert caught.value.code == 409
    assert str(caught.value) == "a deployment named 'iris-prod' already exists"
    assert tasks == []
    assert Deployment.objects.count() == 1
    assert events(first) == [("create", st.PENDING)]


@pytest.mark.parametrize("status", st.STATUSES)
def test_deploy_from_each_status(
    make_deployment: Callable[..., Deployment], on_commit_tasks, status: str
) -> None:
    deployment = make_deployment(status)
    with on_commit_tasks() as tasks:
        if status in st.DEPLOYABLE:
            lifecycle.deploy(deployment)
        else:
            with pytest.raises(LifecycleError) as caught:
                lifecycle.deploy(deployment)
    if status in st.DEPLOYABLE:
        assert deployment.status == st.PENDING
        assert tasks == [(DEPLOY, deployment.pk)]
        assert events(deployment) == [("deploy", st.PENDING)]
    else:
        assert caught.value.code == 409
        assert str(caught.value) == (
            f"iris-prod is {status}; it can be deployed only when "
            "degraded, failed, running, stopped"
        )
        assert Deployment.objects.get(pk=deployment.pk).status == status
        assert tasks == []
        assert events(deployment) == []


@pytest.mark.parametrize("status", st.STATUSES)
def test_undeploy_from_each_status(
    make_deployment: Callable[..., Deployment], on_commit_tasks, status: str
) -> None:
    deployment = make_deployment(status)
    with on_commit_tasks() as tasks:
        lifecycle.undeploy(deployment)  # never an error: stopped or stopping is a no-op
    if status in st.UNDEPLOYABLE:
        assert deployment.status == st.STOPPING
        assert tasks == [(UNDEPLOY, deployment.pk)]
        assert events(deployment) == [("undeploy", st.STOPPING)]
    else:
        assert deployment.status == status
        assert tasks == []
        assert events(deployment) == []


def test_undeploy_that_loses_a_race_to_a_stop_is_a_no_op(
    make_deployment: Callable[..., Deployment], on_commit_tasks
) -> None:
    deployment = make_deployment(st.RUNNING)
    stale = Deployment.objects.get(pk=deployment.pk)
    lifecycle.undeploy(deployment)
    with on_commit_tasks() as tasks:
        lifecycle.undeploy(stale)  # still believes it is running
    assert stale.status == st.STOPPING
    assert tasks == []
    assert events(deployment) == [("undeploy", st.STOPPING)]


@pytest.mark.parametrize("status", st.STATUSES)
def test_change_of_replicas_from_each_status(
    make_deployment: Callable[..., Deployment], on_commit_tasks, status: str
) -> None:
    deployment = make_deployment(status, replicas=1)
    with on_commit_tasks() as tasks:
        if status in st.IN_FLIGHT:
            with pytest.raises(LifecycleError) as caught:
                lifecycle.change(deployment, replicas=3)
        else:
            lifecycle.change(deployment, replicas=3)
    stored = Deployment.objects.get(pk=deployment.pk)
    if status in st.IN_FLIGHT:
        assert caught.value.code == 409
        assert str(caught.value) == f"iris-prod is {status}; wait until it settles"
        assert (stored.status, stored.replicas, tasks, events(deployment)) == (status, 1, [], [])
    elif status == st.STOPPED:
        # A stopped deployment only changes its record; it starts again on deploy.
        assert (stored.status, stored.replicas, tasks) == (st.STOPPED, 3, [])
        assert events(deployment) == [("update", st.STOPPED)]
    else:
        assert status in st.CHANGEABLE
        assert (stored.status, stored.replicas, tasks) == (
            st.PENDING,
            3,
            [(DEPLOY, deployment.pk)],
        )
        assert events(deployment) == [("update", st.PENDING)]
        assert stored.status_reason == "replicas 1 -> 3"


def test_change_of_version_keeps_the_previous_one(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    on_commit_tasks,
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    deployment = make_deployment(st.RUNNING, version=v1)
    with on_commit_tasks() as tasks:
        lifecycle.change(deployment, version=v2, replicas=2)
    assert (deployment.model_version, deployment.previous_version) == (v2, v1)
    assert deployment.replicas == 2
    assert deployment.status_reason == "version 1 -> 2; replicas 1 -> 2"
    assert tasks == [(DEPLOY, deployment.pk)]


def test_change_of_a_stopped_deployment_only_edits_the_record(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    on_commit_tasks,
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    deployment = make_deployment(st.STOPPED, version=v1)
    with on_commit_tasks() as tasks:
        lifecycle.change(deployment, version=v2)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert (stored.status, stored.model_version, stored.previous_version) == (st.STOPPED, v2, v1)
    assert tasks == []
    event = DeploymentEvent.objects.get(deployment=deployment)
    assert (event.action, event.status, event.message) == ("update", st.STOPPED, "version 1 -> 2")


def test_change_of_the_log_sample_rolls_the_deployment(
    make_deployment: Callable[..., Deployment], on_commit_tasks
) -> None:
    deployment = make_deployment(st.RUNNING)
    assert deployment.log_sample is None  # the console's PREDICTION_LOG_SAMPLE
    stale = Deployment.objects.get(pk=deployment.pk)
    with on_commit_tasks() as tasks:
        lifecycle.change(deployment, log_sample=0.1)
    stored = Deployment.objects.get(pk=deployment.pk)
    assert (stored.status, stored.log_sample, tasks) == (st.PENDING, 0.1, [(DEPLOY, stored.pk)])
    assert stored.status_reason == "log sample default -> 0.1"
    Deployment.objects.filter(pk=stored.pk).update(status=st.RUNNING)  # the rollout is done
    with pytest.raises(LifecycleError, match="changed meanwhile"):
        lifecycle.change(stale, log_sample=0.2)  # decided on the default, since replaced
    assert Deployment.objects.get(pk=deployment.pk).log_sample == 0.1


def test_a_change_that_changes_nothing_records_nothing(
    make_deployment: Callable[..., Deployment], on_commit_tasks
) -> None:
    deployment = make_deployment(st.RUNNING, replicas=2)
    with on_commit_tasks() as tasks:
        lifecycle.change(deployment, version=deployment.model_version, replicas=2)
        lifecycle.change(deployment)
    assert (deployment.status, tasks, events(deployment)) == (st.RUNNING, [], [])


def test_change_to_a_version_of_another_model_is_a_bad_request(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    on_commit_tasks,
) -> None:
    deployment = make_deployment(st.RUNNING, version=make_version("iris"))
    other = make_version("diabetes", job=st.REGRESSION, input_size=10)
    with on_commit_tasks() as tasks, pytest.raises(LifecycleError) as caught:
        lifecycle.change(deployment, version=other)
    assert caught.value.code == 400
    assert str(caught.value) == "version diabetes v1 belongs to another model than iris v1"
    stored = Deployment.objects.get(pk=deployment.pk)
    assert (stored.status, stored.model_version.model.name, tasks) == (st.RUNNING, "iris", [])


def test_two_racing_changes_from_stale_copies_apply_once(
    make_deployment: Callable[..., Deployment], on_commit_tasks
) -> None:
    deployment = make_deployment(st.RUNNING)
    stale = Deployment.objects.get(pk=deployment.pk)
    lifecycle.change(deployment, replicas=3)
    with on_commit_tasks() as tasks, pytest.raises(LifecycleError, match="changed meanwhile"):
        lifecycle.change(stale, replicas=4)
    assert Deployment.objects.get(pk=deployment.pk).replicas == 3
    assert tasks == []


def test_two_racing_edits_of_a_stopped_record_apply_once(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.STOPPED)
    stale = Deployment.objects.get(pk=deployment.pk)
    lifecycle.change(deployment, replicas=3)
    with pytest.raises(LifecycleError, match="changed meanwhile"):
        lifecycle.change(stale, replicas=4)
    assert Deployment.objects.get(pk=deployment.pk).replicas == 3


def test_rollback_without_a_previous_version_is_refused(
    make_deployment: Callable[..., Deployment], on_commit_tasks
) -> None:
    deployment = make_deployment(st.RUNNING)
    with on_commit_tasks() as tasks, pytest.raises(LifecycleError) as caught:
        lifecycle.rollback(deployment)
    assert caught.value.code == 409
    assert str(caught.value) == "iris-prod has no previous version to roll back to"
    assert (tasks, events(deployment)) == ([], [])


def test_rollback_returns_to_the_previous_version(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    on_commit_tasks,
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    deployment = make_deployment(st.DEGRADED, version=v2, previous_version=v1)
    with on_commit_tasks() as tasks:
        lifecycle.rollback(deployment)
    assert (deployment.model_version, deployment.previous_version) == (v1, v2)
    assert deployment.status == st.PENDING
    assert tasks == [(DEPLOY, deployment.pk)]
    assert events(deployment) == [("rollback", st.PENDING)]


@pytest.mark.parametrize("status", st.STATUSES)
def test_rollback_from_each_status(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    on_commit_tasks,
    status: str,
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    deployment = make_deployment(status, version=v2, previous_version=v1)
    with on_commit_tasks() as tasks:
        if status in st.IN_FLIGHT:
            with pytest.raises(LifecycleError, match="wait until it settles"):
                lifecycle.rollback(deployment)
        else:
            lifecycle.rollback(deployment)
    stored = Deployment.objects.get(pk=deployment.pk)
    if status in st.IN_FLIGHT:
        assert (stored.status, stored.model_version, tasks) == (status, v2, [])
    elif status == st.STOPPED:
        assert (stored.status, stored.model_version, tasks) == (st.STOPPED, v1, [])
        assert events(deployment) == [("rollback", st.STOPPED)]
    else:
        assert (stored.status, stored.model_version) == (st.PENDING, v1)
        assert tasks == [(DEPLOY, deployment.pk)]
        assert events(deployment) == [("rollback", st.PENDING)]


def test_resume_of_a_pending_deployment_publishes_its_deploy_again(
    make_deployment: Callable[..., Deployment], broker, on_commit_tasks
) -> None:
    deployment = make_deployment(st.PENDING)
    with on_commit_tasks() as tasks:
        assert lifecycle.resume(deployment)
    assert tasks == []  # published at once: no transaction to wait for
    assert broker.published() == [(DEPLOY, [deployment.pk])]
    assert events(deployment) == []


@pytest.mark.parametrize("status", sorted(st.RESUMABLE))
def test_resume_redeploys_what_the_local_runtime_does_not_run(
    make_deployment: Callable[..., Deployment], broker, on_commit_tasks, status: str
) -> None:
    # The local runtime's folder is empty: it reports the deployment stopped.
    deployment = make_deployment(status)
    with on_commit_tasks() as tasks:
        assert lifecycle.resume(deployment)
    assert deployment.status == st.PENDING
    assert tasks == [(DEPLOY, deployment.pk)]
    assert events(deployment) == [("resume", st.PENDING)]
    assert broker.published() == []


def test_resume_all_leaves_failed_and_stopped_deployments_alone(
    make_version: Callable[..., ModelVersion],
    make_deployment: Callable[..., Deployment],
    broker,
    on_commit_tasks,
) -> None:
    version = make_version()
    for status in st.STATUSES:
        make_deployment(status, name=f"d-{status}", version=version)
    with on_commit_tasks() as tasks:
        resumed = lifecycle.resume_all()
    assert sorted(resumed) == sorted(f"d-{s}" for s in st.RESUMABLE | {st.PENDING})
    assert len(tasks) == len(st.RESUMABLE)
    assert [name for name, _ in broker.published()] == [DEPLOY]
    assert Deployment.objects.get(name="d-failed").status == st.FAILED
    assert Deployment.objects.get(name="d-stopped").status == st.STOPPED
