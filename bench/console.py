"""Console scale benchmark: 10,000 deployments and 50,000 events in PostgreSQL.

    .venv/bin/python bench/console.py            # about a minute; needs PostgreSQL
    make bench                                   # the same

Creates a private database on the server of TEST_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/console_bench), migrates it, seeds it, starts the console's
web server (gunicorn, as `make run` does; no worker, so nothing changes the records meanwhile)
and measures over HTTP with a token:

- the deployments list API, paginated (50 a page, pages all over the table): p50/p95/p99;
- one deployment's events API (the newest 50 of its history);
- the dashboard and its live fragment (a page of 50, with searches, filters, sorts and pages
  all over the table): queries per render (counted with Django's test client), render time
  and size over HTTP, and the ratio of the dashboard's p95 to that of the login page (a
  template render with no query: the anchor, measured in the same run).

Exits non-zero if the list API's p95 is 50 ms or more, the dashboard's p95 300 ms or more, or
a dashboard answer 150 KB or more. Logs go to var/bench-console/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.stack import (  # noqa: E402
    PERSONAS_SCRIPT,
    ConsoleStack,
    create_database,
    private_database,
)

WORK = ROOT / "var" / "bench-console"
P95_BUDGET_MS = 50.0
DASHBOARD_P95_BUDGET_MS = 300.0
DASHBOARD_BYTES_BUDGET = 150_000

SEED = """
import json, random, time
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from deployments.models import Deployment, DeploymentEvent, ModelVersion, RegisteredModel

started = time.perf_counter()
random.seed(7)
admin = User.objects.get(username="deployer")
models = [RegisteredModel.objects.create(name=f"bench-model-{i}", job="classification",
                                         input_size=4) for i in range(20)]
versions = [
    ModelVersion(model=m, version=v, model_type="joblib", uri=f"file:///x/{m.name}/{v}",
                 sha256="0" * 64, size=1000, n_features=4, classes=[0, 1, 2])
    for m in models for v in (1, 2, 3)
]
ModelVersion.objects.bulk_create(versions)
versions = list(ModelVersion.objects.all())
statuses = ["running"] * 6 + ["stopped", "failed", "degraded", "pending"]
now = timezone.now()
Deployment.objects.bulk_create(
    (
        Deployment(
            name=f"bench-{i:05d}", model_version=random.choice(versions),
            status=random.choice(statuses), status_reason="seeded", replicas=1,
            replicas_ready=1, endpoint=f"http://10.0.{i // 250}.{i % 250}:8080",
            created_by=admin, updated_at=now - timedelta(minutes=i),
        )
        for i in range(__DEPLOYMENTS__)
    ),
    batch_size=2000,
)
ids = list(Deployment.objects.values_list("id", flat=True))
per = __EVENTS__ // len(ids)
DeploymentEvent.objects.bulk_create(
    (
        DeploymentEvent(
            deployment_id=pk, created_at=now - timedelta(seconds=j * 60 + k),
            actor=admin, actor_name="deployer", via="api", source_ip="10.1.2.3",
            action="status", status="running", message=f"event {k}",
        )
        for k, pk in enumerate(ids) for j in range(per)
    ),
    batch_size=5000,
)
print("RESULT=" + json.dumps({
    "deployments": Deployment.objects.count(),
    "events": DeploymentEvent.objects.count(),
    "seconds": round(time.perf_counter() - started, 1),
}))
"""

QUERIES = """
import json
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
client = Client()
client.force_login(User.objects.get(username="viewer"))
counts = {}
for label, url in [("dashboard", reverse("dashboard")),
                   ("dashboard fragment", reverse("dashboard-fragment")),
                   ("deployments API (50)", "/api/deployments/?limit=50&offset=5000"),
                   ("events API (50)", "/api/deployments/bench-04242/events/")]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, HTTP_HOST="127.0.0.1")
    counts[label] = {"queries": len(queries), "status": response.status_code,
                     "bytes": len(response.content)}
