"""Attacks on a live console (gunicorn, a Celery worker, the local runtime, bubblewrap): model
code an uploader smuggles in is refused, and model code an admin approved runs where it can
read no console file, see no console secret, reach no network and leave nothing behind."""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.gadgets import GADGETS, Gadget
from tests.security.probes import checks, serving_probe, validation_probe
from tests.support.api import create_model, upload, wait_for_status
from tests.support.models import iris_classifier, save
from tests.support.net import wait_until
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "probe-admin-password-4921"
CLOUD_SECRET = "probe-cloud-secret-7734"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """A console whose environment holds secrets a model must never see."""
    var_dir = Path(tmp_path_factory.mktemp("contain-var"))
    console = ConsoleStack(
        var_dir,
        {"CONSOLE_ADMIN_PASSWORD": ADMIN_PASSWORD, "AWS_SECRET_ACCESS_KEY": CLOUD_SECRET},
    )
    try:
        yield console.start()
    finally:
        console.stop()


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    """A port something listens on, on the console's loopback: a model must not reach it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def other_artifact(stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model's stored artifact, which a probe tries to read."""
    client = stack.client("deployer")
    create_model(client, "victim", "classification", 4)
    path = save(iris_classifier()[0], tmp_path_factory.mktemp("victim") / "v.joblib", "joblib")
    version = upload(client, "victim", path, "joblib")
    assert version.status_code == 201, version.text
    stored = Path(version.json()["uri"].removeprefix("file://"))
    assert stored.is_file()
    return stored


def upload_approved(stack: ConsoleStack, model: str, obj: object, approve: list[str], tmp: Path):
    artifact = tmp / f"{model}.pkl"
    artifact.write_bytes(pickle.dumps(obj))
    with artifact.open("rb") as f:
        return stack.client("admin").post(
            f"/api/models/{model}/versions/",
            files={"file": (artifact.name, f)},
            data={"model_type": "pkl", "approve_types": approve},
        )


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("gadget", GADGETS, ids=lambda g: g.name)
def test_a_gadget_uploaded_by_a_deployer_is_refused_naming_its_global(
    stack: ConsoleStack, gadget: Gadget, tmp_path: Path
) -> None:
    client = stack.client("deployer")
    model = "gadget-" + gadget.name.replace("_", "-").replace(".", "-").lower()[:40].strip("-")
    create_model(client, model, "classification", 4)
    marker = tmp_path / "marker"
    (tmp_path / "keep").mkdir()
    artifact = tmp_path / "gadget.pkl"
    artifact.write_bytes(pickle.dumps(gadget.payload(marker)))

    response = upload(client, model, artifact, "pkl")

    assert response.status_code == 400, response.text
    message = response.json()["file"][0]
    assert f"imports {gadget.name}" in message
    assert "refused before that code ran" in message
    assert client.get(f"/api/models/{model}/versions/").json()["count"] == 0
    assert not marker.exists()
    assert (tmp_path / "keep").is_dir()


