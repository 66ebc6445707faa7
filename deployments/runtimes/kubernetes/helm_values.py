"""A deployment as values of `charts/model-serving`, for teams that keep each model's values in
git (GitOps): `helm template` of them renders the objects `manifests.build_objects` applies,
with the same names, image, serving config, replicas, resources, ports, network policy and
our `model-console/*` labels. Only the chart's own bookkeeping labels differ
(`app.kubernetes.io/managed-by: Helm`, `helm.sh/chart`, the chart's app version).

A pure function of the ServingSpec and the runtime's options, like the manifests.
"""

from __future__ import annotations

from typing import Any

import yaml

from deployments.runtimes.base import ServingSpec
from deployments.runtimes.kubernetes import manifests

# The maps of the chart's values.yaml that Helm merges into the values given (a key left out
# keeps its default); each key the export lacks is set to null, Helm's way to drop a default.
# test_helm_values checks these against charts/model-serving/values.yaml.
CHART_DEFAULT_MAPS: dict[str, Any] = {
    "config": {
        "modelType": None,
        "job": None,
        "model": {"method": None, "projectName": None, "bucketName": None, "blobDir": None},
        "inputSize": None,
        "name": None,
    },
    "resources": {
        "requests": {"cpu": None, "memory": None},
        "limits": {"cpu": None, "memory": None},
    },
}


def _drop_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`values` with null for each default key it lacks, so the chart's defaults stay out."""
    out = dict(values)
    for key, default in defaults.items():
        if key not in out:
            out[key] = None
        elif isinstance(default, dict) and isinstance(out[key], dict):
            out[key] = _drop_defaults(out[key], default)
    return out


def split_image(image: str) -> dict[str, str]:
    """`repo[:tag]` or `repo@digest` as the chart's image values."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return {"repository": repository, "tag": "", "digest": digest}
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag: the colon (if any) was a registry's port
        return {"repository": image, "tag": "latest", "digest": ""}
    return {"repository": name, "tag": tag, "digest": ""}


def helm_values(
    spec: ServingSpec,
    *,
    image: str,
    ingress_host: str | None = None,
    ingress_class: str | None = None,
    service_account: str | None = None,
    owner_label_value: str = "model-console",
    console_namespace: str | None = None,
    allow_from_namespaces: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The chart values for `spec`; the options are those `build_objects` takes."""
    labels = manifests.common_labels(spec, owner_label_value)
    ours = {key: value for key, value in labels.items() if key.startswith("model-console/")}
    values: dict[str, Any] = {
        # The console's names whatever the release is called.
        "fullnameOverride": spec.name,
        "replicaCount": spec.replicas,
        "image": {**split_image(image), "pullPolicy": "IfNotPresent"},
        "service": {
            "type": "ClusterIP",
            "port": manifests.SERVICE_PORT,
            "grpcPort": manifests.GRPC_PORT,
        },
        "config": yaml.safe_load(spec.config_yaml),
        "resources": manifests.container_resources(spec),
        "networkPolicy": {
            "consoleNamespace": console_namespace or "",
            "allowFromNamespaces": list(allow_from_namespaces),
        },
        "serviceAccount": {"create": False, "name": service_account or "", "annotations": {}},
        "labels": ours,
        "ingress": {"enabled": False},
    }
    for key, defaults in CHART_DEFAULT_MAPS.items():
        values[key] = _drop_defaults(values[key], defaults)
    if ingress_host:
        values["ingress"] = {
            "enabled": True,
            "className": ingress_class or "",
            "annotations": dict(manifests.INGRESS_ANNOTATIONS),
            "hosts": [
                {
                    "host": ingress_host,
                    "paths": [
                        {
                            "path": manifests.ingress_path(spec.name),
                            "pathType": "ImplementationSpecific",
                        }
                    ],
                }
            ],
            "tls": [],
        }
    return values


def helm_values_yaml(spec: ServingSpec, **options: Any) -> str:
    """The values as the YAML file a user commits, with a header saying what it is."""
    header = (
        f"# Values of charts/model-serving for the deployment {spec.name} "
        f"({spec.model_name} v{spec.version}), exported by the model console.\n"
        f"# helm template {spec.name} charts/model-serving -f {spec.name}-values.yaml "
        "--namespace NAMESPACE\n"
    )
    return header + yaml.safe_dump(
        helm_values(spec, **options), sort_keys=False, default_flow_style=False
    )
