"""skops types an admin approves for one upload, and where artifact code runs."""

from __future__ import annotations

import pytest

from tests.support.api import create_model
from tests.support.hostile import pickle_to
from tests.support.models import forest
from tests.support.probe import Probe
from tests.support.registry import TREE_TYPE

pytestmark = pytest.mark.integration


def upload_skops(client, model, path, approve: list[str]):
    with path.open("rb") as f:
        return client.post(
            f"/api/models/{model}/versions/",
            files={"file": (path.name, f)},
            data={"model_type": "skops", "approve_types": approve},
        )


def test_only_an_admin_can_approve_untrusted_skops_types(registries, tmp_path):
    registry = registries["file"]
    create_model(registry.client(), "approved", "classification", 4)
    artifact = forest(tmp_path / "forest.skops", "skops")

    by_deployer = upload_skops(registry.client("deployer"), "approved", artifact, [TREE_TYPE])
    assert by_deployer.status_code == 403, by_deployer.text
    assert "only an admin" in by_deployer.json()["file"][0]
    assert registry.stored_names("approved") == []

    by_admin = upload_skops(registry.client("admin"), "approved", artifact, [TREE_TYPE])
    assert by_admin.status_code == 201, by_admin.text
    body = by_admin.json()
    assert body["trusted_types"] == [TREE_TYPE]
    assert body["types_approved_by"] == "admin"
    assert body["uploaded_by"] == "admin"


def test_an_artifact_importing_code_outside_the_allowlist_is_refused_naming_it(
    registries, tmp_path
):
    """The probe's own function is no model class: refused before it runs. Where approved
    code runs, and what it can reach, is tests/security's subject."""
    registry = registries["file"]
    facts_path = tmp_path / "where.json"
    create_model(registry.client(), "probed", "classification", 4)
    artifact = pickle_to(Probe(str(facts_path)), tmp_path / "probe.pkl")

    with artifact.open("rb") as f:
        response = registry.client().post(
            "/api/models/probed/versions/",
            files={"file": ("probe.pkl", f)},
            data={"model_type": "pkl"},
        )

    assert response.status_code == 400
    message = response.json()["file"][0]
    assert "imports tests.support.probe.record" in message
    assert "refused before that code ran" in message
    assert "approve_types" in message
    assert not facts_path.exists()
    assert registry.stored_names("probed") == []
