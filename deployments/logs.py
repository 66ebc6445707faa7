"""A deployment's log lines as the API and the page show them."""

from __future__ import annotations

from deployments.models import Deployment
from deployments.runtimes import get_runtime
from deployments.runtimes.base import RuntimeFailure
from deployments.scrub import scrub


def deployment_logs(deployment: Deployment, tail: int) -> list[str]:
    """The last `tail` lines its serving processes wrote, oldest first, with secrets scrubbed
    (every viewer of the deployment may read them)."""
    try:
        lines = get_runtime().logs(deployment.name, tail)
    except RuntimeFailure as exc:
        return [f"(the logs cannot be read now: {exc})"]
    return [scrub(line) for line in lines]
