"""The serving spec a runtime applies, built from records (deployments/specs.py): its config
is serving's own format and pins the artifact."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml
from django.conf import settings

from deployments import constants as st
from deployments.models import Deployment, ModelVersion
from deployments.runtimes.base import Resources
from deployments.specs import serving_spec
from serving.config import parse_config

pytestmark = pytest.mark.django_db


def test_the_spec_carries_the_record(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(
        st.RUNNING, replicas=3, cpu_request="250m", memory_request="512Mi", cpu_limit="2"
    )
    spec = serving_spec(deployment)
    assert (spec.name, spec.model_name, spec.version, spec.replicas) == ("iris-prod", "iris", 1, 3)
    assert spec.resources == Resources(
        cpu_request="250m", memory_request="512Mi", cpu_limit="2", memory_limit="1Gi"
    )


def test_empty_limits_become_no_limit(make_deployment: Callable[..., Deployment]) -> None:
    spec = serving_spec(make_deployment(cpu_limit="", memory_limit=""))
    assert (spec.resources.cpu_limit, spec.resources.memory_limit) == (None, None)


def test_the_config_is_one_serving_reads_and_pins_the_artifact(
    make_version: Callable[..., ModelVersion], make_deployment: Callable[..., Deployment]
) -> None:
    version = make_version("diabetes", version=4, job=st.REGRESSION, input_size=10)
    spec = serving_spec(make_deployment(version=version, name="diabetes"))
    cfg = parse_config(yaml.safe_load(spec.config_yaml))
    assert (cfg.model_type, cfg.job, cfg.input_size) == ("joblib", st.REGRESSION, 10)
    assert (cfg.name, cfg.version) == ("diabetes", "4")
    assert cfg.model.method == "LOCAL"
    store = settings.ARTIFACT_STORE.removeprefix("file://")
    assert cfg.model.path == f"{store}/diabetes/4/model.joblib"
    assert cfg.model.sha256 == version.sha256 and len(version.sha256) == 64
    assert cfg.model.trusted_types == ["sklearn.linear_model.LogisticRegression"]
    # camelCase keys, as serving's YAML format has them.
    assert {"modelType", "inputSize"} <= set(yaml.safe_load(spec.config_yaml))


def test_the_checksum_follows_the_config_not_the_replicas(
    make_version: Callable[..., ModelVersion], make_deployment: Callable[..., Deployment]
) -> None:
    deployment = make_deployment()
    before = serving_spec(deployment)
    Deployment.objects.filter(pk=deployment.pk).update(replicas=5)
    deployment.refresh_from_db()
    scaled = serving_spec(deployment)
    assert scaled.config_checksum == before.config_checksum
    deployment.model_version = make_version(version=2)
    changed = serving_spec(deployment)
    assert changed.config_checksum != before.config_checksum
    assert parse_config(yaml.safe_load(changed.config_yaml)).version == "2"


def test_a_new_log_sample_is_a_new_config(make_deployment: Callable[..., Deployment]) -> None:
    """The supervisor (or Deployment) rolls on a config change: a log_sample change is one."""
    deployment = make_deployment()
    before = serving_spec(deployment)
    assert parse_config(yaml.safe_load(before.config_yaml)).logging.sample == (
        settings.PREDICTION_LOG_SAMPLE
    )
    deployment.log_sample = 0.1
    after = serving_spec(deployment)
    assert parse_config(yaml.safe_load(after.config_yaml)).logging.sample == 0.1
    assert after.config_checksum != before.config_checksum
