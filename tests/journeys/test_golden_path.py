"""The whole flow through the REST API with a token: a real worker, real serving processes."""

from __future__ import annotations

import hashlib
import json

import httpx
import numpy as np
import pytest

from tests.support.api import create_model, upload, wait_for_status
from tests.support.models import diabetes_regressor, iris_classifier, save

pytestmark = pytest.mark.integration


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    except FileNotFoundError:
        return True


def test_classifier_upload_deploy_predict_undeploy(console, tmp_path):
    client = console.client("deployer")
    estimator, X = iris_classifier()
    artifact = save(estimator, tmp_path / "iris.joblib", "joblib")
    create_model(client, "iris", "classification", 4)

    response = upload(client, "iris", artifact, "joblib")
    assert response.status_code == 201, response.text
    version = response.json()
    assert version["version"] == 1
    assert version["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert version["size"] == artifact.stat().st_size
    assert version["classes"] == [0, 1, 2]
    assert version["n_features"] == 4
    assert version["estimator_class"].endswith("LogisticRegression")

    response = client.post(
        "/api/deployments/",
        json={"name": "iris-golden", "model": "iris", "version": 1, "replicas": 1},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    deployment = wait_for_status(client, "iris-golden", {"running", "failed"})
    assert deployment["status"] == "running", deployment["status_reason"]
    endpoint = deployment["endpoint"]
    assert endpoint.startswith("http://127.0.0.1:")

    rows = X[::10]
    expected = estimator.predict_proba(rows)
    through_console = client.post(
        "/api/deployments/iris-golden/predict/", json={"instances": rows.tolist()}
    )
    assert through_console.status_code == 200, through_console.text
    body = through_console.json()
    assert body["classes"] == [0, 1, 2]
    np.testing.assert_allclose(np.array(body["predictions"]), expected, rtol=0, atol=1e-9)

    direct = httpx.post(f"{endpoint}/predict", json=rows.tolist(), timeout=30)
    assert direct.status_code == 200
    np.testing.assert_allclose(np.array(direct.json()["predictions"]), expected, rtol=0, atol=1e-9)

    state = json.loads((console.var_dir / "runtime" / "iris-golden" / "state.json").read_text())
    response = client.post("/api/deployments/iris-golden/undeploy/")
    assert response.status_code == 202, response.text
    deployment = wait_for_status(client, "iris-golden", {"stopped"})
    assert deployment["endpoint"] == ""
    assert _process_gone(state["pid"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{endpoint}/v2/health/live", timeout=5)

    events = client.get("/api/deployments/iris-golden/events/").json()["results"]
    actions = [e["action"] for e in events]
    assert {"create", "undeploy", "stopped"} <= set(actions)
    assert any(e["actor"] == "deployer" for e in events)


def test_regressor_pickle_round_trip(console, tmp_path):
    client = console.client("deployer")
    estimator, X = diabetes_regressor()
    artifact = save(estimator, tmp_path / "diabetes.pkl", "pkl")
    create_model(client, "diabetes", "regression", 10)
    response = upload(client, "diabetes", artifact, "pkl")
    assert response.status_code == 201, response.text
    assert response.json()["classes"] is None

    response = client.post(
        "/api/deployments/", json={"name": "diabetes", "model": "diabetes", "version": 1}
    )
    assert response.status_code == 202, response.text
    deployment = wait_for_status(client, "diabetes", {"running", "failed"})
    assert deployment["status"] == "running", deployment["status_reason"]

    rows = X[:7]
    response = client.post("/api/deployments/diabetes/predict/", json=rows.tolist())
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        np.array(response.json()["predictions"]), estimator.predict(rows), rtol=0, atol=1e-9
    )

    response = client.post("/api/deployments/diabetes/predict/", json=[[1.0, 2.0]])
    assert response.status_code == 422
    assert "feature" in response.text.lower()
    again = httpx.post(f"{deployment['endpoint']}/predict", json=rows[:1].tolist(), timeout=30)
    assert again.status_code == 200

    assert client.post("/api/deployments/diabetes/undeploy/").status_code == 202
    wait_for_status(client, "diabetes", {"stopped"})
