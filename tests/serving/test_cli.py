"""`python -m serving`: a bad config or artifact exits non-zero with one clear line on stderr."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib

from serving.config import ModelSource, ServingConfig, dump_config

ROOT = Path(__file__).resolve().parents[2]


def run_serving(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", "1", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, cfg: ServingConfig) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    return path


def config_for(artifact: Path, model_type: str = "joblib", **kw) -> ServingConfig:
    source = ModelSource(method="LOCAL", path=str(artifact), sha256=kw.pop("sha256", None))
    return ServingConfig(
        model_type=model_type, job="classification", model=source, input_size=4, **kw
    )


def assert_one_line_failure(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("serving: ")
    assert expected in lines[0]


def test_invalid_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("modelType: joblib\njob: classification\nmodel: {method: LOCAL}\n")
    assert_one_line_failure(run_serving("--config", str(path)), "method LOCAL needs model.path")


def test_config_path_from_environment(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = run_serving(env={"SERVING_CONFIG": str(missing)})
    assert_one_line_failure(result, f"cannot read config {missing}")


def test_missing_artifact(tmp_path: Path) -> None:
    cfg = write(tmp_path, config_for(tmp_path / "gone.joblib"))
    assert_one_line_failure(run_serving("--config", str(cfg)), "artifact not found")


def test_sha256_mismatch(tmp_path: Path, iris) -> None:
    artifact = tmp_path / "iris.joblib"
    joblib.dump(iris[0], artifact)
    cfg = write(tmp_path, config_for(artifact, sha256="a" * 64))
    assert_one_line_failure(run_serving("--config", str(cfg)), "sha256 mismatch")


def test_feature_count_must_match_the_model(tmp_path: Path, diabetes) -> None:
    artifact = tmp_path / "diabetes.pkl"
    artifact.write_bytes(pickle.dumps(diabetes[0]))
    cfg = config_for(artifact, "pkl")
    cfg.job = "regression"
    result = run_serving("--config", str(write(tmp_path, cfg)))
    assert_one_line_failure(result, "inputSize is 4 but the model was trained on 10 features")


def test_regressor_cannot_serve_classification(tmp_path: Path, diabetes) -> None:
    artifact = tmp_path / "diabetes.pkl"
    artifact.write_bytes(pickle.dumps(diabetes[0]))
    cfg = config_for(artifact, "pkl")
    cfg.input_size = 10
    result = run_serving("--config", str(write(tmp_path, cfg)))
    assert_one_line_failure(result, "job is classification but Ridge has no predict_proba()")


def test_bad_tuning_variable(tmp_path: Path) -> None:
    result = run_serving("--config", str(tmp_path / "x.yaml"), env={"SERVING_BLAS_THREADS": "lots"})
    assert_one_line_failure(result, "SERVING_BLAS_THREADS must be a positive integer, got 'lots'")
