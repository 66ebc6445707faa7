"""Every refused upload says why and leaves nothing behind: no version, no blob, no temp file.

Each test runs against both artifact stores (a local folder and GCS through the emulator).
"""

from __future__ import annotations

import time

import joblib
import pytest

from tests.support.api import create_model, upload
from tests.support.hostile import AllocatesGiB, OpensFile, RunsCommand, SleepsForever, pickle_to
from tests.support.models import forest, iris_classifier, padded_classifier, save
from tests.support.registry import (
    IMPATIENT_TIMEOUT_SECONDS,
    MAX_ARTIFACT_BYTES,
    TREE_TYPE,
    Registry,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def model(registry: Registry, request: pytest.FixtureRequest) -> str:
    """A fresh classification model (4 features) named after the test."""
    name = request.node.originalname.removeprefix("test_").replace("_", "-")[:50]
    name = f"{name}-{registry.kind}"
    create_model(registry.client(), name, "classification", 4)
    return name


def assert_refused(registry: Registry, model: str, response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    message = " ".join(response.json()["file"])
    for word in words:
        assert word.lower() in message.lower(), message
    assert registry.client().get(f"/api/models/{model}/versions/").json()["count"] == 0
    assert registry.stored_names(model) == []
    assert registry.upload_leftovers() == []
    return message


def test_a_file_over_the_size_limit_is_refused(registry, model, tmp_path):
    big = tmp_path / "big.joblib"
    with big.open("wb") as f:
        f.truncate(MAX_ARTIFACT_BYTES + 1)
    response = upload(registry.client(), model, big, "joblib")
    assert_refused(
        registry, model, response, 413, f"limit of {MAX_ARTIFACT_BYTES} bytes", "MAX_ARTIFACT_BYTES"
    )


def test_a_pickle_that_runs_a_command_is_refused_before_it_runs(registry, model, tmp_path):
    marker = tmp_path / "pwned-by-command"
    artifact = pickle_to(RunsCommand(f"touch {marker}"), tmp_path / "evil.pkl")
    response = upload(registry.client(), model, artifact, "pkl")
    assert_refused(registry, model, response, 400, "imports posix.system", "refused before")
    time.sleep(0.5)  # anything the artifact might have started in the background
    assert not marker.exists()


def test_a_joblib_file_that_opens_a_file_is_refused_before_it_runs(registry, model, tmp_path):
    marker = tmp_path / "pwned-by-open"
    artifact = tmp_path / "evil.joblib"
    joblib.dump(OpensFile(str(marker)), artifact)
    response = upload(registry.client(), model, artifact, "joblib")
    assert_refused(registry, model, response, 400, "io.open", "refused before")
    assert not marker.exists()


def test_an_artifact_that_never_finishes_loading_hits_the_timeout(registry, model, tmp_path):
    artifact = pickle_to(SleepsForever(), tmp_path / "sleepy.pkl")
    started = time.monotonic()
    # time.sleep is not on the allowlist: an admin approves it, so that it runs (and hangs).
    with artifact.open("rb") as f:
        response = registry.impatient_client("admin").post(
            f"/api/models/{model}/versions/",
            files={"file": (artifact.name, f)},
            data={"model_type": "pkl", "approve_types": ["time.sleep"]},
        )
    took = time.monotonic() - started
    assert_refused(
        registry, model, response, 400, f"timeout of {IMPATIENT_TIMEOUT_SECONDS} s", "stopped"
    )
    assert took >= IMPATIENT_TIMEOUT_SECONDS


def test_an_artifact_that_needs_too_much_memory_hits_the_memory_limit(registry, model, tmp_path):
    artifact = tmp_path / "hog.joblib"
    joblib.dump(AllocatesGiB(8), artifact)
    response = upload(registry.client(), model, artifact, "joblib")
    assert_refused(
        registry, model, response, 400, "more memory than the validation limit of 1536 MiB"
    )


def test_a_truncated_artifact_is_refused(registry, model, tmp_path):
    whole = save(iris_classifier()[0], tmp_path / "whole.joblib", "joblib").read_bytes()
    cut = tmp_path / "cut.joblib"
    cut.write_bytes(whole[: len(whole) // 2])
    response = upload(registry.client(), model, cut, "joblib")
    assert_refused(registry, model, response, 400, "This joblib file could not be read")


def test_untrusted_skops_types_are_refused_unless_the_console_trusts_them(
    registry, model, tmp_path
):
    artifact = forest(tmp_path / "forest.skops", "skops")
    response = upload(registry.client(), model, artifact, "skops")
    if registry.kind == "file":  # this console trusts no extra types
        assert_refused(registry, model, response, 400, TREE_TYPE, "SKOPS_TRUSTED_TYPES")
        return
    assert response.status_code == 201, response.text  # SKOPS_TRUSTED_TYPES has the type
    body = response.json()
    assert body["trusted_types"] == [TREE_TYPE]
    assert body["types_approved_by"] is None
    assert registry.stored_names(model) == [f"{model}/1/model.skops"]


def test_a_large_artifact_refused_by_validation_leaves_no_blob(registry, model, tmp_path):
    """On GCS most of this file is already sent while the sandbox checks it; the refusal
    cancels the upload before its last bytes, so the blob never comes to exist."""
    artifact = padded_classifier(tmp_path / "padded.joblib", 20 * 1024**2)
    client = registry.client()
    regression = f"{model}-r"
    create_model(client, regression, "regression", 4)
    response = upload(client, regression, artifact, "joblib")
    assert_refused(registry, regression, response, 400, "is a classifier", "regression")
