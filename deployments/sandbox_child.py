"""The inside of the validation sandbox: load one artifact, report what it is as JSON.

Runs as `python -m deployments.sandbox_child` in a separate, limited process (see sandbox.py).
It must not import Django: the artifact may be hostile, and this process holds no secrets.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any


def _plain(values: Any) -> list[Any] | None:
    if values is None:
        return None
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in out]


def describe(path: Path, model_type: str, trusted_types: list[str], input_size: int) -> dict:
    import numpy as np
    import sklearn

    from serving.loading import load_artifact

    made_with: str | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator = load_artifact(path, model_type, trusted_types)
    for w in caught:
        original = getattr(w.message, "original_sklearn_version", None)
        if original:
            made_with = str(original)

    cls = type(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    info: dict[str, Any] = {
        "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
        "has_predict": callable(getattr(estimator, "predict", None)),
        "has_predict_proba": callable(getattr(estimator, "predict_proba", None)),
        "n_features": int(n_features) if n_features is not None else None,
        "feature_names": _plain(getattr(estimator, "feature_names_in_", None)),
        "classes": _plain(getattr(estimator, "classes_", None)),
        "library_versions": {"scikit-learn": made_with or sklearn.__version__},
        "serving_library_versions": {"scikit-learn": sklearn.__version__},
        "predict_error": None,
    }
    if "torch" in sys.modules:
        import torch

        made = getattr(estimator, "torch_version_", None)
        info["library_versions"]["torch"] = made or torch.__version__
        info["serving_library_versions"]["torch"] = torch.__version__
    if info["has_predict"]:
        try:
            estimator.predict(np.zeros((1, n_features or input_size)))
        except Exception as exc:  # any failure of a trial prediction is a finding, not a crash
            info["predict_error"] = f"{type(exc).__name__}: {exc}"
    return info


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--model-type", required=True)
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--trusted-type", action="append", default=[])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    try:
        report = {
            "ok": True,
            **describe(args.path, args.model_type, args.trusted_type, args.input_size),
        }
    except MemoryError:
        report = {"ok": False, "error": "loading the artifact ran out of memory"}
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        report = {"ok": False, "error": f"the artifact could not be loaded: {last}"}
    args.output.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
