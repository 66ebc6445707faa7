"""The Helm charts: lint, render, validate, and agree with the console's own manifests.

helm comes from tools/get-helm.sh (.tools/helm). Outside CI a missing helm skips these tests
with the command to run; with CI=true the script is run and the tests must pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from deployments.runtimes.base import Resources, ServingSpec
from deployments.runtimes.kubernetes import KubernetesRuntime, load_client, manifests
from serving.config import ServingConfig, dump_config, parse_config

if TYPE_CHECKING:
    from tests.kubernetes.conftest import Cluster

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
Validate = Callable[[dict], None]

# (chart, values files) combinations that must lint and render to valid objects.
RENDERINGS = [
    ("model-serving", []),
    ("model-serving", ["ci/ingress-values.yaml"]),
    ("console", ["ci/secrets-values.yaml"]),
    ("console", ["ci/existing-secret-values.yaml"]),
]
RENDER_IDS = ["serving-defaults", "serving-ingress", "console-secrets", "console-existing"]


def _find_helm() -> str | None:
    for candidate in (os.environ.get("HELM"), str(REPO / ".tools" / "helm"), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def helm() -> str:
    found = _find_helm()
    if found is None and os.environ.get("CI") == "true":
        subprocess.run(["bash", str(REPO / "tools" / "get-helm.sh")], check=True, timeout=300)
        found = _find_helm()
        assert found, "tools/get-helm.sh ran but .tools/helm is not there"
    if found is None:
        pytest.skip("helm is not installed: run tools/get-helm.sh (installs .tools/helm)")
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/helm-cache",
            "HELM_CONFIG_HOME": "/tmp/helm-config",
            "HELM_DATA_HOME": "/tmp/helm-data",
        },
    )


def template(
    helm: str, chart: str, *args: str, release: str = "release", namespace: str = "models"
) -> list[dict[str, Any]]:
    result = run_helm(
        helm, "template", release, str(CHARTS / chart), "--namespace", namespace, *args
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def values_args(files: list[str], chart: str) -> list[str]:
    return [arg for f in files for arg in ("-f", str(CHARTS / chart / f))]


@pytest.mark.parametrize(("chart", "files"), RENDERINGS, ids=RENDER_IDS)
def test_helm_lint_passes(helm: str, chart: str, files: list[str]) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHARTS / chart), *values_args(files, chart))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("chart", "files"), RENDERINGS, ids=RENDER_IDS)
def test_rendered_objects_are_valid_kubernetes(
    helm: str, chart: str, files: list[str], validate_k8s: Validate
) -> None:
    objects = template(helm, chart, *values_args(files, chart))
    assert objects
    for obj in objects:
        validate_k8s(obj)


def test_console_chart_renders_web_worker_beat_and_its_access(helm: str) -> None:
    objects = template(
        helm,
        "console",
        *values_args(["ci/secrets-values.yaml"], "console"),
        release="mc",
        namespace="console",
    )
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {"mc-console-web", "mc-console-worker", "mc-console-beat"}
    pods = {name: d["spec"]["template"]["spec"] for name, d in deployments.items()}
    # Only the worker talks to the Kubernetes API.
    assert pods["mc-console-worker"]["automountServiceAccountToken"] is True
    # web starts validation Jobs, with an account of its own (bound to the validation Role).
    assert pods["mc-console-web"]["automountServiceAccountToken"] is True
    assert pods["mc-console-web"]["serviceAccountName"] == "mc-console-web"
    assert pods["mc-console-worker"]["serviceAccountName"] == "mc-console"
    assert pods["mc-console-beat"]["automountServiceAccountToken"] is False
    assert deployments["mc-console-beat"]["spec"]["replicas"] == 1
    env = {e["name"]: e for e in pods["mc-console-worker"]["containers"][0]["env"]}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY"):
        assert env[f"{name}_FILE"] == {
            "name": f"{name}_FILE",
            "value": f"/etc/console/secrets/{name}",
        }
    config = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "mc-console")
    assert config["data"]["DEPLOY_RUNTIME"] == "kubernetes"
    assert config["data"]["K8S_NAMESPACE"] == "models"
    assert config["data"]["K8S_INGRESS_HOST"] == "models.example.com"
    assert config["data"]["K8S_SERVICE_ACCOUNT"] == "mc-console-serving"
    roles = {r["metadata"]["name"]: r for r in by_kind["Role"]}
    assert set(roles) == {"mc-console-runtime", "mc-console-validation"}
    assert {r["metadata"]["namespace"] for r in roles.values()} == {"models"}
    bindings = {b["roleRef"]["name"]: b["subjects"] for b in by_kind["RoleBinding"]}
    assert bindings == {
        "mc-console-runtime": [
            {"kind": "ServiceAccount", "name": "mc-console", "namespace": "console"}
        ],
        "mc-console-validation": [
            {"kind": "ServiceAccount", "name": "mc-console-web", "namespace": "console"}
        ],
    }
    assert config["data"]["VALIDATION_RUNTIME"] == "kubernetes"
    assert by_kind["Ingress"][0]["spec"]["rules"][0]["host"] == "console.example.com"
    job = by_kind["Job"][0]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "sh",
        "-c",
        "python manage.py migrate --noinput && python manage.py ensure_admin",
    ]
    # The root filesystem is read-only; the console's scratch folders are volumes.
    mounts = pods["mc-console-web"]["containers"][0]["volumeMounts"]
    assert {m["mountPath"] for m in mounts} >= {"/tmp", "/app/var/uploads", "/app/var/cache"}


def test_console_chart_needs_its_secrets(helm: str) -> None:
    result = run_helm(helm, "template", "mc", str(CHARTS / "console"))
    assert result.returncode != 0
    assert "secrets.databaseUrl (or secrets.existingSecret) is required" in result.stderr


def test_serving_values_schema_refuses_a_bad_config(helm: str) -> None:
    result = run_helm(
        helm,
        "template",
        "x",
        str(CHARTS / "model-serving"),
        "--set",
        "config.modelType=zip",
        "--set",
        "config.model.method=LOCAL",
    )
    assert result.returncode != 0
    assert "config.modelType" in result.stderr
    assert "path is required" in result.stderr


def _keys(schema: dict, defs: dict) -> dict[str, Any]:
    """Property names of a JSON schema, nested objects as sub-dicts ($ref resolved)."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    for option in schema.get("anyOf", []):  # Optional[Model] in pydantic's schema
        if "$ref" in option or "properties" in option:
            return _keys(option, defs)
    return {name: _keys(sub, defs) for name, sub in schema.get("properties", {}).items()}


