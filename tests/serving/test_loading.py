"""Artifact loading: digests are checked before unpickling; skops trusts only the config."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from serving.config import ModelSource, ServingConfig
from serving.loading import ArtifactError, load_artifact, load_model, verify_sha256


class MakesDirWhenUnpickled:
    """Unpickling this runs os.mkdir: proof of whether an artifact was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def local_config(path: Path, model_type: str, **source) -> ServingConfig:
    return ServingConfig(
        model_type=model_type,
        job="classification",
        model=ModelSource(method="LOCAL", path=str(path), **source),
        input_size=4,
    )


@pytest.fixture(scope="module")
def clipped_pipeline(iris):
    _, X = iris
    y = iris[0].predict(X)
    clip = FunctionTransformer(np.clip, kw_args={"a_min": 0.0, "a_max": 6.0})
    return make_pipeline(clip, LogisticRegression(max_iter=1000)).fit(X, y), X


def test_sha256_mismatch_is_refused_before_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    artifact = tmp_path / "evil.pkl"
    artifact.write_bytes(pickle.dumps(MakesDirWhenUnpickled(marker)))
    with pytest.raises(ArtifactError, match="sha256 mismatch .*refusing to load it"):
        load_model(local_config(artifact, "pkl", sha256="0" * 64))
    assert not marker.exists()
    # The same artifact with its real digest, its global approved, is unpickled (it does run):
    load_artifact(artifact, "pkl", trusted_types=["posix.mkdir"])
    assert marker.exists()


def test_matching_sha256_loads(tmp_path: Path, iris) -> None:
    artifact = tmp_path / "iris.joblib"
    joblib.dump(iris[0], artifact)
    verify_sha256(artifact, sha256(artifact).upper())
    model = load_model(local_config(artifact, "joblib", sha256=sha256(artifact)))
    assert model.predict_proba(iris[1][:2]).shape == (2, 3)


def test_skops_untrusted_type_is_refused_naming_it(tmp_path: Path, clipped_pipeline) -> None:
    artifact = tmp_path / "clipped.skops"
    sio.dump(clipped_pipeline[0], artifact)
    with pytest.raises(ArtifactError, match="untrusted types: numpy.clip;"):
        load_artifact(artifact, "skops")
    with pytest.raises(ArtifactError, match="numpy.clip"):
        load_model(local_config(artifact, "skops", trusted_types=["numpy.other"]))


def test_skops_trusted_types_come_from_the_config(tmp_path: Path, clipped_pipeline) -> None:
    pipeline, X = clipped_pipeline
    artifact = tmp_path / "clipped.skops"
    sio.dump(pipeline, artifact)
    model = load_model(local_config(artifact, "skops", trusted_types=["numpy.clip"]))
    np.testing.assert_allclose(model.predict_proba(X), pipeline.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize(
    ("content", "model_type", "message"),
    [
        (b"not a pickle", "pkl", "cannot load pkl artifact"),
        (b"not a pickle", "joblib", "cannot load joblib artifact"),
        (b"not a zip", "skops", "cannot load skops artifact"),
    ],
)
def test_corrupt_artifacts_raise_one_line(tmp_path: Path, content, model_type, message) -> None:
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(content)
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(artifact, model_type)
    assert "\n" not in str(info.value)


def test_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="artifact not found: .*nothing.pkl"):
        load_model(local_config(tmp_path / "nothing.pkl", "pkl"))
