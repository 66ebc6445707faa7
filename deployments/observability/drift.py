"""Drift: a version's reference rows against the inputs its deployment logged in a window.

Per feature, the population stability index (PSI) over quantile bins of the reference for
numbers and over category frequencies otherwise, and a p-value: two-sample Kolmogorov-Smirnov
for numbers, chi-squared on the counts for categories (scipy). A feature is flagged when its
PSI reaches its threshold (DRIFT_PSI_THRESHOLD unless the version sets one for it): with
thousands of rows a p-value is tiny for the smallest harmless shift, so it is reported, not
used as the flag.
"""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import numpy as np
from django.utils import timezone

from deployments import constants as st
from deployments.artifacts import get_store
from deployments.models import Deployment, DriftReport, ModelVersion

# Proportions are floored at this, so that an empty bin does not make the index infinite.
_EPSILON = 1e-4


class DriftUnavailable(Exception):
    """No drift can be computed (no reference, too few logged rows); the message says why."""


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected / max(expected.sum(), 1), _EPSILON)
    a = np.maximum(actual / max(actual.sum(), 1), _EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(reference: np.ndarray, current: np.ndarray, bins: int = st.DRIFT_BINS) -> tuple:
    """(PSI over the reference's quantile bins, KS p-value)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    size = len(edges) + 1
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=size)
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=size)
    from scipy import stats  # here, not at the top: 2 s of import for every console process

    p_value = float(stats.ks_2samp(reference, current).pvalue)
    return _psi(expected.astype(float), actual.astype(float)), p_value


def categorical_drift(reference: list[str], current: list[str]) -> tuple:
    """(PSI over category frequencies, chi-squared p-value of the 2 x categories counts)."""
    categories = sorted(set(reference) | set(current))
    index = {c: i for i, c in enumerate(categories)}
    expected = np.zeros(len(categories))
    actual = np.zeros(len(categories))
    for value in reference:
        expected[index[value]] += 1
    for value in current:
        actual[index[value]] += 1
    if len(categories) < 2:
        return 0.0, 1.0
    table = np.vstack([expected, actual])
    table = table[:, table.sum(axis=0) > 0]
    from scipy import stats

    p_value = float(stats.chi2_contingency(table)[1])
    return _psi(expected, actual), p_value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _missing(value: Any) -> bool:
    return value is None or value == ""


def compare(
    columns: list[str],
    reference: list[list[Any]],
    logged: list[Any],
    thresholds: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Per feature {"name", "psi", "p_value", "drifted", "kind"} of `logged` rows (lists by
    position, or dicts by column name) against `reference` rows (lists, CSV order)."""
    thresholds = thresholds or {}
    out = []
    for i, name in enumerate(columns):
        ref = [row[i] for row in reference if i < len(row) and not _missing(row[i])]
        cur = []
        for row in logged:
            value = row.get(name) if isinstance(row, dict) else (row[i] if i < len(row) else None)
            if not _missing(value):
                cur.append(value)
        if not ref or not cur:
            continue
        ref_numbers = [_number(v) for v in ref]
        if all(v is not None for v in ref_numbers):
            cur_numbers = np.array([n for n in (_number(v) for v in cur) if n is not None])
            if cur_numbers.size == 0:
                continue
            psi, p_value = numeric_drift(np.array(ref_numbers, dtype=float), cur_numbers)
            kind = "number"
        else:
            psi, p_value = categorical_drift([str(v) for v in ref], [str(v) for v in cur])
            kind = "category"
        threshold = float(thresholds.get(name, st.DRIFT_PSI_THRESHOLD))
        out.append(
            {
                "name": name,
                "kind": kind,
                "psi": round(psi, 4),
                "p_value": p_value,
                "threshold": threshold,
                "drifted": psi >= threshold,
            }
        )
    return out


def read_csv(data: bytes, max_rows: int = st.DRIFT_MAX_ROWS) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file; DriftUnavailable naming the problem if it is not one."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DriftUnavailable("the reference file is not UTF-8 text (save it as CSV)") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise DriftUnavailable("the reference file is empty: it needs a header row") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise DriftUnavailable("the reference file's first row must name the columns")
    rows = []
    try:
        for row in reader:
            if row:
                rows.append(row)
            if len(rows) >= max_rows:
                break
    except csv.Error as exc:
        raise DriftUnavailable(f"the reference file is not valid CSV: {exc}") from None
    return header, rows


def reference_rows(version: ModelVersion) -> tuple[list[str], list[list[str]]]:
    """The version's reference rows: its uploaded reference CSV, else its sample CSV (when
    the registry recorded one), read from the artifact store."""
    uri = version.reference_uri or version.sample_uri
    if not uri:
        raise DriftUnavailable(
            f"version {version.version} of {version.model.name} has no reference rows: upload "
            "a reference CSV (PUT .../versions/N/reference/), or a sample with the version"
        )
    return read_csv(get_store().read(uri))


def deployment_drift(deployment: Deployment, window: int, now: float | None = None) -> dict:
    """Compute, store and return the drift of the deployment's logged inputs over `window`
    seconds: {"features": [...], "rows": N}."""
    from deployments.observability import prediction_log

    now = now or time.time()
    version = deployment.model_version
    columns, reference = reference_rows(version)
    logged = prediction_log.inputs_since(deployment, now - window, st.DRIFT_MAX_ROWS)
    if len(logged) < st.DRIFT_MIN_ROWS:
        raise DriftUnavailable(
            f"only {len(logged)} rows were logged in this window; drift needs at least "
            f"{st.DRIFT_MIN_ROWS}"
        )
    features = compare(columns, reference, logged, version.drift_thresholds or {})
    window_name = next((k for k, v in st.WINDOWS.items() if v == window), f"{window}s")
    DriftReport.objects.update_or_create(
        deployment=deployment,
        defaults={
            "computed_at": timezone.now(),
            "window": window_name,
            "rows": len(logged),
            "features": features,
            "drifted": [f["name"] for f in features if f["drifted"]],
        },
    )
    return {"features": features, "rows": len(logged)}
