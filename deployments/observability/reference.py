"""A version's reference rows for drift: an uploaded CSV kept in the artifact store."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from deployments.artifacts import get_store
from deployments.models import ModelVersion
from deployments.observability.drift import DriftUnavailable, read_csv


def parse_thresholds(raw: str | None) -> dict[str, float] | None:
    """`{"feature": psi, ...}` from a query parameter; ValueError saying what is wrong."""
    if raw is None or raw == "":
        return None
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise ValueError('thresholds must be a JSON object such as {"age": 0.25}') from None
    if not isinstance(data, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 10
        for v in data.values()
    ):
        raise ValueError("thresholds must map feature names to PSI values above 0, e.g. 0.25")
    return {str(k): float(v) for k, v in data.items()}


def store_reference(version: ModelVersion, data: Any, thresholds_raw: str | None) -> None:
    """Check a reference CSV, store it beside the artifact and record it on the version.
    ValueError (a message for the user) for a body that is not such a CSV."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError("send the reference rows as a CSV body with Content-Type: text/csv")
    thresholds = parse_thresholds(thresholds_raw)
    try:
        header, rows = read_csv(bytes(data))
    except DriftUnavailable as exc:
        raise ValueError(str(exc)) from None
    if not rows:
        raise ValueError("the reference file has a header but no rows")
    expected = version.n_features or version.input_size
    if expected and len(header) != expected:
        raise ValueError(
            f"the reference file has {len(header)} columns; the model takes {expected} features"
        )
    if thresholds:
        unknown = sorted(set(thresholds) - set(header))
        if unknown:
            raise ValueError(f"thresholds name columns the file lacks: {', '.join(unknown)}")
    name = f"{version.model.name}/{version.version}/reference-{int(time.time() * 1000)}.csv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.csv"
        path.write_bytes(bytes(data))
        uri = get_store().put(path, name)
    version.reference_uri = uri
    fields = ["reference_uri"]
    if thresholds is not None:
        version.drift_thresholds = thresholds
        fields.append("drift_thresholds")
    version.save(update_fields=fields)
