"""skops types an admin approves for one upload, and where artifact code runs."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.api import create_model
from tests.support.hostile import pickle_to
from tests.support.models import forest
from tests.support.probe import Probe
from tests.support.registry import TREE_TYPE, VALIDATION_MEMORY_BYTES

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


def _group_pids(pgid: int) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.add(int(entry))
            except ProcessLookupError:
                pass
    return pids


def test_artifact_code_runs_only_in_the_limited_sandbox_child(registries, tmp_path):
    """A pickle that records where it was unpickled: never in the web or worker process."""
    registry = registries["file"]
    stack = registry.stack
    web_pids = _group_pids(stack.procs["web"].pid)
    worker_pids = _group_pids(stack.procs["worker"].pid)
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
    assert "builtins.dict is not an estimator" in response.json()["file"][0]
    facts = json.loads(facts_path.read_text())
    assert facts["pid"] not in web_pids | worker_pids
    assert facts["pgid"] == facts["pid"]  # a session of its own, killed as a group
    assert facts["ppid"] in web_pids  # started by the web worker handling the upload
    assert facts["rlimit_as"] == VALIDATION_MEMORY_BYTES
    assert os.path.basename(facts["cwd"]).startswith("sandbox-")
    assert not os.path.exists(facts["cwd"])  # the throw-away working directory is gone
    # Nothing of the console's environment (settings, secrets, store credentials) leaks in;
    # KMP_* are set by scikit-learn's own import inside the child.
    assert {name for name in facts["env"] if not name.startswith("KMP_")} <= {
        "PATH",
        "PYTHONPATH",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
    }
    assert registry.stored_names("probed") == []
