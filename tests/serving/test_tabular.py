"""Tabular requests in-process: every form a DataFrame model takes, and every refusal naming
the row, the column and what was expected; the schema learned from artifacts and samples."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC
from starlette.testclient import TestClient

from serving import fastpath
from serving.app import create_app
from serving.config import Column, ConfigError, ModelSource, ServingConfig, parse_config
from serving.model import ModelError, ServedModel
from serving.schema import SampleError, learn_schema, read_sample
from tests.support.tabular import CITIES, PLANS, customers, frame_pipeline, imputer_pipeline

SCHEMA = [
    Column(name="age", type="integer", nullable=True),
    Column(name="city", type="category", categories=CITIES),
    Column(name="income", type="number", nullable=True),
    Column(name="plan", type="category", categories=PLANS),
]


def _config(input_size: int, **extra: Any) -> ServingConfig:
    return ServingConfig(
        model_type="joblib",
        job=extra.pop("job", "classification"),
        model=ModelSource(method="LOCAL", path="/unused/model.joblib"),
        input_size=input_size,
        name="tab",
        **extra,
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture(scope="module")
def pipeline() -> Iterator[tuple[TestClient, Any, pd.DataFrame]]:
    estimator, frame = frame_pipeline()
    app = create_app(
        _config(4, input_schema=SCHEMA, sample_rows=_records(frame.head(2))), estimator
    )
    with TestClient(app) as client:
        yield client, estimator, frame


def _proba(response: Any) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["predictions"])


def test_every_row_form_gives_the_estimators_answer(pipeline) -> None:
    client, estimator, frame = pipeline
    head = frame.head(4)
    want = estimator.predict_proba(head)
    rows = _records(head)
    positional = [list(r.values()) for r in rows]
    for body in (
        rows,
        {"instances": rows},
        {"dataframe_records": rows},
        {"dataframe_split": {"columns": list(head.columns), "data": positional}},
        positional,  # the matrix, values in the schema's order
    ):
        np.testing.assert_allclose(_proba(client.post("/predict", json=body)), want, atol=1e-12)


def test_null_is_a_missing_value_where_the_column_takes_one(pipeline) -> None:
    client, estimator, frame = pipeline
    row = {**_records(frame.head(1))[0], "income": None, "age": None}
    want = estimator.predict_proba(pd.DataFrame([row]).astype({"income": float, "age": float}))
    np.testing.assert_allclose(_proba(client.post("/predict", json=[row])), want, atol=1e-12)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            [{"age": "x", "city": "paris", "income": 1.0, "plan": "pro"}],
            ["row 0, column 'age'", "expected an integer, got a string"],
        ),
        (
            [{"age": 1, "city": "oslo", "income": 1.0, "plan": "pro"}],
            ["column 'city'", "'oslo'", "'london', 'paris', 'tokyo'"],
        ),
        ([{"age": 1, "city": "paris", "income": 1.0}], ["row 0: column 'plan' is missing"]),
        (
            [{"age": 1, "city": "paris", "income": 1.0, "plan": "pro", "x": 2}],
            ["row 0: unknown column 'x'"],
        ),
        (
            [{"age": 1, "city": None, "income": 1.0, "plan": "pro"}],
            ["column 'city'", "null", "send one of its categories"],
        ),
        (
            [{"age": 1, "city": "paris", "income": True, "plan": "pro"}],
            ["column 'income'", "expected a number, got a boolean"],
        ),
        (
            [{"age": 1.5, "city": "paris", "income": 1, "plan": "pro"}],
            ["column 'age'", "expected an integer"],
        ),
        (
            {"dataframe_split": {"columns": ["age", "city"], "data": [[1, "paris"]]}},
            ["dataframe_split: column 'income' is missing"],
        ),
        (
            {
                "dataframe_split": {
                    "columns": ["age", "city", "income", "plan", "y"],
                    "data": [[1, "paris", 1, "pro", 0]],
                }
            },
            ["unknown column 'y'"],
        ),
        ([[1, "paris", 2.0]], ["row 0: expected 4 values"]),
        ({"rows": []}, ["dataframe_split", "instances"]),
    ],
)
def test_bad_rows_are_refused_naming_what_is_wrong(pipeline, body: Any, words: list[str]) -> None:
    client, _, _ = pipeline
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    for word in words:
        assert word in response.json()["error"]


def _column_tensors(rows: list[dict[str, Any]], binary_city: bool = False) -> tuple[dict, bytes]:
    datatypes = {"age": "INT64", "city": "BYTES", "income": "FP64", "plan": "BYTES"}
    inputs = []
    raw = b""
    for name in ("age", "city", "income", "plan"):
        tensor: dict[str, Any] = {
            "name": name,
            "shape": [len(rows), 1],
            "datatype": datatypes[name],
        }
        values = [r[name] for r in rows]
        if binary_city and name == "city":
            data = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in values)
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw += data
        else:
            tensor["data"] = values
        inputs.append(tensor)
    return {"inputs": inputs, "parameters": {"content_type": "pd"}}, raw


def test_open_inference_takes_one_tensor_per_column(pipeline) -> None:
    client, estimator, frame = pipeline
    head = frame.head(3)
    want = estimator.predict_proba(head)
    doc, _ = _column_tensors(_records(head))
    response = client.post("/v2/models/tab/infer", json=doc)
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}
    np.testing.assert_allclose(np.reshape(out["predict_proba"]["data"], (3, 2)), want, atol=1e-12)
    # Strings as binary BYTES elements (each one's length, then it), as tritonclient sends them.
    import orjson

    doc, raw = _column_tensors(_records(head), binary_city=True)
    head_json = orjson.dumps(doc)
    response = client.post(
        "/v2/models/tab/infer",
        content=head_json + raw,
        headers={"inference-header-content-length": str(len(head_json))},
    )
    assert response.status_code == 200, response.text
    meta = client.get("/v2/models/tab").json()
    assert [i["name"] for i in meta["inputs"]] == ["age", "city", "income", "plan"]
    assert meta["inputs"][1]["datatype"] == "BYTES"
    doc["inputs"] = doc["inputs"][:3]
    for tensor in doc["inputs"]:
        tensor.pop("parameters", None)
        tensor.setdefault("data", ["paris"] * 3)
    response = client.post("/v2/models/tab/infer", json=doc)
    assert response.status_code == 400
    assert "input 'plan' is missing" in response.json()["error"]


def test_the_matrix_fast_path_still_serves_numeric_models() -> None:
    estimator, frame = imputer_pipeline()
    cfg = _config(2, input_schema=[Column(name=c, nullable=True) for c in frame.columns])
    model = ServedModel(cfg, estimator)
    assert model.table is not None and model.table.numeric
    features = model.table.parse([[40.0, None]], 10)
    assert isinstance(features, np.ndarray) and math.isnan(features[0, 1])
    want = estimator.predict_proba(pd.DataFrame([[40.0, np.nan]], columns=frame.columns))
    np.testing.assert_allclose(model.run("predict_proba", features), want, atol=1e-12)


def test_a_classifier_without_predict_proba_answers_labels_and_scores() -> None:
    frame, y = customers()
    numbers = frame[["age", "income"]].to_numpy(dtype=float)
    estimator = make_pipeline(LinearSVC()).fit(numbers, np.where(y == 1, "yes", "no"))
    with TestClient(create_app(_config(2), estimator)) as client:
        body = client.post("/predict", json=numbers[:3].tolist()).json()
    assert body["predictions"] == estimator.predict(numbers[:3]).tolist()
    assert body["classes"] == ["no", "yes"]
    np.testing.assert_allclose(body["scores"], estimator.decision_function(numbers[:3]))


def test_the_schema_must_match_the_fitted_columns_and_the_input_size() -> None:
    estimator, _ = frame_pipeline()
    wrong = [Column(name=n) for n in ("a", "b", "c", "d")]
    with pytest.raises(ModelError, match="not the columns"):
        ServedModel(_config(4, input_schema=wrong), estimator)
    with pytest.raises(ConfigError, match="inputSchema has 4 columns but inputSize is 3"):
        parse_config(
            {
                "modelType": "joblib",
                "job": "regression",
                "model": {"method": "LOCAL", "path": "/m"},
                "inputSize": 3,
                "inputSchema": [{"name": n} for n in "abcd"],
            }
        )


def test_openmp_estimators_run_small_batches_on_one_thread() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    estimator = HistGradientBoostingClassifier(max_iter=5).fit(X, X[:, 0] > 0)
    model = ServedModel(_config(20), estimator)
    if len(os.sched_getaffinity(0)) == 1:  # nothing to choose on one core
        assert model._threads is None
        return
    assert model._threads is not None, "scikit-learn's HistGradientBoosting uses OpenMP"
    from threadpoolctl import threadpool_info

    model.run("predict_proba", X[:1])
    openmp = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
    assert set(openmp) == {1}
    model.run("predict_proba", np.repeat(X, fastpath.OPENMP_PARALLEL_ROWS // 200 + 1, axis=0))
    openmp = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
    assert max(openmp) > 1


# --- learning the schema ---------------------------------------------------------------------


def test_the_schema_is_learned_from_encoders_and_the_sample() -> None:
    estimator, frame = frame_pipeline()
    header, rows = read_sample(frame.head(5).to_csv(index=False))
    columns, sample = learn_schema(estimator, header, rows)
    assert columns is not None
    by_name = {c.name: c for c in columns}
    assert by_name["city"].type == "category" and by_name["city"].categories == CITIES
    assert by_name["plan"].categories == PLANS and not by_name["plan"].nullable
    assert by_name["age"].type == "integer" and by_name["income"].type == "number"
    # HistGradientBoosting takes NaN in numeric columns; the encoder refuses it in categories.
    assert by_name["income"].nullable and not by_name["city"].nullable
    assert sample[0] == _records(frame.head(1))[0]


def test_a_model_without_nan_support_gets_no_nullable_column() -> None:
    frame, y = customers()
    numbers = frame[["age", "income"]].astype(float)
    columns, _ = learn_schema(LogisticRegression().fit(numbers, y), None, None)
    assert columns is not None and [c.nullable for c in columns] == [False, False]
    imputer, _ = imputer_pipeline()
    columns, _ = learn_schema(imputer, None, None)
    assert columns is not None and all(c.nullable for c in columns)


def test_a_sample_names_the_columns_of_a_numpy_fitted_model() -> None:
    codes = np.random.default_rng(0).integers(1, 4, size=(60, 2))
    estimator = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(codes, codes[:, 0] == 2)
    assert learn_schema(estimator, None, None) == (None, [])
    columns, sample = learn_schema(estimator, ["a", "b"], [["1", "3"], ["2", "2"]])
    assert columns is not None and columns[0].type == "category"
    assert columns[0].categories == [1, 2, 3] and sample == [{"a": 1, "b": 3}, {"a": 2, "b": 2}]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("a,b\n", "no rows"),
        ("a,a\n1,2\n", "more than once"),
        ("a,b\n1,2,3\n", "line 2 has 3 cells"),
    ],
)
def test_bad_samples_are_refused_saying_why(text: str, words: str) -> None:
    with pytest.raises(SampleError, match=words):
        read_sample(text)


def test_a_sample_must_hold_the_fitted_columns() -> None:
    estimator, frame = frame_pipeline()
    header, rows = read_sample(frame[["age", "city", "income"]].head(3).to_csv(index=False))
    with pytest.raises(SampleError, match="misses column"):
        learn_schema(estimator, header, rows)


def test_grpc_takes_one_tensor_per_column(tmp_path) -> None:
    """A real serving process (serving's and tritonclient's protobuf modules cannot share one
    process), asked with tritonclient.grpc: BYTES tensors for the strings."""
    import joblib
    import tritonclient.grpc as triton

    from tests.serving.test_grpc import GrpcServingProcess
    from tests.support.net import free_port
    from tests.support.serving import write_config

    estimator, frame = frame_pipeline()
    artifact = tmp_path / "pipeline.joblib"
    joblib.dump(estimator, artifact)
    cfg = _config(4, input_schema=SCHEMA)
    cfg.model = ModelSource(method="LOCAL", path=str(artifact))
    server = GrpcServingProcess(write_config(tmp_path, "tab", cfg), free_port()).wait_ready()
    head = frame.head(3)
    try:
        client = triton.InferenceServerClient(url=server.grpc_url)
        inputs = []
        for name, datatype in (
            ("age", "INT64"),
            ("city", "BYTES"),
            ("income", "FP64"),
            ("plan", "BYTES"),
        ):
            values = head[[name]].to_numpy(dtype=object if datatype == "BYTES" else None)
            tensor = triton.InferInput(name, list(values.shape), datatype)
            tensor.set_data_from_numpy(
                values
                if datatype == "BYTES"
                else values.astype(np.int64 if datatype == "INT64" else np.float64)
            )
            inputs.append(tensor)
        wanted = [triton.InferRequestedOutput("predict_proba")]
        proba = client.infer("tab", inputs, outputs=wanted).as_numpy("predict_proba")
        client.close()
    finally:
        server.stop()
    np.testing.assert_allclose(proba, estimator.predict_proba(head), atol=1e-12)