print("RESULT=" + json.dumps(counts))
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(client: httpx.Client, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return out


def dashboard_urls(rng: random.Random, deployments: int, n: int) -> list[str]:
    """What people do on the dashboard: page through, search a name, filter and sort."""
    pages = max(1, deployments // 50)
    kinds = [
        lambda: "/",
        lambda: f"/?page={rng.randrange(1, pages + 1)}",
        lambda: f"/?name=bench-0{rng.randrange(10)}",
        lambda: f"/?status=failed&sort=-updated&page={rng.randrange(1, 20)}",
        lambda: f"/?model=bench-model-{rng.randrange(20)}&sort=status",
        lambda: f"/fragments/deployments/?page={rng.randrange(1, pages + 1)}",
        lambda: "/fragments/deployments/?job=classification&sort=-name&page=3",
    ]
    return [rng.choice(kinds)() for _ in range(n)]


def timed_sizes(client: httpx.Client, urls: list[str]) -> tuple[list[float], list[int]]:
    times, sizes = [], []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        sizes.append(len(response.content))
    return times, sizes


def line(label: str, values: list[float]) -> str:
    return (
        f"{label:<34} n={len(values):<4} p50={percentile(values, 50):7.1f} ms  "
        f"p95={percentile(values, 95):7.1f} ms  p99={percentile(values, 99):7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    base = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/console_bench")
    WORK.mkdir(parents=True, exist_ok=True)
    var = WORK / time.strftime("%Y%m%d-%H%M%S")
    stack = ConsoleStack(var)
    database = private_database(base)
    stack.env["DATABASE_URL"] = database
    stack.database = database  # dropped by stack.stop()
    try:
        create_database(database)
        stack.manage("migrate", "--noinput", "-v0")
        stack.manage("collectstatic", "--noinput", "-v0")
        tokens = json.loads(
            stack.manage("shell", "-c", PERSONAS_SCRIPT).split("TOKENS=", 1)[1].splitlines()[0]
        )
        seeded = stack.shell(
            SEED.replace("__DEPLOYMENTS__", str(args.deployments)).replace(
                "__EVENTS__", str(args.events)
            )
        )
        print(
            f"seeded {seeded['deployments']} deployments and {seeded['events']} events "
            f"in PostgreSQL in {seeded['seconds']} s"
        )
        stack.manage(
            "shell",
            "-c",
            "from django.db import connection; connection.cursor().execute('ANALYZE')",
        )
        stack.start_web()
        client = httpx.Client(
            base_url=stack.url, timeout=60, headers={"Authorization": f"Token {tokens['viewer']}"}
        )
        rng = random.Random(1)
        pages = args.deployments // 50
        timed(client, ["/api/deployments/?limit=50"] * 20)  # warm-up: connections, caches
        list_ms = timed(
            client,
            [
                f"/api/deployments/?limit=50&offset={rng.randrange(pages) * 50}"
                for _ in range(args.requests)
            ],
        )
        first_ms = timed(client, ["/api/deployments/?limit=50"] * 100)
        detail_ms = timed(
            client,
            [f"/api/deployments/bench-{rng.randrange(args.deployments):05d}/" for _ in range(100)],
        )
        events_ms = timed(
            client,
            [
                f"/api/deployments/bench-{rng.randrange(args.deployments):05d}/events/"
                for _ in range(100)
            ],
        )
        counts = stack.shell(QUERIES)

        session = httpx.Client(base_url=stack.url, timeout=120)
        page = session.get("/accounts/login/")
        csrf = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        session.post(
            "/accounts/login/",
            data={
                "username": "viewer",
                "password": "viewer-password-1",
                "csrfmiddlewaretoken": csrf,
            },
            headers={"Referer": f"{stack.url}/accounts/login/"},
        )
        timed(session, ["/", "/accounts/login/"] * 5)  # warm-up
        anchor_ms = timed(session, ["/accounts/login/"] * 100)
        dashboard_ms, dashboard_bytes = timed_sizes(
            session, dashboard_urls(rng, args.deployments, args.requests)
        )
        first_page_ms, first_page_bytes = timed_sizes(session, ["/"] * 50)
        fragment_ms, _ = timed_sizes(session, ["/fragments/deployments/?page=100"] * 50)

        print()
        print(line("GET /api/deployments/ (any page)", list_ms))
        print(line("GET /api/deployments/ (1st page)", first_ms))
        print(line("GET /api/deployments/{name}/", detail_ms))
        print(line("GET .../{name}/events/", events_ms))
        print(line("GET /accounts/login/ (anchor)", anchor_ms))
        print(line("dashboard (pages, search, filters)", dashboard_ms))
        print(line("GET / (dashboard, 1st page)", first_page_ms))
        print(line("GET dashboard fragment (page 100)", fragment_ms))
        print()
        print(f"{'queries per render':<34} {'queries':>7} {'bytes':>10}")
        for label, seen in counts.items():
            print(f"{label:<34} {seen['queries']:>7} {seen['bytes']:>10}")
        p95 = percentile(list_ms, 95)
        verdict = "PASS" if p95 < P95_BUDGET_MS else "FAIL"
        print(f"\nlist API p95 {p95:.1f} ms (budget {P95_BUDGET_MS:.0f} ms): {verdict}")
        dash_p95 = percentile(dashboard_ms, 95)
        biggest = max(dashboard_bytes + first_page_bytes)
        ratio = dash_p95 / percentile(anchor_ms, 95)
        dash_verdict = (
            "PASS"
            if dash_p95 < DASHBOARD_P95_BUDGET_MS and biggest < DASHBOARD_BYTES_BUDGET
            else "FAIL"
        )
        print(
            f"dashboard p95 {dash_p95:.1f} ms = {ratio:.1f}x the login page's p95 (budget "
            f"{DASHBOARD_P95_BUDGET_MS:.0f} ms), largest answer {biggest / 1000:.0f} KB "
            f"(budget {DASHBOARD_BYTES_BUDGET / 1000:.0f} KB): {dash_verdict}"
        )
        return 0 if verdict == dash_verdict == "PASS" else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
