"""Kubernetes objects as the API sends them, mapped to a status and a reason a person can act on
(deployments/runtimes/kubernetes/observe.py)."""

from __future__ import annotations

from deployments import constants as st
from deployments.runtimes.kubernetes.observe import (
    container_problem,
    deployment_problems,
    pod_problems,
    summarize,
)

IMAGE = "registry.example/model-serving:1.2"
ENDPOINT = "http://iris-prod.models.svc:8080"


def no_logs(pod: str, container: str) -> str:
    return ""


def logs_of(tails: dict[tuple[str, str], str]):
    asked: list[tuple[str, str]] = []

    def tail(pod: str, container: str) -> str:
        asked.append((pod, container))
        return tails.get((pod, container), "")

    return tail, asked


def pod(name: str, *containers: dict, conditions: list[dict] | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": "iris-prod"}},
        "status": {
            "phase": "Pending" if conditions else "Running",
            "conditions": conditions or [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": list(containers),
        },
    }


def container(
    *,
    ready: bool = False,
    state: dict | None = None,
    last: dict | None = None,
    restarts: int = 0,
) -> dict:
    return {
        "name": "serving",
        "image": IMAGE,
        "ready": ready,
        "restartCount": restarts,
        "state": state or {"running": {"startedAt": "2026-12-01T09:00:00Z"}},
        "lastState": last or {},
    }


def deployment(
    desired: int = 2,
    *,
    ready: int = 0,
    updated: int | None = None,
    total: int | None = None,
    generation: int = 3,
    observed: int = 3,
    conditions: list[dict] | None = None,
) -> dict:
    status: dict = {
        "observedGeneration": observed,
        "replicas": desired if total is None else total,
        "updatedReplicas": desired if updated is None else updated,
        "conditions": conditions or [],
    }
    if ready:  # the API leaves readyReplicas out when it is 0
        status["readyReplicas"] = ready
    return {
        "metadata": {"name": "iris-prod", "generation": generation},
        "spec": {"replicas": desired},
        "status": status,
    }


OOM_KILLED = container(
    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
    last={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    restarts=4,
)
IMAGE_PULL = container(
    state={
        "waiting": {
            "reason": "ImagePullBackOff",
            "message": f'Back-off pulling image "{IMAGE}"',
        }
    }
)
CRASH_LOOP = container(
    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}},
    last={"terminated": {"reason": "Error", "exitCode": 2}},
    restarts=6,
)
UNSCHEDULABLE = [
    {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory. ",
    }
]


# Containers ------------------------------------------------------------------------------------


def test_oom_killed_says_raise_the_memory_limit() -> None:
    assert container_problem("iris-prod-abc", OOM_KILLED, no_logs) == (
        "OOMKilled: container serving of pod iris-prod-abc ran out of memory "
        "(exceeded its memory limit); raise the memory limit"
    )


def test_oom_killed_while_terminated_now() -> None:
    now = container(state={"terminated": {"reason": "OOMKilled", "exitCode": 137}})
    assert container_problem("p", now, no_logs).startswith("OOMKilled: container serving of pod p")


def test_image_pull_back_off_names_the_image() -> None:
    assert container_problem("p", IMAGE_PULL, no_logs) == (
        f'ImagePullBackOff: image {IMAGE} cannot be pulled: Back-off pulling image "{IMAGE}"'
    )


def test_err_image_pull_without_a_message_has_no_dangling_colon() -> None:
    waiting = container(state={"waiting": {"reason": "ErrImagePull"}})
    assert (
        container_problem("p", waiting, no_logs) == f"ErrImagePull: image {IMAGE} cannot be pulled"
    )


def test_crash_loop_shows_the_exit_code_and_the_log_tail() -> None:
    tail, asked = logs_of({("iris-prod-abc", "serving"): "ConfigError: model.path is missing"})
    assert container_problem("iris-prod-abc", CRASH_LOOP, tail) == (
        "CrashLoopBackOff: container serving of pod iris-prod-abc keeps exiting (exit code 2): "
        "ConfigError: model.path is missing"
    )
    assert asked == [("iris-prod-abc", "serving")]


def test_crash_loop_without_logs_or_exit_code() -> None:
    first = container(state={"waiting": {"reason": "CrashLoopBackOff"}})
    assert container_problem("p", first, no_logs) == (
        "CrashLoopBackOff: container serving of pod p keeps exiting"
    )


def test_other_hard_waiting_reasons_are_problems() -> None:
    config_error = container(
        state={
            "waiting": {
                "reason": "CreateContainerConfigError",
                "message": 'secret "gcs-key" not found',
            }
        }
    )
    assert container_problem("p", config_error, no_logs) == (
        'CreateContainerConfigError: secret "gcs-key" not found'
    )


def test_a_starting_container_is_no_problem() -> None:
    creating = container(state={"waiting": {"reason": "ContainerCreating"}})
    assert container_problem("p", creating, no_logs) is None
    assert container_problem("p", container(), no_logs) is None  # running, not ready yet


def test_a_ready_container_is_no_problem_whatever_happened_before() -> None:
    recovered = container(
        ready=True, last={"terminated": {"reason": "OOMKilled", "exitCode": 137}}, restarts=1
    )
    tail, asked = logs_of({})
    assert container_problem("p", recovered, tail) is None
    assert asked == []