def test_approved_code_in_validation_reaches_nothing_and_leaves_nothing_behind(
    stack: ConsoleStack, other_artifact: Path, listener: int, tmp_path: Path
) -> None:
    create_model(stack.client("admin"), "probe-validation", "regression", 4)
    sleep_marker = 900000 + os.getpid() % 90000
    tries = checks(stack.var_dir, other_artifact, listener)
    probe = validation_probe(tries, sleep_marker)

    response = upload_approved(stack, "probe-validation", probe, ["builtins.exec"], tmp_path)

    assert response.status_code == 400, response.text
    message = response.json()["file"][0]
    assert "PROBE" in message, message  # the approved code did run
    found, _ = json.JSONDecoder().raw_decode(message.split("PROBE", 1)[1])  # (words follow)
    assert set(found) == set(tries)
    leaks = {name: what for name, what in found.items() if what.startswith("LEAKED")}
    assert leaks == {}, found
    # Files are not there at all, the network is not this machine's.
    assert found["key_file"] == found["database"] == "FileNotFoundError"
    assert found["listener"] == "ConnectionRefusedError"
    assert not (stack.var_dir / "pwned").exists()
    # The `setsid sleep` it started died with the sandbox's PID namespace.
    deadline = time.monotonic() + 10
    while processes_with(f"sleep {sleep_marker}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(f"sleep {sleep_marker}") == []
    assert ADMIN_PASSWORD not in message and CLOUD_SECRET not in message


def test_a_served_model_reaches_nothing_and_a_viewer_never_sees_a_secret(
    stack: ConsoleStack, other_artifact: Path, listener: int, tmp_path: Path
) -> None:
    admin = stack.client("admin")
    create_model(admin, "probe-serving", "regression", 4)
    tries = checks(stack.var_dir, other_artifact, listener)
    probe = serving_probe(tries, f"password {ADMIN_PASSWORD}")
    uploaded = upload_approved(stack, "probe-serving", probe, ["builtins.eval"], tmp_path)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["trusted_types"] == ["builtins.eval"]
    assert uploaded.json()["types_approved_by"] == "admin"
    assert "builtins.eval" in uploaded.json()["imported_globals"]
    response = admin.post(
        "/api/deployments/",
        json={"name": "probe-serving", "model": "probe-serving", "version": 1},
    )
    assert response.status_code == 202, response.text
    deployment = wait_for_status(admin, "probe-serving", {"running", "failed"}, timeout=120)
    assert deployment["status"] == "running", deployment["status_reason"]

    rows = [[100 + i, 0, 0, 0] for i in range(len(tries))]
    answer = admin.post("/api/deployments/probe-serving/predict/", json=rows)

    assert answer.status_code == 200, answer.text
    leaked = [name for name, hit in zip(tries, answer.json()["predictions"], strict=True) if hit]
    assert leaked == []
    assert not (stack.var_dir / "pwned").exists()

    # A model that prints a secret it learned and exits: it is restarted (its supervisor keeps
    # it as a kubelet would), and what a viewer reads of it says [redacted].
    admin.post("/api/deployments/probe-serving/predict/", json=[[200, 0, 0, 0]])
    viewer = stack.client("viewer")
    wait_until(
        lambda: viewer.get("/api/deployments/probe-serving/").json()["restarts"] >= 1,
        120,
        "the probe to be restarted",
    )
    logs = viewer.get("/api/deployments/probe-serving/logs/?tail=500")
    assert logs.status_code == 200, logs.text
    assert "found password [redacted] and token [redacted]" in logs.text, logs.text
    seen = viewer.get("/api/deployments/probe-serving/")
    events = viewer.get("/api/deployments/probe-serving/events/")
    assert events.status_code == 200, events.text
    for text in (logs.text, seen.text, events.text):
        assert ADMIN_PASSWORD not in text and "ab12" * 10 not in text


MISSING_BWRAP_SCRIPT = """
import json, logging
from pathlib import Path
from django.conf import settings
from deployments import isolation
from deployments.registry.errors import ArtifactRejected
from deployments.registry.sandbox import validate_artifact
from serving.config import ModelSource, ServingConfig, dump_config

isolation.BWRAP = "bwrap-is-not-installed"
warnings = []
handler = logging.Handler()
handler.emit = lambda record: warnings.append(record.getMessage())
logging.getLogger("deployments.isolation").addHandler(handler)
artifact = Path(ARTIFACT)
result = {}
try:
    validate_artifact(artifact, model_type="joblib", job="classification", input_size=4,
                      trusted_types=[])
    result["validation"] = "validated"
except ArtifactRejected as exc:
    result["validation"] = str(exc)
config = Path(ARTIFACT).with_name("config.yaml")
config.write_text(dump_config(ServingConfig(model_type="joblib", job="classification",
    model=ModelSource(method="LOCAL", path=ARTIFACT), input_size=4)))
try:
    isolation.serving_process(config, "127.0.0.1", 1)
    result["serving"] = "started"
except isolation.IsolationUnavailable as exc:
    result["serving"] = str(exc)
settings.MODEL_ISOLATION = "off"
validate_artifact(artifact, model_type="joblib", job="classification", input_size=4,
                  trusted_types=[])
command, env, cwd = isolation.serving_process(config, "127.0.0.1", 1)
result["off_command"] = command
result["off_env"] = sorted(env)
result["warnings"] = warnings
print("RESULT=" + json.dumps(result))
"""


def test_without_bubblewrap_models_are_refused_unless_isolation_is_switched_off(
    stack: ConsoleStack, tmp_path: Path
) -> None:
    artifact = save(iris_classifier()[0], tmp_path / "iris.joblib", "joblib")
    script = f"ARTIFACT = {str(artifact)!r}\n" + MISSING_BWRAP_SCRIPT

    result = stack.shell(script)

    for refusal in (result["validation"], result["serving"]):
        assert "bubblewrap" in refusal and "apt-get install -y bubblewrap" in refusal
        assert "MODEL_ISOLATION=off" in refusal
    # Switched off: it works, says so loudly, and still passes no console secret on.
    assert result["off_command"][1:4] == ["-s", "-m", "serving"]
    assert not {"SECRET_KEY", "CONSOLE_ADMIN_PASSWORD", "AWS_SECRET_ACCESS_KEY"} & set(
        result["off_env"]
    )
    assert any("WITHOUT isolation" in w for w in result["warnings"]), result["warnings"]
