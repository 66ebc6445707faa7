"""The sandbox child on its own (no console): its guard refuses globals that reach dangerous
code by the back door, before the unpickler can call them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _text(value: str) -> bytes:
    data = value.encode()
    return b"\x8c" + bytes([len(data)]) + data  # SHORT_BINUNICODE


def calling(module: str, name: str, argument: str) -> bytes:
    """A protocol-4 pickle that calls module.name(argument) when loaded (STACK_GLOBAL, REDUCE)."""
    return b"\x80\x04" + _text(module) + _text(name) + b"\x93" + _text(argument) + b"\x85R."


def run_child(path: Path, model_type: str, tmp_path: Path) -> dict:
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "deployments.registry.sandbox_child", str(path)]
        + ["--model-type", model_type, "--input-size", "4", "--output", str(report)]
        + ["--memory-bytes", str(2 * 1024**3), "--cpu-seconds", "30"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
        check=True,
        timeout=60,
    )
    return json.loads(report.read_text())


@pytest.mark.parametrize(
    ("module", "name", "refused", "model_type"),
    [
        # os.system reached through a module that happens to import os
        ("joblib.numpy_pickle", "os.system", "joblib.numpy_pickle.os.system", "pkl"),
        ("joblib.numpy_pickle", "os.system", "joblib.numpy_pickle.os.system", "joblib"),
        # the same function under an innocent-looking module name
        ("posixpath", "os.system", "posixpath.os.system", "pkl"),
        # a dangerous numpy function through sklearn's `np`
        ("sklearn.base", "np.save", "sklearn.base.np.save", "pkl"),
        ("builtins", "exec", "builtins.exec", "pkl"),
    ],
)
def test_back_door_globals_are_refused_before_they_run(tmp_path, module, name, refused, model_type):
    marker = tmp_path / "marker"
    argument = f"open({str(marker)!r}, 'w')" if name == "exec" else f"touch {marker}"
    artifact = tmp_path / f"artifact.{model_type}"
    artifact.write_bytes(calling(module, name, argument))

    report = run_child(artifact, model_type, tmp_path)

    assert report["ok"] is False
    assert f"imports {refused}" in report["error"]
    assert "refused before that code ran" in report["error"]
    assert not marker.exists()


def test_a_command_hidden_in_a_pytorch_module_is_refused(tmp_path):
    """PyTorchEstimator unpickles its module again with torch.load: that is guarded too."""
    import joblib
    import torch

    from serving.estimators import PyTorchEstimator
    from tests.support.hostile import RunsCommand

    marker = tmp_path / "marker"
    estimator = PyTorchEstimator(torch.nn.Linear(4, 3), classes=[0, 1, 2])
    estimator.module = RunsCommand(f"touch {marker}")  # torch.save pickles it on dump
    artifact = tmp_path / "torch.joblib"
    joblib.dump(estimator, artifact)

    report = run_child(artifact, "joblib", tmp_path)

    assert report["ok"] is False
    assert "imports posix.system" in report["error"]
    assert not marker.exists()
