"""A live console for tests: a gunicorn web server and a real Celery worker process, started the
way `make run` starts them, on a private var/ folder and the configured database and broker.

The embedded defaults (SQLite, the SQLite broker) are used unless TEST_DATABASE_URL and
TEST_BROKER_URL name real servers (CI runs the suite both ways). On PostgreSQL every stack gets
a database of its own (created here, dropped on stop); on a shared broker, a queue of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from console.processes import web_command, worker_command
from tests.support.net import answers, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]

PERSONAS_SCRIPT = """
import json
from django.contrib.auth.models import Group, User
from deployments.models import ApiToken
from deployments.roles import DEPLOYER, VIEWER
tokens = {}
for name, group, superuser in [("admin", None, True), ("deployer", DEPLOYER, False),
                               ("viewer", VIEWER, False)]:
    user = User.objects.filter(username=name).first()
    if user is None:
        user = (User.objects.create_superuser if superuser else User.objects.create_user)(
            username=name, password=name + "-password-1")
    if group:
        user.groups.add(Group.objects.get(name=group))
    tokens[name] = ApiToken.issue(user)  # a new one each time: only its hash is stored
print("TOKENS=" + json.dumps(tokens))
"""


class ConsoleStack:
    """One console's processes on a private var/ folder; `with ConsoleStack(...) as stack:`
    starts it and stops everything it started, whatever happens inside."""

    def __init__(self, var_dir: Path, env_overrides: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "CELERY"))},
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "CONSOLE_VAR_DIR": str(var_dir),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STATUS_SYNC_SECONDS": "3",
            "METRICS_SCRAPE_SECONDS": "3",
            "TRAFFIC_TICK_SECONDS": "1",
            "DEPLOY_TIMEOUT_SECONDS": "120",
            "PYTHONPATH": str(ROOT),
        }
        self.env["RECONCILE_STALE_SECONDS"] = "6"
        self.database = None
        database = os.environ.get("TEST_DATABASE_URL")
        if database:
            self.database = private_database(database)
            self.env["DATABASE_URL"] = self.database
        broker = os.environ.get("TEST_BROKER_URL")
        if broker:
            self.env["CELERY_BROKER_URL"] = broker
            self.env["CELERY_QUEUE"] = f"test-{uuid.uuid4().hex[:10]}"
        self.env.update(env_overrides or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self.tokens: dict[str, str] = {}

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def prepare(self) -> ConsoleStack:
        """The database (migrated, with the personas and fresh tokens) and static files."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if self.database:
            create_database(self.database)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        out = self.manage("shell", "-c", PERSONAS_SCRIPT)
        self.tokens = json.loads(out.split("TOKENS=", 1)[1].strip().splitlines()[0])
        return self

    def start(self) -> ConsoleStack:
        self.prepare()
        self.start_worker()
        self.start_web()
        return self

    def __enter__(self) -> ConsoleStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_process(
        self, name: str, command: list[str], env_overrides: dict[str, str] | None = None
    ) -> subprocess.Popen:
        log = (self.var_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.env, **(env_overrides or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str = "worker") -> subprocess.Popen:
        unique = f"{name}-{uuid.uuid4().hex[:6]}"
        return self.start_process(name, worker_command(concurrency=2, beat=True, name=unique))

    def start_web(self) -> subprocess.Popen:
        proc = self.start_process("web", web_command(port=self.port, workers=2))
        wait_until(lambda: answers(f"{self.url}/accounts/login/"), 120, "the console web server")
        return proc

    def start_other_web(self, name: str, env_overrides: dict[str, str]) -> str:
        """Another web server on this stack's database, store and broker, with some settings
        changed (it stops with the stack); its URL."""
        port = free_port()
        self.start_process(name, web_command(port=port, workers=1), env_overrides)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{url}/accounts/login/"), 120, f"the {name} web server")
        return url

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        # All at once, with one deadline: a Celery worker's warm shutdown can take its time.
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
        # Serving processes started by the local runtime outlive the worker on purpose.
        runtime_dir = self.var_dir / "runtime"
        for state in runtime_dir.glob("*/state.json"):
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError, KeyError):
                os.killpg(json.loads(state.read_text())["pid"], signal.SIGKILL)
        if self.database:
            with contextlib.suppress(Exception):
                drop_database(self.database)

    def client(self, persona: str = "admin", url: str | None = None) -> httpx.Client:
        """An API client with `persona`'s token, for this stack's web server (or `url`)."""
        return httpx.Client(
            base_url=url or self.url,
            timeout=120,
            headers={"Authorization": f"Token {self.tokens[persona]}"},
        )

    def log(self, name: str) -> str:
        return (self.var_dir / f"{name}.log").read_text(errors="replace")

    def shell(self, script: str) -> dict:
        """Run `script` in `manage.py shell` on this stack's database; it prints RESULT=<json>."""
        out = self.manage("shell", "-c", script)
        return json.loads(out.split("RESULT=", 1)[1].strip().splitlines()[0])


def private_database(url: str) -> str:
    """The URL of a fresh database name on the server `url` points at."""
    parts = urlsplit(url)
    base = parts.path.lstrip("/") or "console_test"
    return urlunsplit(parts._replace(path=f"/{base}_{uuid.uuid4().hex[:8]}"))


def _admin_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )


def create_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with _admin_connection(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
