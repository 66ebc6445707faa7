"""Validate an uploaded artifact without trusting it.

Unpickling runs code, so the artifact is loaded only in a separate process (sandbox_child.py)
started inside bubblewrap (deployments/isolation.py): it sees the artifact read-only, its
own code and the Python environment, a private /tmp and a folder for its report; nothing of
the console's files, no network, an environment of a few plain variables, and its own PID
namespace, so nothing it starts outlives it. It limits its own address space (RLIMIT_AS) and
CPU time before reading the artifact and is killed at a wall-clock timeout. It reports back
plain JSON, never a pickle. The web and worker processes never load an artifact.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from deployments.constants import CLASSIFICATION
from deployments.isolation import (
    APP_DIR,
    IsolationUnavailable,
    base_env,
    isolated_command,
    isolation_required,
    python_paths,
)
from deployments.json_limits import load_json
from deployments.registry.errors import ArtifactRejected
from deployments.registry.refusals import load_refusal
from deployments.registry.sandbox_child import child_arguments
from deployments.scrub import scrub


@dataclass
class ArtifactReport:
    estimator_class: str
    # The number of features the artifact was checked with: the model's, or (for a model
    # registered without one) what the artifact or the sample's header says.
    input_size: int
    n_features: int | None
    feature_names: list[str] | None
    classes: list[Any] | None
    library_versions: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)
    untrusted_types: list[str] = field(default_factory=list)
    # Tabular models: the columns learned from the artifact and the sample, and the sample's
    # first rows typed by them (the probe rows and the example row).
    input_schema: list[dict[str, Any]] | None = None
    sample_rows: list[dict[str, Any]] = field(default_factory=list)


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB"


_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_CHILD = Path(__file__).with_name("sandbox_child.py")


def _child_env(workdir: str) -> dict[str, str]:
    """The environment of an unisolated child (MODEL_ISOLATION=off)."""
    return {
        **base_env(),
        **_THREADS,
        "PYTHONPATH": str(settings.BASE_DIR),
        "HOME": workdir,
        "TMPDIR": workdir,
    }


def _child_command(
    path: Path, workdir: str, arguments: list[str], sample: Path | None = None
) -> tuple[list[str], dict[str, str] | None]:
    """The child's command line (inside bwrap unless isolation is off) and its environment."""
    try:
        isolated = isolation_required("validating an artifact")
    except IsolationUnavailable as exc:
        raise ArtifactRejected(str(exc)) from None
    if not isolated:
        argv = [sys.executable, "-s", "-m", "deployments.registry.sandbox_child"]
        if sample is not None:
            arguments = [*arguments, "--sample", str(sample)]
        return [*argv, str(path), "--output", f"{workdir}/report.json", *arguments], (
            _child_env(workdir)
        )
    python, _ = python_paths()
    inside = f"/input/artifact{path.suffix}"
    read_only = [(sample, "/input/sample.csv")] if sample is not None else []
    if sample is not None:
        arguments = [*arguments, "--sample", "/input/sample.csv"]
    command = isolated_command(
        [python, "-s", f"{APP_DIR}/sandbox_child.py", inside, "--output", "/output/report.json"]
        + arguments,
        read_only=[
            *read_only,
            (path, inside),
            (_CHILD, f"{APP_DIR}/sandbox_child.py"),
            (Path(settings.BASE_DIR) / "serving", f"{APP_DIR}/serving"),
        ],
        writable=[(Path(workdir), "/output")],
        network=False,
        env={**base_env(), **_THREADS},
    )
    return command, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def inspect_artifact(
    path: Path,
    *,
    model_type: str,
    job: str,
    input_size: int | None,
    trusted_types: list[str],
    sample: Path | None = None,
) -> dict[str, Any]:
    """Run the sandbox child on `path` (and the sample CSV) and return its JSON report."""
    if settings.VALIDATION_RUNTIME == "kubernetes":  # a Job of its own, not the console's pod
        from deployments.runtimes.kubernetes.validation import inspect_in_job

        return inspect_in_job(
            path,
            model_type=model_type,
            job=job,
            input_size=input_size,
            trusted_types=trusted_types,
            sample=sample,
        )
    timeout = settings.VALIDATION_TIMEOUT_SECONDS
    memory = settings.VALIDATION_MEMORY_BYTES
    with tempfile.TemporaryDirectory(prefix="sandbox-") as workdir:
        output = Path(workdir) / "report.json"
        arguments = child_arguments(
            model_type=model_type,
            job=job,
            input_size=input_size,
            memory_bytes=memory,
            cpu_seconds=timeout,
            trusted_types=trusted_types,
        )
        command, env = _child_command(
            Path(path).resolve(),
            workdir,
            arguments,
            Path(sample).resolve() if sample is not None else None,
        )
        # A new session: on timeout the whole group goes (and with bwrap, its PID namespace
        # with everything the artifact started). stdout is discarded (an artifact may print
        # anything); stderr keeps a tail.
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ArtifactRejected(
                f"loading the artifact took longer than the validation timeout of {timeout} s "
                "(VALIDATION_TIMEOUT_SECONDS); it was stopped and the artifact refused"
            ) from None
        finally:
            _kill_group(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        try:
            return load_json(output.read_text())
        except (OSError, ValueError):
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            if proc.returncode in (-signal.SIGKILL, -signal.SIGXCPU, 128 + signal.SIGKILL):
                why = (
                    f"was stopped by a signal (the CPU limit of {timeout} s "
                    f"or the memory limit of {_mib(memory)})"
                )
            elif proc.returncode < 0:
                why = f"was killed by signal {-proc.returncode}"
            else:
                why = f"exited with code {proc.returncode} without a report"
            raise ArtifactRejected(f"loading the artifact {why} {scrub(tail[0])}".strip()) from None


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def validate_artifact(
    path: Path,
    *,
    model_type: str,
    job: str,
    input_size: int | None,
    trusted_types: list[str],
    sample: Path | None = None,
) -> ArtifactReport:
    """Check the artifact fits the registered model; raise ArtifactRejected with a clear reason.
    Without `input_size` the artifact (or the sample's header) must say how many features it
    takes."""
    info = inspect_artifact(
        path,
        model_type=model_type,
        job=job,
        input_size=input_size,
        trusted_types=trusted_types,
        sample=sample,
    )
    if not info.get("ok"):
        if info.get("untrusted_types"):
            raise ArtifactRejected(
                "the skops artifact contains types that are not trusted: "
                f"{', '.join(info['untrusted_types'])}. Loading them could run their code; an "
                "operator can trust them with the SKOPS_TRUSTED_TYPES setting, or an admin can "
                "approve them for this upload (approve_types)"
            )
        if info.get("memory"):
            raise ArtifactRejected(
                "loading the artifact needed more memory than the validation limit of "
                f"{_mib(settings.VALIDATION_MEMORY_BYTES)} (VALIDATION_MEMORY_BYTES); refused"
            )
        error = scrub(load_refusal(path, model_type, info.get("error") or ""))
        error = error or "the file could not be loaded as a model"
        if info.get("refused_global"):
            error += (
                ". An admin can approve it for this upload (approve_types) after reviewing "
                "what it does"
            )
        raise ArtifactRejected(error)
    cls = info["estimator_class"]
    n_features = info["n_features"]
    unservable = info["unservable"]
    if unservable:
        width = input_size or info.get("input_size")
        raise ArtifactRejected(_unservable_message(unservable, cls, n_features, width))
    # Serving takes a classifier for a regression job; the registry does not.
    if job != CLASSIFICATION and info["has_predict_proba"]:
        raise ArtifactRejected(f"{cls} is a classifier, but this model's job is regression")
    return ArtifactReport(
        estimator_class=cls,
        input_size=info["input_size"],
        n_features=n_features,
        feature_names=info["feature_names"],
        classes=info["classes"],
        library_versions=info["library_versions"],
        warnings=version_warnings(info["library_versions"], info["serving_library_versions"]),
        globals=info.get("globals", []),
        untrusted_types=info.get("untrusted_types", []),
        input_schema=info.get("input_schema"),
        sample_rows=info.get("sample_rows") or [],
    )


def _unservable_message(
    unservable: dict[str, str], cls: str, n_features: int | None, input_size: int | None
) -> str:
    """What serving's ServedModel refused, in the console's words."""
    reason = unservable.get("reason")
    short = cls.rsplit(".", 1)[-1]
    if reason == "width_unknown":
        return (
            f"The file's {short} does not say how many features it takes (neither "
            "n_features_in_ nor feature_names_in_ gives it), and this model was registered "
            "without a number of features. Upload a sample CSV with the version (field "
            "sample: a header naming the columns and a few real rows), or register the model "
            "with its number of features."
        )
    if reason == "no_predict":
        return f"{cls} is not an estimator: it has no predict method"
    if reason == "no_predict_proba":
        return (
            f"{cls} has no predict_proba and no classes_, so it is not a classifier and cannot "
            "serve a classification model (upload a classifier, or register the model with job "
            "'regression')"
        )
    if reason == "sample":
        return scrub(unservable.get("error", "the sample CSV does not fit the model"))
    if reason == "schema":
        return scrub(unservable.get("error", ""))
    if reason == "no_classes":
        return f"{cls} has no classes_, so it cannot serve a classification model"
    if reason == "n_features":
        return feature_count_refusal(cls, n_features, input_size)
    detail = scrub(unservable.get("error", "")).removeprefix("warm-up prediction failed: ")
    return (
        f"a trial prediction on {input_size} features failed: {detail}. If the model takes "
        "strings or cannot take a row of zeros, upload a sample CSV (field sample: a header "
        "naming the columns and a few real rows) with the version"
    )


def feature_count_refusal(cls: str, n_features: int | None, input_size: int | None) -> str:
    """An artifact of another width than the model's."""
    short = cls.rsplit(".", 1)[-1]
    return (
        f"The file's {short} takes {n_features} features, but this model is registered "
        f"with {input_size} features. Upload a model trained on {input_size} features, or "
        f"register a new model with {n_features}."
    )


def serving_library_versions(found: dict[str, str]) -> dict[str, str]:
    """What the serving image runs: SERVING_LIBRARY_VERSIONS when set, else this install's."""
    return {**found, **settings.SERVING_LIBRARY_VERSIONS}


def version_warnings(made_with: dict[str, str], found: dict[str, str]) -> list[str]:
    """A warning per library the artifact was made with in another version than serving's."""
    serving = serving_library_versions(found)
    warnings = []
    for lib, made in sorted(made_with.items()):
        runs = serving.get(lib)
        if made and runs and made != runs:
            warnings.append(
                f"made with {lib} {made}, but serving runs {lib} {runs}: loading may fail or "
                f"predictions may differ; re-save the model with {lib} {runs}"
            )
    return warnings
