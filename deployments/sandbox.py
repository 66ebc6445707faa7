"""Validate an uploaded artifact without trusting it.

Unpickling runs code, so the artifact is loaded only in a separate process with a wall-clock
timeout and a memory limit, and it reports back plain JSON (never a pickle). The web and worker
processes never load an artifact themselves.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from deployments.models import CLASSIFICATION


class ArtifactRejected(Exception):
    """The artifact is not a usable model for this registered model; the message says why."""


@dataclass
class ArtifactReport:
    estimator_class: str
    n_features: int | None
    feature_names: list[str] | None
    classes: list[Any] | None
    library_versions: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def _limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def inspect_artifact(
    path: Path, *, model_type: str, input_size: int, trusted_types: list[str]
) -> dict[str, Any]:
    """Run the sandbox child on `path` and return its JSON report."""
    timeout = settings.VALIDATION_TIMEOUT_SECONDS
    memory = settings.VALIDATION_MEMORY_BYTES
    with tempfile.TemporaryDirectory(prefix="sandbox-") as workdir:
        output = Path(workdir) / "report.json"
        command = [
            sys.executable,
            "-m",
            "deployments.sandbox_child",
            str(path),
            "--model-type",
            model_type,
            "--input-size",
            str(input_size),
            "--output",
            str(output),
        ]
        for name in trusted_types:
            command += ["--trusted-type", name]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(settings.BASE_DIR),
            "HOME": workdir,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if name in os.environ:
                env[name] = os.environ[name]
        try:
            proc = subprocess.run(
                command,
                cwd=workdir,
                env=env,
                capture_output=True,
                timeout=timeout,
                preexec_fn=lambda: _limit_resources(memory, timeout),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ArtifactRejected(
                f"validation took longer than {timeout} s; the artifact was refused"
            ) from None
        if not output.exists():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            if proc.returncode < 0:
                why = f"was killed by signal {-proc.returncode} (memory or CPU limit)"
            else:
                why = f"exited with code {proc.returncode}"
            raise ArtifactRejected(f"loading the artifact {why} {tail[0]}".strip())
        return json.loads(output.read_text())


def validate_artifact(
    path: Path, *, model_type: str, job: str, input_size: int, trusted_types: list[str]
) -> ArtifactReport:
    """Check the artifact fits the registered model; raise ArtifactRejected with a clear reason."""
    info = inspect_artifact(
        path, model_type=model_type, input_size=input_size, trusted_types=trusted_types
    )
    if not info.get("ok"):
        raise ArtifactRejected(info.get("error") or "the artifact could not be loaded")
    cls = info["estimator_class"]
    if not info["has_predict"]:
        raise ArtifactRejected(f"{cls} is not an estimator: it has no predict method")
    if job == CLASSIFICATION and not info["has_predict_proba"]:
        raise ArtifactRejected(
            f"{cls} has no predict_proba, so it cannot serve a classification model "
            "(upload a classifier, or register the model with job 'regression')"
        )
    if job != CLASSIFICATION and info["has_predict_proba"]:
        raise ArtifactRejected(f"{cls} is a classifier, but this model's job is regression")
    n_features = info["n_features"]
    if n_features is not None and n_features != input_size:
        raise ArtifactRejected(
            f"{cls} takes {n_features} features, but this model's input_size is {input_size}"
        )
    if info["predict_error"]:
        raise ArtifactRejected(
            f"a trial prediction on {input_size} features failed: {info['predict_error']}"
        )
    warnings = []
    for lib, made in info["library_versions"].items():
        serving = info["serving_library_versions"].get(lib)
        if made and serving and made != serving:
            warnings.append(
                f"made with {lib} {made}, but serving runs {lib} {serving}: predictions may "
                "differ or loading may fail; re-save the model with the serving version"
            )
    return ArtifactReport(
        estimator_class=cls,
        n_features=n_features,
        feature_names=info["feature_names"],
        classes=info["classes"],
        library_versions=info["library_versions"],
        warnings=warnings,
    )
