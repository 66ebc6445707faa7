"""The GitOps export (deployments/runtimes/kubernetes/helm_values.py): `helm template` of a
deployment's exported values renders the objects the kubernetes runtime applies (manifests.py):
the same kinds and names, image, serving config, replicas, resources, ports, probes, network
policy and our labels. Only the chart's own bookkeeping labels may differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.runtimes.base import Resources, ServingSpec
from deployments.runtimes.kubernetes import manifests
from deployments.runtimes.kubernetes.helm_values import (
    CHART_DEFAULT_MAPS,
    helm_values_yaml,
    split_image,
)
from tests.kubernetes.test_charts import helm, template  # noqa: F401  (the helm fixture)

# Labels the chart sets for its own bookkeeping, which the console spells differently.
CHART_ONLY = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

SPEC = ServingSpec(
    name="iris-prod",
    model_name="Iris Model",
    version=3,
    config_yaml=yaml.safe_dump(
        {
            "modelType": "joblib",
            "job": "classification",
            "model": {
                "method": "GCS",
                "projectName": "p",
                "bucketName": "b",
                "blobDir": "iris/3/model.joblib",
                "sha256": "a" * 64,
            },
            "inputSize": 4,
            "name": "iris-prod",
        }
    ),
    replicas=3,
    port=None,
    resources=Resources(
        cpu_request="250m", memory_request="512Mi", cpu_limit="2", memory_limit=None
    ),
)
LOCAL_SPEC = ServingSpec(
    name="local-one",
    model_name="iris",
    version=1,
    config_yaml=yaml.safe_dump(
        {
            "modelType": "skops",
            "job": "regression",
            "model": {"method": "LOCAL", "path": "/var/models/iris/1/model.skops"},
            "inputSize": 2,
        }
    ),
    replicas=0,
    port=None,
    resources=Resources(cpu_request="1", memory_request="1Gi", cpu_limit=None, memory_limit=None),
)
OPTIONS: list[dict[str, Any]] = [
    {"image": "registry.example.com:5000/model-serving:1.4.2"},
    {
        "image": "model-serving@sha256:" + "b" * 64,
        "ingress_host": "models.example.com",
        "ingress_class": "nginx",
        "service_account": "serving",
        "console_namespace": "console",
        "allow_from_namespaces": ["ingress-nginx", "monitoring"],
    },
]


def _normalized(obj: dict) -> dict:
    """An object as both sides can agree on: without the chart's bookkeeping labels, the
    config file compared as data (YAML spelling may differ), comments gone."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    for holder in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
        for key in CHART_ONLY:
            holder.get("labels", {}).pop(key, None)
    if obj["kind"] == "ConfigMap":
        obj["data"] = {k: yaml.safe_load(v) for k, v in obj["data"].items()}
    if obj["kind"] == "Deployment":
        # The checksum is of each side's own spelling of the same config.
        obj["spec"]["template"]["metadata"]["annotations"].pop(manifests.CHECKSUM_ANNOTATION)
    return obj


@pytest.mark.parametrize(
    ("spec", "options"),
    [(SPEC, OPTIONS[0]), (SPEC, OPTIONS[1]), (LOCAL_SPEC, OPTIONS[0])],
    ids=["plain", "ingress-and-policy", "fewer-keys-than-the-defaults"],
)
def test_helm_template_of_the_export_gives_the_runtimes_objects(
    helm: str,  # noqa: F811
    tmp_path: Path,
    spec: ServingSpec,
    options: dict[str, Any],
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(helm_values_yaml(spec, **options))
    rendered = template(helm, "model-serving", "-f", str(values), release="any-release")
    applied = manifests.build_objects(spec, namespace="models", **options)

    def by_kind(objects: list[dict]) -> dict[tuple[str, str], dict]:
        return {(o["kind"], o["metadata"]["name"]): _normalized(o) for o in objects}

    ours, chart = by_kind(applied), by_kind(rendered)
    assert sorted(chart) == sorted(ours)
    for key in ours:
        assert chart[key] == ours[key], key
    deployment = chart[("Deployment", spec.name)]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == spec.replicas
    assert container["image"] == options["image"]
    assert container["resources"] == manifests.container_resources(spec)
    config = chart[("ConfigMap", f"{spec.name}-config")]["data"]["config.yaml"]
    assert config == yaml.safe_load(spec.config_yaml)


def _shape(tree: dict) -> dict:
    return {k: _shape(v) if isinstance(v, dict) else None for k, v in tree.items()}


def test_the_export_knows_every_default_map_of_the_chart() -> None:
    """Helm merges the chart's default maps into the export: each key must be known to be
    dropped when a deployment lacks it."""
    defaults = yaml.safe_load((manifests_chart() / "values.yaml").read_text())
    for key, shape in CHART_DEFAULT_MAPS.items():
        assert _shape(defaults[key]) == shape, key


def manifests_chart() -> Path:
    return Path(__file__).resolve().parents[2] / "charts" / "model-serving"


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("model-serving", ("model-serving", "latest", "")),
        ("model-serving:1", ("model-serving", "1", "")),
        ("host:5000/a/model-serving", ("host:5000/a/model-serving", "latest", "")),
        ("host:5000/a/m:2", ("host:5000/a/m", "2", "")),
        ("m@sha256:abc", ("m", "", "sha256:abc")),
    ],
)
def test_images_split_into_the_charts_fields(image: str, parts: tuple[str, str, str]) -> None:
    got = split_image(image)
    assert (got["repository"], got["tag"], got["digest"]) == parts
