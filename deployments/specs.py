"""Turn a deployment record into the plain `ServingSpec` a runtime applies.

The serving config is built with serving's own schema, so the console and serving agree on one
format, and it pins the artifact's sha256 so serving refuses a blob changed after upload.
"""

from __future__ import annotations

from deployments import constants as st
from deployments.artifacts import get_store
from deployments.models import Deployment, ModelVersion
from deployments.runtimes.base import Autoscaling, Resources, ServingSpec, TrafficTarget
from serving.config import ModelSource, ServingConfig, dump_config


def serving_config(deployment: Deployment, version: ModelVersion | None = None) -> ServingConfig:
    """The serving config of `version` (default: the primary) under this deployment."""
    version = version or deployment.model_version
    model = version.model
    source = get_store().serving_source(version.uri)
    return ServingConfig(
        model_type=version.model_type,
        job=model.job,
        model=ModelSource(**source, sha256=version.sha256, trusted_types=version.trusted_types),
        input_size=model.input_size,
        name=model.name,
        version=str(version.version),
        # Clients address a deployment by its name; the model's name stays an alias.
        deployment_name=deployment.name,
    )


def serving_spec(deployment: Deployment) -> ServingSpec:
    version = deployment.model_version
    return ServingSpec(
        name=deployment.name,
        model_name=version.model.name,
        version=version.version,
        config_yaml=dump_config(serving_config(deployment)),
        replicas=deployment.replicas,
        port=deployment.port,
        traffic=traffic_targets(deployment),
        autoscaling=autoscaling(deployment),
        resources=Resources(
            cpu_request=deployment.cpu_request,
            memory_request=deployment.memory_request,
            cpu_limit=deployment.cpu_limit or None,
            memory_limit=deployment.memory_limit or None,
        ),
    )


def traffic_targets(deployment: Deployment) -> tuple[TrafficTarget, ...]:
    """The canary and the shadow, each with its own serving config."""
    targets = []
    if deployment.canary_version_id:
        canary = deployment.canary_version
        assert canary is not None
        targets.append(
            TrafficTarget(
                role=st.CANARY,
                version=canary.version,
                config_yaml=dump_config(serving_config(deployment, canary)),
                weight=deployment.canary_weight,
            )
        )
    if deployment.shadow_version_id:
        shadow = deployment.shadow_version
        assert shadow is not None
        targets.append(
            TrafficTarget(
                role=st.SHADOW,
                version=shadow.version,
                config_yaml=dump_config(serving_config(deployment, shadow)),
            )
        )
    return tuple(targets)


def autoscaling(deployment: Deployment) -> Autoscaling | None:
    scaling = deployment.autoscaling
    if not scaling:
        return None
    return Autoscaling(
        min_replicas=int(scaling["min"]),
        max_replicas=int(scaling["max"]),
        target_cpu=int(scaling.get("target_cpu", st.DEFAULT_TARGET_CPU)),
    )
