"""Unit tests: the console's domain logic in this process, with no server.

- Django runs on pytest-django's test database (SQLite, in memory) and a local-memory cache.
- Celery's broker is `memory://`, kombu's in-memory transport (a real transport that keeps the
  messages in this process): a task's `.delay()` publishes a message the `broker` fixture reads
  back, and no worker ever runs it. Work enqueued with `transaction.on_commit` is captured with
  `django_capture_on_commit_callbacks(execute=False)` and never executed.
- The console's var/ folder (secret key, cache, artifacts, the local runtime's folder) is a
  temporary folder, so the local runtime finds no serving process there.

console/settings.py reads the environment once, when it loads: this conftest sets a few
variables for that moment only (so no other test's subprocess inherits them), then sets what the
tests depend on (database, cache, broker, artifact store, runtime folder) on the loaded settings,
which also covers settings pytest-django loaded before any conftest (as in an xdist worker, which
inherits DJANGO_SETTINGS_MODULE). Every test under this folder is marked `unit`.
"""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

_VAR_DIR = Path(tempfile.mkdtemp(prefix="unit-console-var-"))
(_VAR_DIR / "static").mkdir()  # STATIC_ROOT: whitenoise warns when it is missing
atexit.register(shutil.rmtree, _VAR_DIR, ignore_errors=True)
# Read by console/settings.py when it loads: its folders and secret key go to the temporary folder.
_START_ENV = {
    "DJANGO_SETTINGS_MODULE": "console.settings",
    "CONSOLE_VAR_DIR": str(_VAR_DIR),
    "CONSOLE_HTTPS": "false",
    "CELERY_BROKER_URL": "memory://",
    "CACHE_URL": "",
}
# Set on the loaded settings, also when they were loaded before this conftest ran (pytest-django
# loads them first when DJANGO_SETTINGS_MODULE is inherited, as by an xdist worker). Nothing has
# connected to a database, cache or broker by then.
_UNIT_SETTINGS: dict[str, Any] = {
    "DATABASES": {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_VAR_DIR / "db.sqlite3")}
    },
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    "CELERY_BROKER_URL": "memory://",
    # The embedded default names its own transport class (console/broker.py): not this one.
    "CELERY_BROKER_TRANSPORT": None,
    "CELERY_BROKER_TRANSPORT_OPTIONS": {},
    "CELERY_TASK_DEFAULT_QUEUE": "unit",
    "ARTIFACT_STORE": f"file://{_VAR_DIR / 'artifacts'}",
    "DEPLOY_RUNTIME": "local",
    "LOCAL_RUNTIME_DIR": _VAR_DIR / "runtime",
    "STATIC_ROOT": _VAR_DIR / "static",
}


def _start_django() -> None:
    import django
    from django.conf import settings

    saved = {key: os.environ.get(key) for key in _START_ENV}
    if not settings.configured:
        os.environ.update(_START_ENV)
    try:
        django.setup()
    finally:
        for key, value in saved.items():
            if key == "DJANGO_SETTINGS_MODULE":
                continue  # pytest-django reads it to find the settings
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for name, value in _UNIT_SETTINGS.items():
        setattr(settings, name, value)

    from django.core.cache import caches
    from django.db import connections

    from console.celery import app

    app.conf.update(
        broker_url="memory://",
        broker_transport=None,
        broker_transport_options={},
        task_default_queue="unit",
    )
    if (
        connections["default"].vendor != "sqlite"
        or type(caches["default"]).__name__ != "LocMemCache"
        or app.conf.broker_url != "memory://"
    ):
        raise pytest.UsageError(
            "tests/unit: the database, cache or broker was in use before tests/unit/conftest.py "
            "could point them at SQLite, a local-memory cache and the memory:// broker"
        )


_start_django()

from django.core.cache import cache  # noqa: E402
from django.utils import timezone  # noqa: E402

from console.celery import app as celery_app  # noqa: E402
from deployments import constants as st  # noqa: E402
from deployments.models import Deployment, ModelVersion, RegisteredModel  # noqa: E402

_HERE = Path(__file__).resolve().parent
SHA256 = "0123456789abcdef" * 4


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """The cache outlives a test: no test sees another's keys."""
    cache.clear()
    yield
    cache.clear()


class Broker:
    """The messages published to the console's queue on the in-memory broker."""

    def __init__(self) -> None:
        self.queue = celery_app.conf.task_default_queue

    def purge(self) -> None:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(self.queue)

    def published(self) -> list[tuple[str, list[Any]]]:
        """(task name, args) of every message published since the last call, oldest first."""
        found = []
        with celery_app.connection_for_read() as conn:
            channel = conn.default_channel
            while (message := channel.basic_get(self.queue, no_ack=True)) is not None:
                args, _kwargs, _embed = message.decode()
                found.append((message.headers["task"], list(args)))
        return found


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    b.purge()
    yield b
    b.purge()


def _enqueued(callbacks: list[Callable[[], object]]) -> list[tuple[str, int]]:
    """(task name, deployment pk) that each captured on-commit callback would enqueue.

    The callbacks are `enqueue_on_commit`'s `lambda: enqueue(task, *args)` (the deployment's
    pk first); the names the lambda closes over tell which task and which deployment, without
    running it.
    """
    found = []
    for callback in callbacks:
        names = inspect.getclosurevars(callback).nonlocals
        assert set(names) == {"task", "args"}, f"unexpected callback {names}"
        found.append((names["task"], names["args"][0]))
    return found


@pytest.fixture
def on_commit_tasks(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[[], AbstractContextManager[list[tuple[str, int]]]]:
    """`with on_commit_tasks() as tasks:` collects (task name, deployment pk) of the work the
    block enqueues with `transaction.on_commit`, also when the block raises; none of it runs."""

    @contextmanager
    def capture() -> Iterator[list[tuple[str, int]]]:
        tasks: list[tuple[str, int]] = []
        callbacks: list[Callable[[], object]] = []
        try:
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                yield tasks
        finally:  # the callbacks are listed when the capture ends, also on an exception
            tasks.extend(_enqueued(callbacks))

    return capture


@pytest.fixture
def make_version(db: None) -> Callable[..., ModelVersion]:
    """A registered model version whose artifact path lies in the artifact store (the file
    itself is not needed: nothing here loads it)."""

    def make(
        model: str = "iris", version: int = 1, *, job: str = st.CLASSIFICATION, input_size: int = 4
    ) -> ModelVersion:
        registered, _ = RegisteredModel.objects.get_or_create(
            name=model, defaults={"job": job, "input_size": input_size}
        )
        path = _VAR_DIR / "artifacts" / model / str(version) / "model.joblib"
        return ModelVersion.objects.create(
            model=registered,
            version=version,
            model_type="joblib",
            uri=f"file://{path}",
            sha256=SHA256,
            size=123,
            trusted_types=["sklearn.linear_model.LogisticRegression"],
        )

    return make


@pytest.fixture
def make_deployment(make_version: Callable[..., ModelVersion]) -> Callable[..., Deployment]:
    """A deployment record in any status, written directly (no event, nothing enqueued)."""

    def make(
        status: str = st.RUNNING,
        name: str = "iris-prod",
        *,
        version: ModelVersion | None = None,
        age_seconds: float = 0.0,
        **fields: object,
    ) -> Deployment:
        deployment = Deployment.objects.create(
            name=name, model_version=version or make_version(), status=status, **fields
        )
        if age_seconds:
            Deployment.objects.filter(pk=deployment.pk).update(
                updated_at=timezone.now() - timedelta(seconds=age_seconds)
            )
            deployment.refresh_from_db()
        return deployment

    return make
