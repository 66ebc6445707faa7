"""The worker's probes, as the chart writes them, run against the worker the chart starts: they
pass while it runs, and fail once it is gone (the kubelet then restarts the container)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kubernetes.test_charts import helm, template, values_args  # noqa: F401
from tests.support.requires import skip_missing
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def worker_container(helm: str) -> dict:  # noqa: F811
    objects = template(helm, "console", *values_args(["ci/secrets-values.yaml"], "console"))
    worker = next(o for o in objects if o["metadata"]["name"].endswith("-console-worker"))
    return worker["spec"]["template"]["spec"]["containers"][0]


# The chart's workers use Redis (or RabbitMQ); the probes ask the worker over the broker's
# remote control, which the embedded SQLite broker of `make run` does not offer.
REDIS = os.environ.get("TEST_BROKER_URL") or "redis://127.0.0.1:6379/14"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ConsoleStack]:
    if REDIS.startswith("redis://127.0.0.1:6379") and not _redis_answers():
        skip_missing(
            "worker probe",
            "a Redis server on 127.0.0.1:6379",
            "sudo apt-get install -y redis-server",
        )
    # The kubelet sets HOSTNAME to the pod's name, which is also the worker's host name.
    console = ConsoleStack(
        tmp_path,
        {
            "HOSTNAME": socket.gethostname(),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "CELERY_BROKER_URL": REDIS,
            "CELERY_QUEUE": f"probe-{tmp_path.name}",
        },
    )
    try:
        yield console.prepare()
    finally:
        console.stop()


def probe(stack: ConsoleStack, container: dict, kind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        container[kind]["exec"]["command"],
        cwd=Path(__file__).resolve().parents[2],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=container[kind]["timeoutSeconds"] + 30,
    )


def test_the_worker_probes_follow_the_worker(stack: ConsoleStack, worker_container: dict) -> None:
    assert worker_container["command"][:4] == ["celery", "-A", "console", "worker"]
    stack.start_process("worker", worker_container["command"])

    deadline = time.monotonic() + 90
    while (result := probe(stack, worker_container, "readinessProbe")).returncode != 0:
        assert time.monotonic() < deadline, result.stdout + result.stderr + stack.log("worker")
        time.sleep(2)
    assert "pong" in result.stdout
    assert probe(stack, worker_container, "livenessProbe").returncode == 0

    stack.stop_process("worker")
    gone = probe(stack, worker_container, "livenessProbe")
    assert gone.returncode != 0
    assert "No nodes replied" in gone.stdout + gone.stderr
