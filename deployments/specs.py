"""Turn a deployment record into the plain `ServingSpec` a runtime applies.

The serving config is built with serving's own schema, so the console and serving agree on one
format, and it pins the artifact's sha256 so serving refuses a blob changed after upload.
"""

from __future__ import annotations

from deployments.artifacts import get_store
from deployments.models import Deployment
from deployments.runtimes.base import Resources, ServingSpec
from serving.config import MAX_SAMPLE_ROWS, Column, ModelSource, ServingConfig, dump_config


def serving_config(deployment: Deployment) -> ServingConfig:
    version = deployment.model_version
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
        resources=Resources(
            cpu_request=deployment.cpu_request,
            memory_request=deployment.memory_request,
            cpu_limit=deployment.cpu_limit or None,
            memory_limit=deployment.memory_limit or None,
        ),
    )
