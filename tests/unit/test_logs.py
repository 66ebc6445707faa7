"""Log lines reach the web process through a worker (deployments/logs.py): the web process
asks once per deployment and tail, waits a moment, and shows fresh lines from the cache."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.core.cache import cache

from deployments import constants as st
from deployments import tasks
from deployments.logs import deployment_logs
from deployments.models import Deployment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    cache.clear()
    monkeypatch.setattr(st, "LOG_WAIT_SECONDS", 0.3)


def test_without_a_worker_the_web_process_asks_once_and_says_so(
    make_deployment: Callable[..., Deployment], broker
) -> None:
    deployment = make_deployment()
    assert deployment_logs(deployment, 50) == [
        "(the worker has not read newer lines yet: is it running?)"
    ]
    deployment_logs(deployment, 50)  # a second viewer while the first read is still asked for
    assert broker.published() == [(tasks.collect_logs.name, [deployment.pk, 50])]


def test_lines_a_worker_read_are_shown_scrubbed_until_they_are_stale(
    make_deployment: Callable[..., Deployment], broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = make_deployment()
    folder = settings.LOCAL_RUNTIME_DIR / deployment.name
    folder.mkdir(parents=True, exist_ok=True)
    secret = settings.SECRET_KEY
    (folder / "serving.log").write_text(f"model loaded\nkey={secret}\n")
    tasks.collect_logs(deployment.pk, 10)  # what the worker runs
    lines = deployment_logs(deployment, 10)
    assert lines[0] == "model loaded" and secret not in lines[1]
    assert broker.published() == []  # fresh: nothing asked of the worker

    (folder / "serving.log").write_text("newer\n")
    monkeypatch.setattr(st, "LOG_FRESH_SECONDS", -1.0)  # every line read is now stale
    assert deployment_logs(deployment, 10)[:2] == lines  # the last known lines, and a note
    assert broker.published() == [(tasks.collect_logs.name, [deployment.pk, 10])]


def test_the_page_never_waits_for_the_worker(
    make_deployment: Callable[..., Deployment], broker
) -> None:
    from deployments.logs import cached_logs

    deployment = make_deployment(name="quiet-one")
    assert cached_logs(deployment, 100) is None  # nothing read yet: the panel says "Reading"
    assert broker.published() == [(tasks.collect_logs.name, [deployment.pk, 100])]
    tasks.collect_logs(deployment.pk, 100)
    assert cached_logs(deployment, 100) == []  # read: this deployment wrote nothing
