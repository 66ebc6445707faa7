"""Deploy time on the local runtime: from `POST /api/deployments/` to `running`, median of 10.

    .venv/bin/python bench/deploy_time.py        # about a minute

Starts a console as `make run` does (web, a real worker with beat, the embedded SQLite
database and broker) on a private var/ folder, uploads one iris model, then creates ten
deployments one after the other and times each from the POST to the first API answer that
says `running` (polled every 20 ms). Each is undeployed before the next. Goal: under 2 s.
Logs go to var/bench-deploy/.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.models import iris_classifier, save  # noqa: E402
from tests.support.stack import ConsoleStack  # noqa: E402

WORK = ROOT / "var" / "bench-deploy"
RUNS = 10
GOAL_SECONDS = 2.0


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    # No Redis or PostgreSQL: the embedded defaults are what a new user times.
    for name in ("TEST_DATABASE_URL", "TEST_BROKER_URL", "DATABASE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    stack = ConsoleStack(WORK / "var")
    try:
        stack.start()
        client = stack.client("deployer")
        response = client.post(
            "/api/models/", json={"name": "bench-iris", "job": "classification", "input_size": 4}
        )
        assert response.status_code == 201, response.text
        path = save(iris_classifier()[0], WORK / "iris.joblib", "joblib")
        with path.open("rb") as f:
            response = client.post(
                "/api/models/bench-iris/versions/",
                files={"file": (path.name, f)},
                data={"model_type": "joblib"},
            )
        assert response.status_code == 201, response.text
        times = []
        for i in range(RUNS):
            name = f"bench-{i}"
            started = time.perf_counter()
            response = client.post("/api/deployments/", json={"name": name, "model": "bench-iris"})
            assert response.status_code == 202, response.text
            while True:
                status = client.get(f"/api/deployments/{name}/").json()["status"]
                if status == "running":
                    break
                assert status in {"pending", "deploying"}, f"{name} is {status}"
                time.sleep(0.02)
            times.append(time.perf_counter() - started)
            print(f"{name}: {times[-1]:.2f} s", flush=True)
            assert client.post(f"/api/deployments/{name}/undeploy/").status_code == 202
        median = statistics.median(times)
        print(
            f"deploy time (POST to running), median of {RUNS}: {median:.2f} s "
            f"(goal: under {GOAL_SECONDS:g} s)"
        )
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
