"""How predictions look on a deployment's page: the feature inputs, the result table and the
snippets a user copies. Plain functions of records and answers; the views call them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest

from deployments.models import Deployment, DeploymentEvent, ModelVersion
from deployments.predictions import PredictionResult


def feature_names(deployment: Deployment) -> list[str]:
    version = deployment.model_version
    n = version.n_features or version.input_size
    names = version.feature_names or []
    if len(names) == n:
        return [str(x) for x in names]
    return [f"x{i}" for i in range(1, n + 1)]


def is_tabular(version: ModelVersion) -> bool:
    """Whether the version's test form is built from its schema: it has columns other than
    plain numbers (strings, categories, booleans, missing values) or a sample to prefill from.
    A model that only takes numbers keeps the form of one number per feature."""
    schema = version.input_schema or []
    plain = all(c.get("type") in ("number", "integer") and not c.get("nullable") for c in schema)
    return bool(schema) and (not plain or bool(version.sample_uri))


def example_rows(deployment: Deployment) -> list[Any]:
    """The example request's rows: the sample's first row for a tabular version, else zeros."""
    version = deployment.model_version
    if is_tabular(version):
        if version.example_rows:
            return version.example_rows[:1]
        from serving.config import Column
        from serving.tabular import Table

        return [Table([Column.model_validate(c) for c in version.input_schema]).example_row()]
    return [[0.0] * len(feature_names(deployment))]


def snippets(request: HttpRequest, deployment: Deployment, rows: list[Any]) -> dict:
    body = json.dumps({"instances": rows})
    endpoint = deployment.endpoint or "http://ENDPOINT"
    # The API's route, spelled out: its URL names are shared with the UI's.
    api = request.build_absolute_uri(f"/api/deployments/{deployment.name}/predict/")
    curl = (
        f"curl -sS -X POST {endpoint}/predict \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )
    python = (
        "import json\n"
        "import urllib.request\n\n"
        "request = urllib.request.Request(\n"
        f'    "{endpoint}/predict",\n'
        f"    data=json.dumps({body}).encode(),\n"
        '    headers={"Content-Type": "application/json"},\n'
        ")\n"
        "with urllib.request.urlopen(request, timeout=30) as response:\n"
        "    print(json.load(response))"
    )
    return {"curl": curl, "python": python, "api": api}


def result_rows(result: PredictionResult, classes: list | None) -> list[dict[str, Any]]:
    """Table rows: per row the predicted label and each class's probability, best marked."""
    predictions = result.body.get("predictions", []) if isinstance(result.body, dict) else []
    rows = []
    for i, prediction in enumerate(predictions, start=1):
        if classes and isinstance(prediction, list):
            best = max(range(len(prediction)), key=prediction.__getitem__)
            rows.append(
                {
                    "number": i,
                    "label": classes[best],
                    "cells": [
                        {
                            "value": p,
                            "best": j == best,
                            "label": classes[j],
                            "percent": _percent(p),
                        }
                        for j, p in enumerate(prediction)
                    ],
                }
            )
        elif classes:  # a classifier without probabilities: its label only
            rows.append({"number": i, "label": prediction})
        else:
            rows.append({"number": i, "value": prediction})
    return rows


# The timeline ------------------------------------------------------------------------------

# Actions a person takes (through the UI or the API); what the worker and the runtime report
# afterwards belongs to the last of them.
HUMAN_VIA = ("ui", "api")


def group_events(events: list[DeploymentEvent]) -> list[dict[str, Any]]:
    """Events (newest first) as one group per action, newest first, each with its steps in the
    order they happened: "deploy" by deployer, then deploying, then running."""
    groups: list[dict[str, Any]] = []
    for event in reversed(events):
        if not groups or event.via in HUMAN_VIA:
            groups.append({"head": event, "steps": []})
        groups[-1]["steps"].append(event)
    for group in groups:
        group["last"] = group["steps"][-1]
    return list(reversed(groups))


def prediction_row(record: dict[str, Any]) -> dict[str, Any]:
    """A prediction-log record as the table shows it: a UTC time, inputs and outputs as
    compact JSON."""
    ts = record.get("ts")
    when = (
        datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(ts, (int, float))
        else ""
    )
    return {
        "time": when,
        "request_id": str(record.get("request_id") or ""),
        "version": record.get("version") or "",
        "latency_ms": record.get("latency_ms"),
        "inputs": json.dumps(record.get("inputs"), separators=(",", ":")),
        "outputs": json.dumps(record.get("outputs"), separators=(",", ":")),
    }


def _percent(p: Any) -> float:
    """A probability as the width of its bar (0-100), whatever the model answered."""
    try:
        return round(min(max(float(p), 0.0), 1.0) * 100, 1)
    except (TypeError, ValueError):
        return 0.0
