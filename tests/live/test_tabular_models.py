"""Tabular models as data scientists make them, on a live console: uploaded (with a sample CSV
where it helps), deployed, and asked through every request form, each answer compared with the
estimator's own in this process.

All models are uploaded first and deployed together, so the serving processes start in
parallel; each test then asks its deployment several things.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC
from xgboost import XGBClassifier, XGBRegressor

from tests.support.api import TERMINAL, create_model, wait_for_status
from tests.support.stack import ConsoleStack
from tests.support.tabular import customers, frame_pipeline, imputer_pipeline, sample_csv

TOLERANCE = 1e-9
XGBOOST_TOLERANCE = 1e-6


@dataclass
class Served:
    name: str
    estimator: Any
    frame: pd.DataFrame
    endpoint: str = ""
    version: dict | None = None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects (numpy scalars as plain values, NaN as null)."""
    out = []
    for record in frame.to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            value = value.item() if hasattr(value, "item") else value
            row[key] = None if isinstance(value, float) and math.isnan(value) else value
        out.append(row)
    return out


def _numeric_frame(n: int = 300) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    y = (frame["f0"] + frame["f1"] > 0).astype(int).to_numpy()
    return frame, y, (frame["f0"] * 3 - frame["f2"]).to_numpy()


def _codes() -> tuple[object, pd.DataFrame]:
    """A numpy-fitted OneHotEncoder on integer codes 1..3: a row of zeros is an unknown
    category to it, so only a sample lets the upload check (and serving's warm-up) predict."""
    rng = np.random.default_rng(2)
    codes = rng.integers(1, 4, size=(200, 2))
    y = (codes[:, 0] == 2).astype(int)
    model = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(codes, y)
    return model, pd.DataFrame(codes, columns=["plan_code", "region_code"])


def _models() -> dict[str, tuple[str, Any, pd.DataFrame, bool]]:
    """name -> (job, estimator, frame the requests come from, upload a sample)."""
    numbers, labels, values = _numeric_frame()
    frame, y = customers()
    svc_frame = frame[["age", "income"]].astype(float)
    boosters = {"n_estimators": 20, "random_state": 0}
    return {
        "tab-pipeline": ("classification", *frame_pipeline(), True),
        "tab-imputer": ("classification", *imputer_pipeline(), False),
        "tab-xgb": (
            "classification",
            XGBClassifier(**boosters).fit(numbers, labels),
            numbers,
            False,
        ),
        "tab-lgbm": (
            "classification",
            LGBMClassifier(**boosters, verbose=-1).fit(numbers, labels),
            numbers,
            False,
        ),
        "tab-catboost": (
            "classification",
            CatBoostClassifier(iterations=20, verbose=0, allow_writing_files=False).fit(
                numbers, labels
            ),
            numbers,
            False,
        ),
        "tab-xgb-reg": (
            "regression",
            XGBRegressor(**boosters).fit(numbers, values),
            numbers,
            False,
        ),
        "tab-codes": ("classification", *_codes(), True),
        "tab-svc": (
            "classification",
            make_pipeline(LinearSVC()).fit(svc_frame, np.where(y == 1, "yes", "no")),
            svc_frame,
            False,
        ),
    }


@pytest.fixture(scope="module")
def served(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("tabular")
    client = console.client("deployer")

    def register(name: str, job: str, estimator: Any, frame: pd.DataFrame, sample: bool) -> Served:
        with console.client("deployer") as own:  # one client per thread
            # Registered without a number of features, as a new user would: the upload takes
            # it from the artifact (CatBoost's feature_names_ too) or the sample's header.
            create_model(own, name, job, None)
            path = folder / f"{name}.joblib"
            joblib.dump(estimator, path)
            files: dict[str, Any] = {"file": (path.name, path.read_bytes())}
            if sample:
                files["sample"] = ("sample.csv", sample_csv(frame))
            response = own.post(
                f"/api/models/{name}/versions/", files=files, data={"model_type": "joblib"}
            )
            assert response.status_code == 201, (name, response.text)
            version = response.json()
            assert own.get(f"/api/models/{name}/").json()["input_size"] == frame.shape[1]
            response = own.post("/api/deployments/", json={"name": name, "model": name})
            assert response.status_code == 202, response.text
            return Served(name, estimator, frame, version=version)

    # The web server validates two uploads at a time (its two workers).
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(register, name, *spec) for name, spec in _models().items()]
        out = {future.result().name: future.result() for future in futures}
    for item in out.values():
        body = wait_for_status(client, item.name, TERMINAL)
        assert body["status"] == "running", body
        item.endpoint = body["endpoint"]
    yield out
    for name in out:
        client.post(f"/api/deployments/{name}/undeploy/")


def _predict(item: Served, body: Any) -> httpx.Response:
    return httpx.post(f"{item.endpoint}/predict", json=body, timeout=30)


def _close(got: Any, want: np.ndarray, tolerance: float = TOLERANCE) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=0, atol=tolerance)


