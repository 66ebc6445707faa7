"""GET /api/deployments/NAME/helm-values/ and the page's button: the deployment as a values file
of charts/model-serving (tests/kubernetes/test_helm_values.py renders it with helm)."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client

from deployments import constants as st
from deployments.runtimes import kubernetes_options
from deployments.runtimes.kubernetes.helm_values import helm_values
from deployments.specs import serving_spec

pytestmark = pytest.mark.django_db


def test_export_downloads_the_values_of_the_record(make_deployment, settings) -> None:
    settings.SERVING_IMAGE = "registry.example.com/model-serving:2.0"
    deployment = make_deployment(st.RUNNING, replicas=4, cpu_request="300m")
    viewer = Client()
    viewer.force_login(User.objects.create_user("look", password="look-password-1"))
    answer = viewer.get("/api/deployments/iris-prod/helm-values/")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/yaml")
    assert answer["Content-Disposition"] == 'attachment; filename="iris-prod-values.yaml"'
    values = yaml.safe_load(answer.content)
    assert values == helm_values(serving_spec(deployment), **kubernetes_options())
    assert (values["fullnameOverride"], values["replicaCount"]) == ("iris-prod", 4)
    assert values["image"] == {
        "repository": "registry.example.com/model-serving",
        "tag": "2.0",
        "digest": "",
        "pullPolicy": "IfNotPresent",
    }
    assert values["resources"]["requests"]["cpu"] == "300m"
    assert viewer.get("/api/deployments/nope/helm-values/").status_code == 404
    page = viewer.get("/deployments/iris-prod/").content.decode()
    assert 'href="/api/deployments/iris-prod/helm-values/"' in page
