"""A deployment's log lines as the API and the page show them.

Reading them is a runtime call (on Kubernetes, pod logs through the API), and the web process
makes none: a worker reads them (`tasks.collect_logs`) into the cache. The page's Logs panel
shows what is there and polls; the API waits a moment for fresh lines, showing the last ones
it has if the worker is late.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from deployments import constants as st
from deployments.enqueue import COLLECT_LOGS, enqueue
from deployments.models import Deployment

POLL_SECONDS = 0.05


def cached_logs(deployment: Deployment, tail: int) -> list[str] | None:
    """The lines a worker read last (None before the first read), asking it to read them again
    unless they are fresh; never waits (the page's Logs panel polls)."""
    key = st.log_cache_key(deployment.pk, tail)
    cached = cache.get(key)
    if cached and cached["at"] >= time.time() - st.LOG_FRESH_SECONDS:
        return cached["lines"]
    # One read in flight per deployment and tail, however many viewers poll.
    if cache.add(f"{key}:asked", time.time(), st.LOG_ASK_AGAIN_SECONDS):
        enqueue(COLLECT_LOGS, deployment.pk, tail)
    return cached["lines"] if cached else None


def deployment_logs(deployment: Deployment, tail: int) -> list[str]:
    """Fresh lines for the API: `cached_logs`, waiting a moment for the worker's read."""
    asked = time.time()
    lines = cached_logs(deployment, tail)
    deadline = time.monotonic() + st.LOG_WAIT_SECONDS
    while True:
        seen = cache.get(st.log_cache_key(deployment.pk, tail))
        if seen and seen["at"] >= asked - st.LOG_FRESH_SECONDS:
            return seen["lines"]
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    late = "(the worker has not read newer lines yet: is it running?)"
    return [*lines, late] if lines else [late]
