"""A tabular model in the browser: uploaded with its sample CSV through the upload form, then
predicted from the form built from its input schema (a select for each category column)."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.support.api import create_model, wait_for_status
from tests.support.tabular import CITIES, frame_pipeline, sample_csv

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_the_schema_built_form_predicts_like_the_estimator(visit, console, tmp_path) -> None:
    estimator, frame = frame_pipeline()
    client = console.client("deployer")
    create_model(client, "tab-ui", "classification", 4)
    artifact = tmp_path / "pipeline.joblib"
    joblib.dump(estimator, artifact)
    sample = tmp_path / "sample.csv"
    sample.write_bytes(sample_csv(frame))

    me = visit("deployer")
    page = me.page
    me.goto("/models/tab-ui/upload/")
    page.get_by_label("Model file").set_input_files(str(artifact))
    page.get_by_label("Sample rows (CSV, optional)").set_input_files(str(sample))
    page.get_by_role("button", name="Upload and validate").click()
    page.locator("#upload-result.ok").wait_for(timeout=90_000)
    schema = page.locator("#input-schema")
    assert "london, paris, tokyo" in schema.inner_text()

    response = client.post("/api/deployments/", json={"name": "tab-ui", "model": "tab-ui"})
    assert response.status_code == 202, response.text
    deployment = wait_for_status(client, "tab-ui", {"running", "failed"}, timeout=150)
    assert deployment["status"] == "running", deployment["status_reason"]

    me.goto("/deployments/tab-ui/")
    city = page.get_by_label("city", exact=True)
    assert city.evaluate("e => e.tagName") == "SELECT"
    assert city.locator("option").all_inner_texts() == CITIES
    # The sample's first row is prefilled; change two values, one of them a category.
    first = frame.iloc[0]
    assert page.get_by_label("age", exact=True).input_value() == str(first["age"])
    city.select_option("london")
    page.get_by_label("income", exact=True).fill("61000.5")
    page.evaluate("document.getElementById('predict').dataset.stale = 'yes'")
    page.get_by_role("button", name="Predict").click()
    page.locator("#predict:not([data-stale]) #prediction-table").wait_for()
    me.screenshot("tabular-form-prediction")

    row = {"age": first["age"], "city": "london", "income": 61000.5, "plan": first["plan"]}
    want = estimator.predict_proba(pd.DataFrame([row]))
    shown = page.locator("#prediction-table td.prob").evaluate_all(
        "els => els.map(e => e.dataset.value)"
    )
    np.testing.assert_allclose([float(v) for v in shown], want[0], rtol=0, atol=1e-9)
    texts = page.locator("#prediction-table td.prob").all_inner_texts()
    assert texts == [f"{p:.4f}" for p in want[0]]
    bars = page.locator("#prediction-table progress.prob-bar")
    assert bars.evaluate_all("els => els.map(e => e.value)") == [
        pytest.approx(round(p * 100, 1)) for p in want[0]
    ]
    assert client.post("/api/deployments/tab-ui/undeploy/").status_code == 202
