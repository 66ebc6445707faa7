"""The console in Prometheus mode (PROMETHEUS_URL): a real Prometheus (Debian's) scrapes the
observed deployment's serving process on loopback, and a the console's metrics function,
with PROMETHEUS_URL set, answers from it with PromQL."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.net import answers, free_port, wait_until
from tests.support.observed import Observed
from tests.support.requires import skip_missing
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: observed
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture(scope="module")
def prometheus(observed: Observed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        skip_missing("Prometheus", "prometheus is missing", "sudo apt-get install -y prometheus")
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "prometheus.yml").write_text(CONFIG.format(target=urlsplit(observed.endpoint).netloc))
    port = free_port()
    with (folder / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/-/ready"), 60, "Prometheus")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _up(url: str) -> bool:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="observed"}'}).json()
    result = answer["data"]["result"]
    return bool(result) and result[0]["value"][1] == "1"


# The metrics API's own function, in the console's process with PROMETHEUS_URL set (a web
# server of its own would cost a start for one line of view: `if settings.PROMETHEUS_URL`).
QUERY_SCRIPT = """
import json
from django.conf import settings
from deployments.models import Deployment
from deployments.observability.metrics import deployment_metrics, sparklines
settings.PROMETHEUS_URL = URL
observed = Deployment.objects.get(name="observed")
answer = deployment_metrics(observed, 300)
answer["sparklines"] = sparklines([observed], 3600)
print("RESULT=" + json.dumps(answer))
"""


def test_metrics_come_from_prometheus(
    console: ConsoleStack, observed: Observed, prometheus: str
) -> None:
    wait_until(lambda: _up(prometheus), 30, "Prometheus's first scrape of serving")
    time.sleep(1.5)  # one more scrape before the traffic, so that rate() sees it increase
    observed.send(40, seed=3)
    deadline = time.monotonic() + 60
    while True:  # until a scrape after the traffic is in (the machine may be slow)
        time.sleep(2)
        body = console.shell(f"URL = {prometheus!r}\n" + QUERY_SCRIPT)
        rates = [v for _, v in body["series"]["requests_per_s"]]
        if (rates and rates[-1] > 0) or time.monotonic() > deadline:
            break
    assert body["step_s"] == 15
    assert rates and rates[-1] > 0, body
    assert body["series"]["errors_per_s"][-1][1] == 0
    p50 = body["series"]["latency_p50_ms"][-1][1]
    p99 = body["series"]["latency_p99_ms"][-1][1]
    assert 0 < p50 <= p99 < 10_000
    assert body["series"]["rows_per_s"][-1][1] >= rates[-1]  # 4 rows per request
    # The dashboard's sparklines: one query grouped by the selector's label (job).
    assert body["sparklines"]["observed"][-1][1] > 0, body["sparklines"]
