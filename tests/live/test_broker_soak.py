"""The embedded broker under load: 2,000 tasks from several producer processes while a real
worker takes them. None may be lost and the worker must never die (kombu's filesystem
transport, the previous default, killed its worker after a few hundred)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import wait_until
from tests.support.stack import ROOT, ConsoleStack

pytestmark = pytest.mark.integration

PRODUCERS = 4
TASKS_PER_PRODUCER = 500

PRODUCER_SCRIPT = """
import sys
import django
django.setup()
from deployments.tasks import sync_all_deployments
for _ in range(int(sys.argv[1])):
    print(sync_all_deployments.delay().id, flush=True)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    var = Path(tmp_path_factory.mktemp("broker-soak-var"))
    # The embedded broker even where the suite runs on Redis: that is what is tested here.
    console = ConsoleStack(var, {"CELERY_BROKER_URL": f"sqla+sqlite:///{var / 'broker.sqlite3'}"})
    try:
        console.prepare()
        console.start_worker()
        yield console
    finally:
        console.stop()


def _succeeded(stack: ConsoleStack) -> set[str]:
    return set(re.findall(r"Task \S+\[([0-9a-f-]{36})\] succeeded", stack.log("worker")))


def test_no_task_is_lost_and_the_worker_survives(stack: ConsoleStack) -> None:
    wait_until(lambda: " ready." in stack.log("worker"), 60, "the worker to start")
    producers = [
        subprocess.Popen(
            [sys.executable, "-c", PRODUCER_SCRIPT, str(TASKS_PER_PRODUCER)],
            cwd=ROOT,
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PRODUCERS)
    ]
    sent: set[str] = set()
    for producer in producers:
        out, err = producer.communicate(timeout=180)
        assert producer.returncode == 0, err[-2000:]
        sent.update(out.split())
    assert len(sent) == PRODUCERS * TASKS_PER_PRODUCER

    worker = stack.procs["worker"]
    wait_until(
        lambda: sent <= _succeeded(stack) or worker.poll() is not None,
        180,
        "the worker to run every task",
        interval=1,
    )
    log = stack.log("worker")
    assert worker.poll() is None, log[-3000:]
    assert "Unrecoverable error" not in log
    missing = sent - _succeeded(stack)
    assert not missing, f"{len(missing)} tasks lost"