def test_serving_values_schema_knows_every_serving_config_key() -> None:
    """serving refuses unknown keys and so does the chart's schema: they must list the same."""
    serving = ServingConfig.model_json_schema(by_alias=True)
    chart = json.loads((CHARTS / "model-serving" / "values.schema.json").read_text())
    assert _keys(chart["properties"]["config"], {}) == _keys(serving, serving.get("$defs", {}))


def _rbac_verb(method: str, has_name: bool) -> str:
    if method == "GET":
        return "get" if has_name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]


def test_console_role_allows_exactly_what_the_runtime_does(helm: str, cluster: Cluster) -> None:
    """Drive every runtime operation against the emulator; the Role must match the requests."""
    runtime = KubernetesRuntime(
        cluster.namespace,
        "img:1",
        ingress_host="models.example.com",
        api_client=load_client(str(cluster.kubeconfig)),
    )
    spec = ServingSpec("iris", "iris", 1, "modelType: joblib\n", replicas=1)
    runtime.apply(spec)
    cluster.add(
        "v1/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "iris-1", "labels": manifests.selector_labels("iris")},
            "status": {
                "containerStatuses": [
                    {"name": "serving", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]
            },
        },
    )
    runtime.observe(spec)
    runtime.apply(ServingSpec("iris", "iris", 2, "modelType: skops\n", replicas=2))  # an update
    runtime.list_deployed()
    runtime.remove("iris")

    used: set[tuple[str, str, str]] = set()
    for request in cluster.requests():
        assert request.resource is not None
        resource = request.resource.plural or ""
        if request.subresource:
            resource += f"/{request.subresource}"
        used.add(
            (
                request.resource.group or "",
                resource,
                _rbac_verb(request.method.value, request.name is not None),
            )
        )

    objects = template(helm, "console", *values_args(["ci/secrets-values.yaml"], "console"))
    role = next(
        obj
        for obj in objects
        if obj["kind"] == "Role" and obj["metadata"]["name"].endswith("-runtime")
    )
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert used == allowed


# -- the chart and the console produce the same objects ---------------------------------------

HELM_ONLY_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}


