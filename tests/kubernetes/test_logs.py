"""What a crashed serving container said, and its logs, read through the API (the emulator).

The test plays the kubelet: it writes the pod's container status (with the termination
message the kubelet fills from the log under FallbackToLogsOnError) and the container log.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from deployments.runtimes.kubernetes import KubernetesRuntime, load_client, manifests, observe
from tests.kubernetes.test_runtime import IMAGE, PODS, make_spec, rolled_out

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

ACCESS = json.dumps(
    {
        "ts": 1764582000.5,
        "method": "GET",
        "path": "/v2/health/ready",
        "route": "/v2/health/ready",
        "status": 200,
        "ms": 0.2,
        "client": "10.0.0.7",
    }
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/serving/model.py", line 88, in predict\n'
    "    return self.estimator.predict_proba(rows)\n"
    "ValueError: X has 3 features, but LogisticRegression is expecting 4 features as input.\n"
)


@pytest.fixture
def runtime(cluster: Cluster) -> KubernetesRuntime:
    return KubernetesRuntime(
        namespace=cluster.namespace, image=IMAGE, api_client=load_client(str(cluster.kubeconfig))
    )


def add_pod(cluster: Cluster, name: str, pod: str, container: dict | None = None) -> None:
    status: dict = {"phase": "Running"}
    if container is not None:
        status["containerStatuses"] = [
            {"name": "serving", "image": IMAGE, "ready": False, "restartCount": 4, **container}
        ]
    cluster.add(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": manifests.selector_labels(name)},
            "spec": {"containers": [{"name": "serving", "image": IMAGE}]},
            "status": status,
        },
    )


def crash_looping(message: str = "") -> dict:
    terminated: dict = {"reason": "Error", "exitCode": 1}
    if message:
        terminated["message"] = message
    return {
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {"terminated": terminated},
    }


def test_reason_is_the_end_of_the_traceback_in_the_termination_message(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=0)
    message = "\n".join([ACCESS] * 5) + "\n" + TRACEBACK
    add_pod(cluster, "iris-prod", "iris-prod-5c8d-x1", crash_looping(message))
    # The log says something else: the kubelet's termination message is what counts.
    cluster.set_log("iris-prod-5c8d-x1", "the current run, still starting\n")

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason.startswith(
        "CrashLoopBackOff: container serving of pod iris-prod-5c8d-x1 keeps exiting (exit code 1)"
    )
    assert seen.reason.endswith(
        "ValueError: X has 3 features, but LogisticRegression is expecting 4 features as input. "
        "(0/1 replicas ready)"
    )
    assert "Traceback (most recent call last):" in seen.reason
    assert "/v2/health/ready" not in seen.reason and '"ts"' not in seen.reason
    assert "still starting" not in seen.reason


def test_without_a_termination_message_the_log_tail_is_the_reason_without_access_lines(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=0)
    add_pod(cluster, "iris-prod", "iris-prod-5c8d-x2", crash_looping())
    lines = [ACCESS] * 40 + ["serving: artifact sha256 mismatch: expected abab, got 1234"]
    cluster.set_log("iris-prod-5c8d-x2", "\n".join(lines + [ACCESS] * 3) + "\n")

    seen = runtime.observe(spec)

    assert seen.status == "failed"
    assert seen.reason == (
        "CrashLoopBackOff: container serving of pod iris-prod-5c8d-x2 keeps exiting "
        "(exit code 1): serving: artifact sha256 mismatch: expected abab, got 1234 "
        "(0/1 replicas ready)"
    )


def test_a_container_that_just_exited_with_an_error_says_why(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    spec = make_spec(replicas=2)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=1)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-5c8d-x3",
        {"state": {"terminated": {"reason": "Error", "exitCode": 2, "message": TRACEBACK}}},
    )

    seen = runtime.observe(spec)

    assert seen.status == "degraded"  # the other replica serves
    assert seen.reason.startswith(
        "Error: container serving of pod iris-prod-5c8d-x3 exited with code 2: Traceback"
    )
    assert "ValueError: X has 3 features" in seen.reason


def test_a_clean_exit_is_not_a_problem(cluster: Cluster, runtime: KubernetesRuntime) -> None:
    """A pod stopped by a rollout exits 0 after draining: nothing to report."""
    spec = make_spec(replicas=1)
    runtime.apply(spec)
    rolled_out(cluster, "iris-prod", ready=1)
    add_pod(
        cluster,
        "iris-prod",
        "iris-prod-old",
        {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
    )
    seen = runtime.observe(spec)
    assert (seen.status, seen.reason) == ("running", "1/1 replicas ready")


def test_logs_are_each_pods_last_lines_prefixed_with_its_name(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(replicas=2))
    runtime.apply(make_spec(name="iris-prod-2", replicas=1))
    add_pod(cluster, "iris-prod", "iris-prod-a")
    add_pod(cluster, "iris-prod", "iris-prod-b")
    add_pod(cluster, "iris-prod-2", "iris-prod-2-a")  # another deployment, a similar name
    cluster.set_log("iris-prod-a", "".join(f"a line {i}\n" for i in range(10)))
    # One line that happens to be JSON stays a line of text.
    cluster.set_log("iris-prod-b", "serving model iris on http://0.0.0.0:8080\n" + ACCESS + "\n")
    cluster.set_log("iris-prod-2-a", "not ours\n")

    lines = runtime.logs("iris-prod", tail=2)

    assert lines == [
        "[iris-prod-a] a line 8",
        "[iris-prod-a] a line 9",
        "[iris-prod-b] serving model iris on http://0.0.0.0:8080",
        f"[iris-prod-b] {ACCESS}",
    ]
    log_requests = [r for r in cluster.requests() if r.subresource == "log"]
    assert {r.params.get("tailLines") for r in log_requests} == {"2"}
    assert {r.params.get("container") for r in log_requests} == {"serving"}


def test_logs_of_a_deployment_without_pods_are_empty(
    cluster: Cluster, runtime: KubernetesRuntime
) -> None:
    runtime.apply(make_spec(replicas=0))
    assert runtime.logs("iris-prod", tail=50) == []
    assert runtime.logs("never-deployed", tail=50) == []


@pytest.mark.parametrize(
    ("text", "tail"),
    [
        ("", ""),
        (f"{ACCESS}\n{ACCESS}\n", ""),
        ("one\n\n  two  \n" + ACCESS, "one | two"),
        ('{"not": "an access line"}\n', '{"not": "an access line"}'),
        ("".join(f"{i}\n" for i in range(9)), "4 | 5 | 6 | 7 | 8"),
    ],
)
def test_error_tail_keeps_the_last_lines_that_are_not_access_lines(text: str, tail: str) -> None:
    assert observe.error_tail(text) == tail
