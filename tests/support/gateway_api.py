"""Validation of Gateway API objects (HTTPRoute) against the Gateway API's own schemas.

kubernetes-validate knows only Kubernetes' built-in kinds, so an HTTPRoute is checked twice:

- always, by the validators of the npm package @kubernetes-models/gateway-api (generated from
  the Gateway API's Go types, the source its CRDs are generated from), which
  tools/get-gateway-api-schema.sh installs into .tools/gateway-api; node runs them;
- when GATEWAY_API_CRD names a CRD file (config/crd/standard/
  gateway.networking.k8s.io_httproutes.yaml of a Gateway API release), also with jsonschema
  against that CRD's openAPIV3Schema of the object's version.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / ".tools" / "gateway-api" / "node_modules" / "@kubernetes-models" / "gateway-api"
VALIDATOR = "IoK8sSigsGatewayApiApisV1HTTPRoute.js"
_RUN = """
import { validate } from %s;
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const obj = JSON.parse(input);
  console.log(JSON.stringify(validate(obj) ? [] : validate.errors));
});
"""


def _node_errors(obj: dict) -> list[dict]:
    validator = SCHEMAS / "_schemas" / VALIDATOR
    if not validator.exists() and os.environ.get("CI") == "true":
        script = ROOT / "tools" / "get-gateway-api-schema.sh"
        subprocess.run(["bash", str(script)], check=True, timeout=300)
    if not validator.exists():
        raise AssertionError(
            f"the Gateway API schemas are not installed ({validator} is missing): run "
            "bash tools/get-gateway-api-schema.sh (make test does)"
        )
    result = subprocess.run(
        ["node", "--input-type=module", "-e", _RUN % json.dumps(validator.as_uri())],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the Gateway API validator did not run: {result.stderr[-500:]}")
    return json.loads(result.stdout)


@functools.lru_cache(maxsize=4)
def _crd_schema(path: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(Path(path).read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return _json_schema(served["schema"]["openAPIV3Schema"])
    raise AssertionError(f"{path} has no version {version}")


def _json_schema(node: Any) -> Any:
    """OpenAPI v3 (structural schema) to JSON schema: `nullable`, int-or-string, and the
    x-kubernetes-* extensions (CEL rules are not checked)."""
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
    errors = _node_errors(obj)
    if errors:
        first = errors[0]
        raise AssertionError(
            f"{name} is invalid for the Gateway API at {first.get('instancePath') or '/'}: "
            f"{first.get('keyword')} {json.dumps(first.get('params'))}"
        )
    crd = os.environ.get("GATEWAY_API_CRD")
    if crd:
        import jsonschema

        version = obj["apiVersion"].split("/", 1)[1]
        try:
            jsonschema.validate(obj, _crd_schema(crd, version))
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"{name} is invalid for {crd} at {path}: {exc.message}") from None
