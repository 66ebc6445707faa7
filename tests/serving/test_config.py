"""The config schema: the original tool's YAML keeps working; errors are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving.config import ConfigError, ModelSource, ServingConfig, dump_config, load_config

ORIGINAL = """\
modelType: joblib
job: classification
model:
  method: GCS
  projectName: PROJECT
  bucketName: BUCKET
  blobDir: models/iris/3/model.joblib
inputSize: 4
"""


def test_original_format_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(ORIGINAL)
    cfg = load_config(path)
    assert cfg.model_type == "joblib"
    assert cfg.model.bucket_name == "BUCKET"
    assert cfg.model.blob_dir == "models/iris/3/model.joblib"
    assert cfg.name == "model"
    assert cfg.max_batch_rows == 10_000
    assert cfg.batching.enabled is True
    assert cfg.model.trusted_types == []


def test_dump_uses_camel_case_and_round_trips() -> None:
    cfg = ServingConfig(
        model_type="skops",
        job="regression",
        model=ModelSource(method="LOCAL", path="/m/model.skops", trusted_types=["a.B"]),
        input_size=3,
        name="houses",
    )
    text = dump_config(cfg)
    data = yaml.safe_load(text)
    assert data["modelType"] == "skops"
    assert data["inputSize"] == 3
    assert data["model"] == {"method": "LOCAL", "path": "/m/model.skops", "trustedTypes": ["a.B"]}
    assert "version" not in data  # None is omitted
    assert ServingConfig.model_validate(data) == cfg


def _yaml(model: str = "{method: LOCAL, path: /x}", **keys: str) -> str:
    fields = {"modelType": "pkl", "job": "regression", "model": model, "inputSize": "4", **keys}
    return "".join(f"{key}: {value}\n" for key, value in fields.items())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_yaml(model="{method: LOCAL}"), "model: method LOCAL needs model.path"),
        (_yaml(model="{method: GCS, blobDir: x}"), "needs model.bucketName and model.blobDir"),
        (_yaml(modelType="onnx"), "modelType: Input should be 'pkl', 'joblib' or 'skops'"),
        (_yaml(inputSize="0"), "inputSize: Input should be greater than 0"),
        (_yaml(inputsize="4"), "inputsize: Extra inputs are not permitted"),
        (_yaml(model="{method: LOCAL, path: /x, sha256: abc}"), "64 hexadecimal characters"),
        ("- just\n- a list\n", "expected a mapping"),
        ("modelType: [unclosed\n", "is not valid YAML"),
    ],
)
def test_invalid_configs_raise_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert str(path) in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
