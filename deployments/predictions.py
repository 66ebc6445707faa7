"""Forward a prediction request to a deployment's serving endpoint (the console's test form and
the API's predict route both use this)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from deployments import constants as st
from deployments.json_limits import load_json
from deployments.models import Deployment


@dataclass
class PredictionResult:
    status_code: int
    body: Any
    latency_ms: float

    def error_text(self) -> str:
        return error_text(self.body)


def error_text(body: Any) -> str:
    """Any error answer in the words a user reads: serving's `{"error": ...}`, the console's
    `{"detail": ...}`, or FastAPI's and REST framework's lists of problems."""
    if isinstance(body, dict):
        for key in ("error", "detail"):
            if key in body:
                return error_text(body[key])
        return "; ".join(f"{key}: {error_text(value)}" for key, value in body.items())
    if isinstance(body, list):
        return "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else error_text(item)
            for item in body
        )
    return str(body)


def forward_prediction(deployment: Deployment, payload: Any) -> PredictionResult:
    """POST `payload` to the deployment's /predict; errors come back as JSON with a `detail`."""
    if deployment.status not in st.SERVING or not deployment.endpoint:
        return PredictionResult(
            409, {"detail": f"{deployment.name} is {deployment.status}, not serving"}, 0.0
        )
    started = time.perf_counter()
    try:
        response = httpx.post(
            f"{deployment.endpoint}/predict",
            content=json.dumps(payload),
            headers={"content-type": "application/json"},
            timeout=settings.PREDICT_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        return PredictionResult(502, {"detail": f"the serving endpoint did not answer: {exc}"}, 0.0)
    latency = (time.perf_counter() - started) * 1000
    try:
        body = load_json(response.content)  # the serving process is model code: bound it
    except ValueError:
        body = {"detail": response.text[:500]}
    return PredictionResult(response.status_code, body, latency)
