"""Rolling updates that drop no request: the settings on the console's objects and the chart's.

Without controllers there is no rollout to watch here; what can be checked is that every piece
the kubelet and the Deployment controller need is there and consistent: a new pod takes traffic
only once ready, an old one keeps serving while endpoints forget it, then drains in flight
requests within a grace period long enough for both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deployments.runtimes.base import ServingSpec
from deployments.runtimes.kubernetes import manifests
from tests.kubernetes.test_charts import helm, template  # noqa: F401  (helm is a fixture)

Validate = Callable[[dict], None]
CONFIG = "modelType: joblib\njob: regression\nmodel:\n  method: LOCAL\n  path: /m.joblib\n"


def console_deployment() -> dict:
    spec = ServingSpec("iris-prod", "iris", 3, CONFIG, replicas=2)
    objects = manifests.build_objects(spec, namespace="models", image="img:1")
    return next(obj for obj in objects if obj["kind"] == "Deployment")


@pytest.fixture(params=["console", "chart"])
def deployment(request: pytest.FixtureRequest, validate_k8s: Validate) -> dict:
    if request.param == "console":
        obj = console_deployment()
    else:
        helm_bin = request.getfixturevalue("helm")
        objects = template(helm_bin, "model-serving", "--set", "replicaCount=2")
        obj = next(o for o in objects if o["kind"] == "Deployment")
    validate_k8s(obj)
    return obj


def _container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_a_rollout_adds_a_pod_before_it_removes_one(deployment: dict) -> None:
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    probe = _container(deployment)["readinessProbe"]
    assert probe["httpGet"] == {"path": "/v2/health/ready", "port": "http"}


def test_a_stopping_pod_drains_before_and_after_sigterm(deployment: dict) -> None:
    container = _container(deployment)
    pod = deployment["spec"]["template"]["spec"]
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert drain >= 3  # endpoint removal reaches kube-proxy and ingresses within seconds
    args = container["args"]
    graceful = float(args[args.index("--graceful-timeout") + 1])
    # The kubelet kills at the end of the grace period, which counts the preStop hook too.
    assert pod["terminationGracePeriodSeconds"] > drain + graceful
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_serving_accepts_the_graceful_timeout_it_is_given() -> None:
    from serving.__main__ import parse_args

    args = _container(console_deployment())["args"]
    parsed = parse_args(args)
    assert parsed.graceful_timeout == manifests.GRACEFUL_SECONDS
    assert parsed.port == manifests.CONTAINER_PORT
