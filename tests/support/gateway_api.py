"""Validation of Gateway API objects (HTTPRoute) against the Gateway API's own CRD.

kubernetes-validate knows only Kubernetes' built-in kinds, so an HTTPRoute is checked with
jsonschema against the openAPIV3Schema of the HTTPRoute CRD of the release the runtime targets,
vendored beside this file (gateway-api-v1.6.1/, with its licence). The CRD's CEL rules need an API
server and are not checked. GATEWAY_API_CRD names another CRD file to check against instead.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

RELEASE = Path(__file__).resolve().parent / "gateway-api-v1.6.1"
VENDORED_CRD = RELEASE / "gateway.networking.k8s.io_httproutes.yaml"


@functools.lru_cache(maxsize=4)
def _crd_schema(path: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(Path(path).read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return _json_schema(served["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{path} has no version {version}")


def _json_schema(node: Any) -> Any:
    """OpenAPI v3 (structural schema) to JSON schema: `nullable`, int-or-string, and the
    x-kubernetes-* extensions dropped (CEL rules are not checked)."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"]
    return out


def validate_gateway_object(obj: dict) -> None:
    """AssertionError naming the object and the first problem, if it does not validate."""
    name = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
    crd = os.environ.get("GATEWAY_API_CRD") or str(VENDORED_CRD)
    version = obj["apiVersion"].split("/", 1)[1]
    try:
        jsonschema.validate(obj, _crd_schema(crd, version))
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{name} is invalid for {crd} at {path}: {exc.message}") from None
