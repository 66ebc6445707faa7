"""Helpers of the live-deployment tests: a registered iris model, waiting for a status, and
`manage.py runconsole` (what `make run` starts) under test. Only tests/support is imported, so
these tests do not depend on where the other test folders live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.models import iris_classifier, save
from tests.support.net import answers, wait_until
from tests.support.stack import ROOT, ConsoleStack

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def register_iris(stack: ConsoleStack, folder: Path, name: str, versions: int = 2) -> list[int]:
    """A classification model `name` with `versions` uploaded versions; their numbers."""
    client = stack.client("deployer")
    response = client.post(
        "/api/models/", json={"name": name, "job": "classification", "input_size": 4}
    )
    assert response.status_code == 201, response.text
    estimator, _ = iris_classifier()
    numbers = []
    for i in range(versions):
        estimator.set_params(C=1.0 + i)
        path = save(estimator, folder / f"{name}-{i}.joblib", "joblib")
        with path.open("rb") as f:
            response = client.post(
                f"/api/models/{name}/versions/",
                files={"file": (path.name, f)},
                data={"model_type": "joblib"},
            )
        assert response.status_code == 201, response.text
        numbers.append(response.json()["version"])
    return numbers


def wait_for(client: httpx.Client, name: str, check, timeout: float = 120) -> dict:
    """Poll the deployment until `check(body)` holds; its last body."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/deployments/{name}/").json()
        if check(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{name}: condition not met in {timeout} s; last seen: {body}")


def wait_for_status(client: httpx.Client, name: str, status: str, timeout: float = 120) -> dict:
    body = wait_for(client, name, lambda b: b.get("status") in {status, "failed"}, timeout)
    assert body["status"] == status, body
    return body


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(stat[1]) == pid and stat[0] not in {"Z", "X"}:
            found.append((int(entry.name), cmdline))
    return found


class RunConsole:
    """`manage.py runconsole` in its own process group, on a stack's settings."""

    def __init__(self, stack: ConsoleStack) -> None:
        self.stack = stack
        self.proc: subprocess.Popen | None = None
        self.output = stack.var_dir / "runconsole.log"

    def start(self) -> None:
        log = self.output.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runconsole", "--port", str(self.stack.port)],
            cwd=ROOT,
            env=self.stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: answers(f"{self.stack.url}/accounts/login/"), 90, "runconsole's web")

    def child(self, word: str) -> int:
        """The pid of runconsole's child whose command line holds `word` (celery, gunicorn)."""
        pids = [pid for pid, cmd in children_of(self.proc.pid) if word in cmd]
        assert len(pids) == 1, children_of(self.proc.pid)
        return pids[0]

    def interrupt(self) -> None:
        """Ctrl-C, as a user stops `make run`."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def page_text(stack: ConsoleStack, path: str, persona: str = "viewer") -> str:
    """A console page's HTML as `persona` sees it, logged in through the login page."""
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        login = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        response = client.post(
            "/accounts/login/",
            data={
                "username": persona,
                "password": f"{persona}-password-1",
                "csrfmiddlewaretoken": token,
            },
            headers={"Referer": f"{stack.url}/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        page = client.get(path)
        assert page.status_code == 200, page.status_code
        return page.text