# Pods and Deployments --------------------------------------------------------------------------


def test_unschedulable_pod_says_why() -> None:
    pending = pod("iris-prod-abc", conditions=UNSCHEDULABLE)
    assert pod_problems([pending], no_logs) == [
        "Unschedulable: pod iris-prod-abc fits on no node: "
        "0/3 nodes are available: 3 Insufficient memory."
    ]


def test_pod_problems_lists_each_pod_and_skips_healthy_ones() -> None:
    pods = [
        pod("a", container(ready=True)),
        pod("b", OOM_KILLED),
        pod("c", IMAGE_PULL),
        {"metadata": {"name": "d"}, "status": {}},  # just created: no status yet
    ]
    problems = pod_problems(pods, no_logs)
    assert [p.split(":")[0] for p in problems] == ["OOMKilled", "ImagePullBackOff"]
    assert "pod b" in problems[0]


def test_progress_deadline_exceeded() -> None:
    stuck = deployment(
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-prod-7d9" has timed out progressing.',
            }
        ]
    )
    assert deployment_problems(stuck) == [
        "ProgressDeadlineExceeded: the rollout made no progress in time: "
        'ReplicaSet "iris-prod-7d9" has timed out progressing.'
    ]


def test_replica_failure() -> None:
    quota = deployment(
        conditions=[
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "iris-prod-7d9-x" is forbidden: exceeded quota: compute',
            }
        ]
    )
    assert deployment_problems(quota) == [
        'ReplicaFailure (FailedCreate): pods "iris-prod-7d9-x" is forbidden: exceeded quota: '
        "compute"
    ]


def test_healthy_conditions_are_no_problem() -> None:
    fine = deployment(
        conditions=[
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            {"type": "ReplicaFailure", "status": "False", "reason": "FailedCreate"},
        ]
    )
    assert deployment_problems(fine) == []
    assert deployment_problems({"metadata": {"name": "new"}}) == []


# summarize -------------------------------------------------------------------------------------


def test_all_replicas_ready_is_running() -> None:
    seen = summarize(deployment(2, ready=2), [], ["pulled image"], ENDPOINT)
    assert (seen.status, seen.reason, seen.replicas_ready) == (
        st.RUNNING,
        "2/2 replicas ready",
        2,
    )
    assert (seen.endpoint, seen.events) == (ENDPOINT, ["pulled image"])


def test_scaled_to_zero_is_stopped() -> None:
    seen = summarize(deployment(0), [], [], ENDPOINT)
    assert (seen.status, seen.reason) == (st.RUNNING, "scaled to 0 replicas: nothing serves")


def test_rolling_out_is_deploying() -> None:
    # A new generation the controller has not seen yet.
    seen = summarize(deployment(2, ready=2, generation=4, observed=3), [], [], ENDPOINT)
    assert (seen.status, seen.reason) == (
        st.DEPLOYING,
        "Rolling out: 2/2 replicas ready, 2 updated",
    )
    # Old and new pods side by side during a rolling update.
    seen = summarize(deployment(2, ready=2, updated=1, total=3), [], [], ENDPOINT)
    assert (seen.status, seen.reason) == (
        st.DEPLOYING,
        "Rolling out: 2/2 replicas ready, 1 updated",
    )
    # A brand-new Deployment with no pods yet.
    fresh = {"metadata": {"name": "iris-prod", "generation": 1}, "spec": {"replicas": 1}}
    assert summarize(fresh, [], [], ENDPOINT).status == st.DEPLOYING


def test_rolled_out_but_not_all_ready_is_degraded() -> None:
    seen = summarize(deployment(3, ready=2), [], [], ENDPOINT)
    assert (seen.status, seen.reason, seen.replicas_ready) == (
        st.DEGRADED,
        "2/3 replicas ready",
        2,
    )


def test_a_problem_with_nothing_ready_is_failed_and_leads_the_reason() -> None:
    problems = pod_problems([pod("iris-prod-abc", OOM_KILLED)], no_logs)
    seen = summarize(deployment(1), problems, [], ENDPOINT)
    assert seen.status == st.FAILED
    assert seen.reason.startswith("OOMKilled: container serving of pod iris-prod-abc")
    assert seen.reason.endswith("raise the memory limit (0/1 replicas ready)")


def test_a_problem_while_some_replicas_serve_is_degraded() -> None:
    tail, _ = logs_of({("b", "serving"): "Traceback: MemoryError"})
    problems = pod_problems([pod("a", container(ready=True)), pod("b", CRASH_LOOP)], tail)
    seen = summarize(deployment(2, ready=1), problems, [], ENDPOINT)
    assert seen.status == st.DEGRADED
    assert seen.reason == (
        "CrashLoopBackOff: container serving of pod b keeps exiting (exit code 2): "
        "Traceback: MemoryError (1/2 replicas ready)"
    )


def test_progress_deadline_with_nothing_ready_is_failed() -> None:
    stuck = deployment(
        1,
        updated=1,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-prod-7d9" has timed out progressing.',
            }
        ],
    )
    seen = summarize(stuck, deployment_problems(stuck), [], ENDPOINT)
    assert seen.status == st.FAILED
    assert seen.reason == (
        "ProgressDeadlineExceeded: the rollout made no progress in time: "
        'ReplicaSet "iris-prod-7d9" has timed out progressing. (0/1 replicas ready)'
    )
