"""The console chart mounts its Secret as files (NAME_FILE), never as environment variables,
and the console really starts from those files: the chart's own env, run for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kubernetes.test_charts import REPO, helm, template, values_args  # noqa: F401

MOUNT = "/etc/console/secrets"


@pytest.fixture
def workloads(helm: str) -> dict[str, dict]:  # noqa: F811
    objects = template(
        helm, "console", *values_args(["ci/secrets-values.yaml"], "console"), release="mc"
    )
    return {
        obj["metadata"]["name"]: obj["spec"]["template"]["spec"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
    }


def test_no_container_gets_a_secret_in_its_environment(workloads: dict[str, dict]) -> None:
    assert set(workloads) == {
        "mc-console-web",
        "mc-console-worker",
        "mc-console-beat",
        "mc-console-migrate",
    }
    for name, pod in workloads.items():
        for container in pod["containers"]:
            assert not any("valueFrom" in e for e in container.get("env", [])), name
            assert not any("secretRef" in e for e in container.get("envFrom", [])), name
            mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")
            assert mount == {"name": "secrets", "mountPath": MOUNT, "readOnly": True}


def test_only_the_migration_job_gets_the_admin_password(workloads: dict[str, dict]) -> None:
    for name, pod in workloads.items():
        volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
        keys = {
            item["key"]
            for source in volume["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        env = {e["name"] for e in pod["containers"][0]["env"]}
        if name == "mc-console-migrate":
            assert "CONSOLE_ADMIN_PASSWORD" in keys and "CONSOLE_ADMIN_PASSWORD_FILE" in env
            optional = [s["secret"] for s in volume["projected"]["sources"]]
            assert [s.get("optional", False) for s in optional] == [False, True]
        else:
            assert keys == {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"}
            assert not any(e.startswith("CONSOLE_ADMIN_PASSWORD") for e in env)


def _run_as_the_job(
    workloads: dict[str, dict], tmp_path: Path, secret: dict[str, str], script: str
) -> subprocess.CompletedProcess[str]:
    """`script` with the migration job's environment, its mount folder moved to tmp_path."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    for key, value in secret.items():
        (folder / key).write_text(value + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CONSOLE_VAR_DIR": str(tmp_path)}
    for entry in workloads["mc-console-migrate"]["containers"][0]["env"]:
        env[entry["name"]] = entry["value"].replace(MOUNT, str(folder))
    return subprocess.run(
        ["sh", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


CHECK = f"""{sys.executable} -c '
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
django.setup()
from django.conf import settings
from django.contrib.auth import authenticate
print(settings.SECRET_KEY, settings.CELERY_BROKER_URL, settings.DATABASES["default"]["NAME"])
print("admin-ok" if authenticate(username="admin", password="chosen-pw") else "admin-refused")
'"""


def test_the_console_starts_from_the_mounted_files(
    workloads: dict[str, dict], tmp_path: Path
) -> None:
    database = tmp_path / "db.sqlite3"
    secret = {
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": "memory://",
        "SECRET_KEY": "from-the-mounted-file-" + "x" * 40,
        "CONSOLE_ADMIN_PASSWORD": "chosen-pw",
    }
    py = sys.executable
    result = _run_as_the_job(
        workloads,
        tmp_path,
        secret,
        f"{py} manage.py migrate --noinput -v0 && {py} manage.py ensure_admin && {CHECK}",
    )
    assert result.returncode == 0, result.stderr
    assert "Created admin 'admin' with CONSOLE_ADMIN_PASSWORD." in result.stdout
    assert f"{secret['SECRET_KEY']} memory:// {database}" in result.stdout
    assert "admin-ok" in result.stdout
    assert database.exists()


def test_without_the_optional_admin_password_one_is_generated(
    workloads: dict[str, dict], tmp_path: Path
) -> None:
    secret = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "SECRET_KEY": "y" * 50,
    }
    py = sys.executable
    result = _run_as_the_job(
        workloads,
        tmp_path,
        secret,
        f"{py} manage.py migrate --noinput -v0 && {py} manage.py ensure_admin",
    )
    assert result.returncode == 0, result.stderr
    assert "Created admin 'admin' with password: " in result.stdout