def test_a_dataframe_pipeline_answers_every_request_form(served: dict) -> None:
    item = served["tab-pipeline"]
    frame = item.frame.head(6)
    want = item.estimator.predict_proba(frame)
    rows = _records(frame)
    schema = {c["name"]: c for c in item.version["input_schema"]}
    assert schema["city"] == {
        "name": "city",
        "type": "category",
        "categories": ["london", "paris", "tokyo"],
        "nullable": False,
    }
    assert schema["age"]["type"] == "integer"
    assert item.version["sample_uri"].endswith("sample.csv")
    assert item.version["example_rows"][0] == rows[0]

    for body in (
        rows,
        {"instances": rows},
        {"dataframe_records": rows},
        {
            "dataframe_split": {
                "columns": list(frame.columns),
                "data": [list(r.values()) for r in rows],
            }
        },
    ):
        response = _predict(item, body)
        assert response.status_code == 200, response.text
        _close(response.json()["predictions"], want)

    # MLflow's split form with the columns in another order, mapped by name.
    reordered = ["plan", "income", "city", "age"]
    split = {"columns": reordered, "data": [[r[c] for c in reordered] for r in rows]}
    _close(_predict(item, {"dataframe_split": split}).json()["predictions"], want)

    # The Open Inference Protocol, one tensor per column as MLServer's PandasCodec sends them.
    datatypes = {"age": "INT64", "city": "BYTES", "income": "FP64", "plan": "BYTES"}
    inputs = [
        {"name": c, "shape": [len(rows), 1], "datatype": datatypes[c], "data": [r[c] for r in rows]}
        for c in frame.columns
    ]
    response = httpx.post(
        f"{item.endpoint}/v2/models/{item.name}/infer",
        json={"inputs": inputs, "parameters": {"content_type": "pd"}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    proba = next(o for o in response.json()["outputs"] if o["name"] == "predict_proba")
    _close(np.reshape(proba["data"], proba["shape"]), want)

    # KServe V1 takes the same rows.
    response = httpx.post(
        f"{item.endpoint}/v1/models/{item.name}:predict", json={"instances": rows}, timeout=30
    )
    _close(response.json()["predictions"], want)


def test_missing_values_reach_models_that_take_them(served: dict) -> None:
    # HistGradientBoosting behind a scaler takes NaN natively: the schema says so.
    item = served["tab-pipeline"]
    schema = {c["name"]: c for c in item.version["input_schema"]}
    assert schema["income"]["nullable"] is True
    row = {**_records(item.frame.head(1))[0], "income": None}
    want = item.estimator.predict_proba(pd.DataFrame([row]).astype({"income": float}))
    _close(_predict(item, [row]).json()["predictions"], want)

    imputer = served["tab-imputer"]
    rows = [{"age": 40.0, "income": None}, {"age": 70.0, "income": 30_000.0}]
    want = imputer.estimator.predict_proba(pd.DataFrame(rows, dtype=float))
    _close(_predict(imputer, rows).json()["predictions"], want)
    # The matrix form takes null too, by position.
    _close(_predict(imputer, [[40.0, None], [70.0, 30_000.0]]).json()["predictions"], want)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"age": "thirty"}, ["row 0", "'age'", "expected an integer", "a string"]),
        ({"city": "oslo"}, ["row 0", "'city'", "'oslo'", "'london', 'paris', 'tokyo'"]),
        ({"plan": None}, ["row 0", "'plan'", "null", "missing values"]),
        ({"extra": 1}, ["row 0", "unknown column 'extra'"]),
        ({"income": ...}, ["row 0", "column 'income' is missing"]),
    ],
    ids=["string-for-number", "unknown-category", "null", "extra-column", "missing-column"],
)
def test_bad_rows_are_refused_naming_the_row_and_column(
    served: dict, change: dict, words: list[str]
) -> None:
    item = served["tab-pipeline"]
    row = _records(item.frame.head(1))[0]
    for key, value in change.items():
        if value is ...:
            del row[key]
        else:
            row[key] = value
    response = _predict(item, [row])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error, error


def test_boosting_libraries_serve_their_own_answers(served: dict) -> None:
    for name, library, tolerance in (
        ("tab-xgb", "xgboost", XGBOOST_TOLERANCE),
        ("tab-lgbm", "lightgbm", TOLERANCE),
        ("tab-catboost", "catboost", TOLERANCE),
    ):
        item = served[name]
        frame = item.frame.head(5)
        response = _predict(item, frame.to_numpy().tolist())
        assert response.status_code == 200, (name, response.text)
        _close(response.json()["predictions"], item.estimator.predict_proba(frame), tolerance)
        assert library in item.version["library_versions"], item.version["library_versions"]
    regressor = served["tab-xgb-reg"]
    rows = _records(regressor.frame.head(5))  # fitted on a DataFrame: objects work too
    _close(
        _predict(regressor, rows).json()["predictions"],
        regressor.estimator.predict(regressor.frame.head(5)),
        XGBOOST_TOLERANCE,
    )


def test_a_model_that_refuses_zeros_is_accepted_with_a_sample(
    served: dict, console: ConsoleStack, tmp_path: Path
) -> None:
    item = served["tab-codes"]
    rows = _records(item.frame.head(4))
    want = item.estimator.predict_proba(item.frame.head(4).to_numpy())
    _close(_predict(item, rows).json()["predictions"], want)
    # Without the sample the row of zeros is an unknown category, and the upload says what to do.
    client = console.client("deployer")
    path = tmp_path / "codes.joblib"
    joblib.dump(item.estimator, path)
    response = client.post(
        f"/api/models/{item.name}/versions/",
        files={"file": (path.name, path.read_bytes())},
        data={"model_type": "joblib"},
    )
    assert response.status_code == 400, response.text
    assert "sample CSV" in response.json()["file"][0]


def test_a_classifier_without_probabilities_answers_labels(served: dict) -> None:
    item = served["tab-svc"]
    frame = item.frame.head(5)
    body = _predict(item, _records(frame)).json()
    assert body["predictions"] == item.estimator.predict(frame).tolist()
    assert body["classes"] == ["no", "yes"]
    _close(body["scores"], item.estimator.decision_function(frame))