def _without_helm_labels(obj: Any) -> Any:
    """Drop the labels that say who manages an object (Helm or the console) at any depth."""
    if isinstance(obj, dict):
        return {
            key: (
                _without_helm_labels(value)
                if key != "labels"
                else {k: v for k, v in value.items() if k not in HELM_ONLY_LABELS}
            )
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [_without_helm_labels(item) for item in obj]
    return obj


def chart_values(
    spec: ServingSpec, *, image: str, host: str, ingress_class: str, service_account: str
) -> dict:
    """The model-serving values that describe the same deployment as `spec`."""
    repository, tag = image.rsplit(":", 1)
    labels = manifests.common_labels(spec)
    res = spec.resources
    return {
        "replicaCount": spec.replicas,
        "image": {"repository": repository, "tag": tag},
        "config": yaml.safe_load(spec.config_yaml),
        "resources": {
            "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
            "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
        },
        "serviceAccount": {"create": False, "name": service_account},
        "networkPolicy": {"consoleNamespace": "console", "allowFromNamespaces": ["ingress-nginx"]},
        "labels": {key: value for key, value in labels.items() if key not in HELM_ONLY_LABELS},
        "ingress": {
            "enabled": True,
            "className": ingress_class,
            "annotations": manifests.INGRESS_ANNOTATIONS,
            "hosts": [
                {
                    "host": host,
                    "paths": [
                        {
                            "path": manifests.ingress_path(spec.name),
                            "pathType": "ImplementationSpecific",
                        }
                    ],
                }
            ],
        },
    }


def test_chart_and_console_produce_the_same_objects(helm: str, tmp_path: Path) -> None:
    config = parse_config(
        {
            "modelType": "joblib",
            "job": "classification",
            "inputSize": 4,
            "name": "iris",
            "model": {
                "method": "GCS",
                "projectName": "acme",
                "bucketName": "models",
                "blobDir": "models/iris/3/model.joblib",
                "sha256": "ab" * 32,
            },
        }
    )
    spec = ServingSpec(
        "iris-prod",
        "iris",
        3,
        dump_config(config),
        replicas=2,
        resources=Resources(
            cpu_request="250m", memory_request="512Mi", cpu_limit="2", memory_limit="2Gi"
        ),
    )
    image, host = "registry.example.com/model-serving:1.4", "models.example.com"
    console = {
        obj["kind"]: obj
        for obj in manifests.build_objects(
            spec,
            namespace="models",
            image=image,
            ingress_host=host,
            ingress_class="nginx",
            service_account="model-reader",
            console_namespace="console",
            allow_from_namespaces=["ingress-nginx"],
        )
    }
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            chart_values(
                spec, image=image, host=host, ingress_class="nginx", service_account="model-reader"
            )
        )
    )
    chart = {
        obj["kind"]: obj
        for obj in template(
            helm, "model-serving", "-f", str(values), release="iris-prod", namespace="models"
        )
    }

    kinds = {"ConfigMap", "Deployment", "Service", "Ingress", "NetworkPolicy"}
    assert set(chart) == set(console) == kinds
    for kind in console:
        assert chart[kind]["metadata"]["name"] == console[kind]["metadata"]["name"]
        assert chart[kind]["metadata"]["namespace"] == "models"
        chart_meta = _without_helm_labels(chart[kind]["metadata"])
        console_meta = _without_helm_labels(console[kind]["metadata"])
        assert chart_meta["labels"] == console_meta["labels"]

    # The same serving config, and in both the checksum is that of the mounted file.
    chart_text = chart["ConfigMap"]["data"]["config.yaml"]
    console_text = console["ConfigMap"]["data"]["config.yaml"]
    assert yaml.safe_load(chart_text) == yaml.safe_load(console_text)
    assert parse_config(yaml.safe_load(chart_text)) == config
    for objects, text in ((chart, chart_text), (console, console_text)):
        annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"checksum/config": hashlib.sha256(text.encode()).hexdigest()}

    def deployment_spec(objects: dict) -> dict:
        spec = _without_helm_labels(objects["Deployment"]["spec"])
        del spec["template"]["metadata"]["annotations"]
        return spec

    assert deployment_spec(chart) == deployment_spec(console)
    assert chart["Service"]["spec"] == console["Service"]["spec"]
    assert chart["NetworkPolicy"]["spec"] == console["NetworkPolicy"]["spec"]
    assert chart["Ingress"]["spec"] == console["Ingress"]["spec"]
    assert (
        chart["Ingress"]["metadata"]["annotations"] == console["Ingress"]["metadata"]["annotations"]
    )


def test_console_values_keep_secrets_out_of_the_plain_config(helm: str) -> None:
    result = run_helm(
        helm,
        "template",
        "mc",
        str(CHARTS / "console"),
        "-f",
        str(CHARTS / "console" / "ci" / "secrets-values.yaml"),
        "--set",
        "config.SECRET_KEY=leaked",
    )
    assert result.returncode != 0
    assert "config.SECRET_KEY" in result.stderr
