"""Turn a deployment record into the plain `ServingSpec` a runtime applies.

The serving config is built with serving's own schema, so the console and serving agree on one
format, and it pins the artifact's sha256 so serving refuses a blob changed after upload.
"""

from __future__ import annotations

from django.conf import settings

from deployments import constants as st
from deployments.artifacts import get_store
from deployments.models import Deployment, ModelVersion
from deployments.runtimes.base import Autoscaling, Resources, ServingSpec, TrafficTarget
from serving.config import (
    MAX_SAMPLE_ROWS,
    Column,
    ModelSource,
    PredictionLogConfig,
    ServingConfig,
    dump_config,
)


def prediction_log_sink(deployment: Deployment) -> str:
    """Where the deployment's serving processes write their prediction log ("" for nowhere):
    a folder of its own under PREDICTION_LOG_SINK, else under var/ on the local runtime."""
    if settings.PREDICTION_LOG_SINK:
        return f"{settings.PREDICTION_LOG_SINK}/{deployment.name}"
    if settings.DEPLOY_RUNTIME == "local":
        return f"file://{settings.PREDICTION_LOG_DIR / deployment.name}"
    return ""


def log_sample(deployment: Deployment) -> float:
    """The share of its predictions the deployment logs: its own, else the console's default."""
    if deployment.log_sample is None:
        return settings.PREDICTION_LOG_SAMPLE
    return deployment.log_sample


def prediction_log_config(deployment: Deployment) -> PredictionLogConfig | None:
    sample = log_sample(deployment)
    sink = prediction_log_sink(deployment)
    if not sink or sample <= 0:
        return None
    project = settings.GCS_PROJECT if sink.startswith("gs://") else None
    return PredictionLogConfig(sample=sample, sink=sink, project_name=project or None)


def serving_config(deployment: Deployment, version: ModelVersion | None = None) -> ServingConfig:
    """The serving config of `version` (default: the primary) under this deployment."""
    version = version or deployment.model_version
    model = version.model
    source = get_store().serving_source(version.uri)
    return ServingConfig(
        model_type=version.model_type,
        job=model.job,
        model=ModelSource(**source, sha256=version.sha256, trusted_types=version.trusted_types),
        input_size=version.input_size,
        name=model.name,
        version=str(version.version),
        # Clients address a deployment by its name; the model's name stays an alias.
        deployment_name=deployment.name,
        logging=prediction_log_config(deployment),
        # Tabular models: the columns serving parses requests by, and rows to warm up on.
        input_schema=[Column.model_validate(c) for c in version.input_schema]
        if version.input_schema
        else None,
        sample_rows=(version.example_rows or [])[:MAX_SAMPLE_ROWS] or None,
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
