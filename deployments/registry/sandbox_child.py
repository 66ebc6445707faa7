"""The inside of the validation sandbox: load one artifact as serving would, report it as JSON.

Runs in a separate process (see sandbox.py), normally inside bubblewrap where this file and
serving/ are all it sees of the project. It imports nothing of `deployments` nor Django: the
artifact may be hostile. It limits its own memory and CPU time, then loads the artifact with
serving's loader (pickle and joblib through serving's allowlist, skops with the trusted types
the console passed) and builds serving's `ServedModel` from the same config serving would get,
warm-up prediction included: whatever passes here is what serving accepts.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

OUT_OF_MEMORY = {"ok": False, "error": "loading the artifact ran out of memory", "memory": True}


class UntrustedTypes(Exception):
    def __init__(self, types: list[str]) -> None:
        super().__init__(", ".join(types))
        self.types = types


def _names_width(estimator: object) -> int | None:
    """The width an estimator's `feature_names_` gives (CatBoost's, which also knows the
    width once unpickled, where its n_features_in_ is 0), or None."""
    try:
        names = getattr(estimator, "feature_names_", None)
    except Exception:  # a property of the model's own code may raise anything
        return None
    if isinstance(names, list | tuple) and names and all(isinstance(n, str) for n in names):
        return len(names)
    return None


def _plain(values: Any) -> list[Any] | None:
    if values is None:
        return None
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in out]


def describe(
    path: Path,
    model_type: str,
    trusted_types: list[str],
    input_size: int | None,
    job: str,
    sample: Path | None = None,
) -> dict:
    """What the artifact is and whether serving takes it. Without `input_size` (a model
    registered without one) the width is what the artifact knows (n_features_in_, else its
    feature_names_in_, or CatBoost's feature_names_), else the sample's header; the report says
    which it used."""
    import sklearn

    from serving.allowlist import Screen
    from serving.config import ModelSource, ServingConfig
    from serving.loading import load_artifact
    from serving.model import ModelError, ServedModel
    from serving.schema import SampleError, learn_schema, read_sample

    made_with: str | None = None
    info: dict[str, Any] = {"globals": [], "untrusted_types": []}
    screen = Screen(trusted_types)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if model_type == "skops":
            import skops.io as sio

            untrusted = sorted(sio.get_untrusted_types(file=path))
            info["untrusted_types"] = untrusted
            refused = [t for t in untrusted if t not in trusted_types]
            if refused:
                raise UntrustedTypes(refused)
        try:
            estimator = load_artifact(path, model_type, trusted_types, screen=screen, mmap=True)
        finally:
            if model_type != "skops":
                info["globals"] = sorted(screen.seen)
                info["untrusted_types"] = sorted(screen.used_approvals)
    for w in caught:
        original = getattr(w.message, "original_sklearn_version", None)
        if original:
            made_with = str(original)

    cls = type(estimator)
    n_features = getattr(estimator, "n_features_in_", None) or _names_width(estimator)
    info.update(
        {
            "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
            "has_predict_proba": callable(getattr(estimator, "predict_proba", None)),
            # 0 is unknown, not a width: CatBoost reports it once unpickled (its
            # feature_names_ still gives it).
            "n_features": int(n_features) if n_features else None,
            "feature_names": _plain(getattr(estimator, "feature_names_in_", None)),
            "classes": _plain(getattr(estimator, "classes_", None)),
            "library_versions": {"scikit-learn": made_with or sklearn.__version__},
            "serving_library_versions": {"scikit-learn": sklearn.__version__},
            "unservable": None,
        }
    )
    _boosting_versions(estimator, info)
    if "torch" in sys.modules:
        import torch

        # A torch version is known only if the estimator recorded it (torch_version_); a
        # saved module does not say which torch made it. Unknown is null, never a guess.
        made = getattr(estimator, "torch_version_", None)
        info["library_versions"]["torch"] = str(made) if made else None
        info["serving_library_versions"]["torch"] = torch.__version__
    header = cells = None
    info["input_schema"] = None
    info["sample_rows"] = []
    try:
        if sample is not None:
            header, cells = read_sample(sample.read_text(encoding="utf-8-sig"))
        schema, rows = learn_schema(estimator, header, cells)
    except (SampleError, UnicodeDecodeError) as exc:
        info["unservable"] = {"reason": "sample", "error": str(exc)}
        return info
    width = input_size or info["n_features"] or (len(schema) if schema is not None else None)
    info["input_size"] = width
    if width is None:
        info["unservable"] = {"reason": "width_unknown"}
        return info
    if schema is not None and len(schema) == width:
        info["input_schema"] = [column.model_dump() for column in schema]
        info["sample_rows"] = rows
    cfg = ServingConfig(
        model_type=model_type,
        job=job,
        model=ModelSource(method="LOCAL", path=str(path), trusted_types=trusted_types),
        input_size=width,
        input_schema=schema if info["input_schema"] is not None else None,
        sample_rows=info["sample_rows"] or None,
    )
    try:
        ServedModel(cfg, estimator).warm_up()
    except ModelError as exc:
        info["unservable"] = {"reason": exc.reason, "error": str(exc)}
    return info


# Boosting libraries with the scikit-learn API: their versions are checked at registration as
# scikit-learn's are. A model records which version saved it only where the library says so.
BOOSTING_LIBRARIES = ("xgboost", "lightgbm", "catboost")


def _boosting_versions(estimator: Any, info: dict[str, Any]) -> None:
    for library in BOOSTING_LIBRARIES:
        module = sys.modules.get(library)
        if module is None:
            continue
        info["library_versions"][library] = _made_with(estimator, library)
        info["serving_library_versions"][library] = str(module.__version__)


def _made_with(estimator: Any, library: str) -> str | None:
    """The version that saved the model, where the model records it (XGBoost's config)."""
    if library != "xgboost":
        return None
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    try:
        config = json.loads(final.get_booster().save_config())
        return ".".join(str(part) for part in config["version"])
    except Exception:  # not an XGBoost model, or one that does not say
        return None


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    """Limit this process before it reads a byte of the artifact (the parent cannot do it
    safely: preexec_fn is unsafe in a threaded web server)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_arguments(
    *,
    model_type: str,
    job: str,
    input_size: int | None,
    memory_bytes: int,
    cpu_seconds: int,
    trusted_types: list[str],
    sample: str | None = None,
) -> list[str]:
    """The options `main` parses, for the callers that start this child (locally, in a Job)."""
    arguments = ["--model-type", model_type, "--job", job]
    if input_size is not None:
        arguments += ["--input-size", str(input_size)]
    arguments += ["--memory-bytes", str(memory_bytes), "--cpu-seconds", str(cpu_seconds)]
    for name in trusted_types:
        arguments += ["--trusted-type", name]
    if sample is not None:
        arguments += ["--sample", sample]
    return arguments


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--model-type", required=True)
    parser.add_argument("--job", default="classification")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--trusted-type", action="append", default=[])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--sample", type=Path, default=None)
    args = parser.parse_args()
    # Import the heavy libraries before the memory limit: their address-space reservations
    # (BLAS buffers, thread stacks) are not the artifact's doing.
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import sklearn  # noqa: F401

    from serving.loading import ArtifactError, GlobalRefused

    _limit(args.memory_bytes, args.cpu_seconds)
    try:
        report = {
            "ok": True,
            **describe(
                args.path,
                args.model_type,
                args.trusted_type,
                args.input_size,
                args.job,
                args.sample,
            ),
        }
    except GlobalRefused as exc:
        report = {
            "ok": False,
            "refused_global": exc.name,
            "error": f"the artifact imports {exc.name} while loading, which is not on the "
            "list of classes and functions a model may load (it could run code); it was "
            "refused before that code ran",
        }
    except UntrustedTypes as exc:
        report = {"ok": False, "untrusted_types": exc.types, "error": ""}
    except MemoryError:
        report = OUT_OF_MEMORY
    except ArtifactError as exc:
        if isinstance(exc.__context__, MemoryError):
            report = OUT_OF_MEMORY
        else:
            report = {"ok": False, "error": f"the artifact could not be loaded: {_cause(exc)}"}
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        report = {"ok": False, "error": f"the artifact could not be loaded: {last}"}
    args.output.write_text(json.dumps(report))
    return 0


def _cause(exc: Exception) -> str:
    """The loader's message without the artifact's path (a temporary file of no interest)."""
    text = str(exc)
    marker = ": "
    if text.startswith("cannot load ") and marker in text:
        return text.split(marker, 1)[1]
    return text


if __name__ == "__main__":
    sys.exit(main())
