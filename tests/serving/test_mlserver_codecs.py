"""Requests built by MLServer's own codecs, as its users send them: NumpyCodec for a matrix and
PandasCodec for a DataFrame (one tensor per column, strings as BYTES).

MLServer pins FastAPI, Starlette and uvloop versions serving cannot share, so it lives in a venv
of its own (`tools/get-mlserver.sh`, run by `make test`); the codecs run there, in a child
process, and the requests they build are sent to serving.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from serving.app import create_app
from serving.config import Column, ModelSource, ServingConfig
from tests.support.models import iris_classifier
from tests.support.tabular import CITIES, PLANS, frame_pipeline

ROOT = Path(__file__).resolve().parents[2]
MLSERVER_PYTHON = ROOT / ".tools" / "mlserver-venv" / "bin" / "python"

ENCODE = """
import json, sys
import numpy as np
import pandas as pd
from mlserver.codecs import NumpyRequestCodec, PandasCodec

given = json.loads(sys.stdin.read())
matrix = NumpyRequestCodec.encode_request(np.asarray(given["matrix"], dtype=np.float64))
records = pd.DataFrame(given["records"])
# Strings as pandas 2 holds them (object), which MLServer 1.7.1's codec encodes as BYTES.
records = records.astype({c: object for c in records if records[c].dtype.kind in "OSU"})
frame = PandasCodec.encode_request(records, use_bytes=False)
print(json.dumps({
    "numpy": matrix.model_dump(mode="json", exclude_none=True),
    "pandas": frame.model_dump(mode="json", exclude_none=True),
}))
"""


def encode_with_mlserver(matrix: list[list[float]], records: list[dict[str, Any]]) -> dict:
    if not MLSERVER_PYTHON.exists():
        why = f"MLServer's venv is missing ({MLSERVER_PYTHON}): bash tools/get-mlserver.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    done = subprocess.run(
        [str(MLSERVER_PYTHON), "-c", ENCODE],
        input=json.dumps({"matrix": matrix, "records": records}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def _config(input_size: int, name: str, **extra: Any) -> ServingConfig:
    return ServingConfig(
        model_type="joblib",
        job="classification",
        model=ModelSource(method="LOCAL", path="/unused/model.joblib"),
        input_size=input_size,
        name=name,
        **extra,
    )


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    iris, X = iris_classifier()
    pipeline, frame = frame_pipeline()
    schema = [
        Column(name="age", type="integer", nullable=True),
        Column(name="city", type="category", categories=CITIES),
        Column(name="income", type="number", nullable=True),
        Column(name="plan", type="category", categories=PLANS),
    ]
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.head(5).to_dict(orient="records")
    ]
    with (
        TestClient(create_app(_config(4, "iris"), iris)) as numeric,
        TestClient(create_app(_config(4, "tab", input_schema=schema), pipeline)) as tabular,
    ):
        yield {
            "numeric": numeric,
            "tabular": tabular,
            "iris": iris,
            "X": X[:5],
            "pipeline": pipeline,
            "frame": frame.head(5),
            "requests": encode_with_mlserver(X[:5].tolist(), records),
        }


def _output(response: Any, name: str) -> np.ndarray:
    assert response.status_code == 200, response.text
    out = {o["name"]: o for o in response.json()["outputs"]}[name]
    return np.reshape(out["data"], out["shape"])


def test_a_numpy_codec_request_gets_scikit_learns_answer(served: dict[str, Any]) -> None:
    response = served["numeric"].post("/v2/models/iris/infer", json=served["requests"]["numpy"])
    want = served["iris"].predict_proba(served["X"])
    np.testing.assert_allclose(_output(response, "predict_proba"), want, rtol=0, atol=1e-9)


def test_a_pandas_codec_request_gets_the_pipelines_answer(served: dict[str, Any]) -> None:
    request = served["requests"]["pandas"]
    # What PandasCodec sent: one tensor per column, the strings as BYTES.
    kinds = {tensor["name"]: tensor["datatype"] for tensor in request["inputs"]}
    assert kinds["city"] == "BYTES" and kinds["plan"] == "BYTES"
    response = served["tabular"].post("/v2/models/tab/infer", json=request)
    want = served["pipeline"].predict_proba(served["frame"])
    np.testing.assert_allclose(_output(response, "predict_proba"), want, rtol=0, atol=1e-9)
