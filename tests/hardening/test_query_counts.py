"""No N+1 queries: the dashboard, its live fragment, the deployments list API and a
deployment's page make the same number of database queries for 5 deployments as for 60.

The pages are rendered by the console's own code (Django's test client inside `manage.py
shell`, on the live console's database) so every query can be counted.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import json
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from deployments.models import Deployment, DeploymentEvent, ModelVersion

version = ModelVersion.objects.get(model__name="hard-iris", version=1)
client = Client()
client.force_login(User.objects.get(username="admin"))
pages = {
    "dashboard": reverse("dashboard"),
    "dashboard fragment": reverse("dashboard-fragment"),
    "deployments API": "/api/deployments/?limit=100",
    "events API": "/api/deployments/qc-0/events/",
    "deployment page": reverse("deployment-detail", kwargs={"name": "qc-0"}),
}
counts = {}
for n in (5, 60):
    have = Deployment.objects.filter(name__startswith="qc-").count()
    created = Deployment.objects.bulk_create(
        Deployment(name=f"qc-{i}", model_version=version, status="stopped",
                   previous_version=version, created_by=User.objects.get(username="admin"))
        for i in range(have, n)
    )
    DeploymentEvent.objects.bulk_create(
        DeploymentEvent(deployment=d, action="create", status="stopped", message="seeded",
                        actor_name="admin", via="api", source_ip="127.0.0.1")
        for d in created for _ in range(5)
    )
    for label, url in pages.items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, (url, response.status_code)
        counts.setdefault(label, {})[n] = len(queries)
Deployment.objects.filter(name__startswith="qc-").delete()
print("RESULT=" + json.dumps(counts))
"""

# Generous ceilings (session, user, permissions, count, page); what matters is the equality.
CEILING = 12


def test_pages_make_a_constant_number_of_queries(console, iris_model):
    counts = console.shell(SCRIPT)
    print("queries per page by number of deployments:", counts)
    for page, by_size in counts.items():
        assert by_size["5"] == by_size["60"], (page, by_size)
        assert by_size["60"] <= CEILING, (page, by_size)
