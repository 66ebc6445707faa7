"""Kubernetes objects as a readable status: pod and Deployment states mapped to what a person
should read (OOMKilled, an image that cannot be pulled, a crash loop with its last log lines).

Pure functions of the API's plain JSON data, so they are tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from deployments import constants as st
from deployments.runtimes.base import Observation, is_access_log_line

# (pod name, container name) -> the container's last log lines, or "".
LogTail = Callable[[str, str], str]
# Lines of error output a reason shows (the end of a traceback, or serving's one-line error).
REASON_LINES = 5

# Waiting reasons that will not clear up by themselves.
HARD_WAITING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


def pod_problems(pods: list[dict], log_tail: LogTail) -> list[str]:
    """A readable line for each pod that cannot be scheduled or whose container is stuck."""
    problems: list[str] = []
    for pod in pods:
        pod_name = pod.get("metadata", {}).get("name", "?")
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                problems.append(
                    f"Unschedulable: pod {pod_name} fits on no node: "
                    f"{condition.get('message', '').strip()}"
                )
        for container in status.get("containerStatuses") or []:
            problem = container_problem(pod_name, container, log_tail)
            if problem:
                problems.append(problem)
    return problems


def container_problem(pod_name: str, container: dict, log_tail: LogTail) -> str | None:
    if container.get("ready"):
        return None  # serving now, whatever happened before (lastState) is history
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated") or {}
    terminated = state.get("terminated") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    if "OOMKilled" in (last.get("reason"), terminated.get("reason")):
        return (
            f"OOMKilled: container {container.get('name')} of pod {pod_name} ran out of "
            "memory (exceeded its memory limit); raise the memory limit"
        )
    if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return (
            f"{reason}: image {container.get('image')} cannot be pulled: "
            f"{waiting.get('message', '').strip()}"
        ).rstrip(": ")
    if reason == "CrashLoopBackOff":
        exit_code = last.get("exitCode")
        text = f"CrashLoopBackOff: container {container.get('name')} of pod {pod_name} "
        text += "keeps exiting"
        if exit_code is not None:
            text += f" (exit code {exit_code})"
        tail = crash_output(pod_name, container, last, log_tail)
        return f"{text}: {tail}" if tail else text
    if terminated and terminated.get("exitCode", 0) != 0:
        # Between a crash and the kubelet's back-off: the same story, told as it happens.
        text = f"{terminated.get('reason') or 'Error'}: container {container.get('name')} of pod "
        text += f"{pod_name} exited with code {terminated.get('exitCode')}"
        tail = crash_output(pod_name, container, terminated, log_tail)
        return f"{text}: {tail}" if tail else text
    if reason in HARD_WAITING:
        return f"{reason}: {waiting.get('message', '').strip()}".rstrip(": ")
    return None


def crash_output(pod_name: str, container: dict, terminated: dict, log_tail: LogTail) -> str:
    """The end of what the crashed container wrote: its termination message (the kubelet
    fills it from the log with FallbackToLogsOnError), else the tail of its log."""
    tail = error_tail(terminated.get("message") or "")
    return tail or log_tail(pod_name, container.get("name", ""))


def error_tail(text: str, lines: int = REASON_LINES) -> str:
    """The last `lines` lines of error output, joined with " | ": access-log lines (serving
    writes one JSON object per request) and blank lines are not the reason for anything."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in kept if not is_access_log_line(line)]
    return " | ".join(kept[-lines:])


def deployment_problems(deployment: dict) -> list[str]:
    problems = []
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        reason, message = condition.get("reason"), (condition.get("message") or "").strip()
        if condition.get("type") == "Progressing" and reason == "ProgressDeadlineExceeded":
            problems.append(
                f"ProgressDeadlineExceeded: the rollout made no progress in time: {message}"
            )
        elif condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            problems.append(f"ReplicaFailure ({reason}): {message}")
    return problems


def summarize(
    deployment: dict, problems: list[str], events: list[str], endpoint: str
) -> Observation:
    """Map counts and problems to a status: running, deploying, degraded or failed."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    generation = int(deployment.get("metadata", {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    rolled_out = observed >= generation and updated >= desired and total <= desired
    counts = f"{ready}/{desired} replicas ready"

    def observation(state: str, reason: str) -> Observation:
        return Observation(
            status=state,
            reason=reason,
            replicas_ready=ready,
            endpoint=endpoint,
            events=events,
        )

    if desired == 0:
        # As on the local runtime: a deployment scaled to 0 is where it was asked to be.
        return observation(st.RUNNING, "scaled to 0 replicas: nothing serves")
    if problems:
        state = st.FAILED if ready == 0 else st.DEGRADED
        return observation(state, f"{problems[0]} ({counts})")
    if rolled_out and ready >= desired:
        return observation(st.RUNNING, counts)
    if rolled_out and observed and total:
        return observation(st.DEGRADED, counts)
    return observation(st.DEPLOYING, f"Rolling out: {counts}, {updated} updated")
