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


def test_list_rows_match_the_detail(console, iris_model):
    """The list API builds its rows without the serializer; they must say exactly the same."""
    console.shell(
        """
import json
from django.contrib.auth.models import User
from deployments.models import Deployment, ModelVersion
v1 = ModelVersion.objects.get(model__name="hard-iris", version=1)
v2 = ModelVersion.objects.get(model__name="hard-iris", version=2)
Deployment.objects.get_or_create(
    name="list-eq", defaults=dict(model_version=v2, previous_version=v1, status="stopped",
    status_reason="seeded for the list test", created_by=User.objects.get(username="admin"),
    cpu_limit="", replicas=3))
Deployment.objects.get_or_create(
    name="list-eq-2", defaults=dict(model_version=v1, status="stopped"))
print("RESULT=" + json.dumps(True))
"""
    )
    client = console.client("viewer")
    listed = client.get("/api/deployments/", params={"limit": 1000}).json()
    assert listed["count"] == len(listed["results"]) >= 2
    assert [d["name"] for d in listed["results"]] == sorted(d["name"] for d in listed["results"])
    rows = {d["name"]: d for d in listed["results"]}
    for name in ("list-eq", "list-eq-2"):
        assert rows[name] == client.get(f"/api/deployments/{name}/").json()
    assert rows["list-eq"]["previous_version"] == 1
    assert rows["list-eq"]["created_by"] == "admin"
    assert rows["list-eq-2"]["previous_version"] is None
    # Pages join up without gaps or repeats.
    names = []
    offset = 0
    while True:
        page = client.get("/api/deployments/", params={"limit": 1, "offset": offset}).json()
        if not page["results"]:
            break
        names += [d["name"] for d in page["results"]]
        offset += 1
    assert names == [d["name"] for d in listed["results"]]
