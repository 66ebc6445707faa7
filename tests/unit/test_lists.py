"""The dashboard's and the models list's search, filters, sort and paging (deployments/filters.py,
web/lists.py) and the API list that shares them: what each parameter keeps, what is hidden by
default (archived), that the live refresh asks for the visible page only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments import constants as st
from deployments.filters import DeploymentFilter, ModelFilter
from deployments.models import Deployment, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_version: Callable[..., ModelVersion]) -> list[Deployment]:
    iris = make_version("iris")
    wine = make_version("wine", job=st.REGRESSION)
    rows = [
        Deployment(name=f"iris-{i:03d}", model_version=iris, status=st.RUNNING) for i in range(60)
    ]
    rows += [Deployment(name=f"wine-{i}", model_version=wine, status=st.STOPPED) for i in range(5)]
    rows.append(
        Deployment(
            name="old-iris", model_version=iris, status=st.STOPPED, archived_at=timezone.now()
        )
    )
    return Deployment.objects.bulk_create(rows)


def names(data: dict) -> list[str]:
    return list(
        DeploymentFilter(data, queryset=Deployment.objects.all()).qs.values_list("name", flat=True)
    )


def test_filters_search_status_model_job_and_hide_archived(fleet) -> None:
    assert len(names({})) == 65  # the archived one is hidden
    assert names({"name": "WINE-"}) == [f"wine-{i}" for i in range(5)]  # case-insensitive
    assert names({"status": "stopped"}) == [f"wine-{i}" for i in range(5)]
    assert len(names({"model": "iris"})) == 60
    assert names({"job": st.REGRESSION}) == [f"wine-{i}" for i in range(5)]
    assert names({"archived": "only"}) == ["old-iris"]
    assert len(names({"archived": "include"})) == 66
    assert names({"name": "iris", "archived": "include", "status": "stopped"}) == ["old-iris"]


def test_sorts_are_total_and_default_to_the_name(fleet) -> None:
    assert names({})[:2] == ["iris-000", "iris-001"]
    assert names({"sort": "-name"})[0] == "wine-4"
    Deployment.objects.filter(name="iris-042").update(updated_at=timezone.now())
    assert names({"sort": "-updated"})[0] == "iris-042"
    by_status = names({"sort": "status"})
    assert by_status[0] == "iris-000" and by_status[-1] == "wine-4"  # running < stopped


def test_a_bad_filter_value_is_named_not_raised(fleet) -> None:
    filterset = DeploymentFilter(
        {"status": "sleeping", "sort": "size"}, queryset=Deployment.objects.all()
    )
    assert set(filterset.errors) == {"status", "sort"}
    assert "sleeping is not one of the available choices" in filterset.errors["status"][0]


def test_model_filter_hides_archived_and_searches(make_version) -> None:
    make_version("iris")
    make_version("iris-big")
    RegisteredModel.objects.create(
        name="old", job=st.CLASSIFICATION, input_size=2, archived_at=timezone.now()
    )
    got = ModelFilter({"name": "iris"}, queryset=RegisteredModel.objects.all()).qs
    assert [m.name for m in got] == ["iris", "iris-big"]
    assert [
        m.name for m in ModelFilter({"archived": "only"}, queryset=RegisteredModel.objects.all()).qs
    ] == ["old"]


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="admin-password-1"))
    return client


def test_dashboard_pages_and_the_refresh_asks_for_the_same_page(fleet, admin_client) -> None:
    page = admin_client.get("/", {"model": "iris", "page": "2"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "51–60 of 60" in html
    assert 'data-deployment="iris-050"' in html and 'data-deployment="iris-049"' not in html
    # The live refresh polls the visible page with the same filters, and renders only it.
    assert 'hx-get="/fragments/deployments/?model=iris&amp;page=2"' in html
    fragment = admin_client.get("/fragments/deployments/", {"model": "iris", "page": "2"})
    assert fragment.content.decode().count("<tr data-deployment=") == 10
    first = admin_client.get("/fragments/deployments/").content.decode()
    assert first.count("<tr data-deployment=") == st.PAGE_SIZE
    assert 'id="page-next"' in first


def test_dashboard_says_no_match_and_offers_to_clear(fleet, admin_client) -> None:
    html = admin_client.get("/", {"name": "nothing-like-this"}).content.decode()
    assert "No deployment matches" in html and 'id="clear-filters"' in html


def test_api_list_filters_and_keeps_its_shape(fleet, admin_client) -> None:
    body = admin_client.get("/api/deployments/", {"status": "stopped", "limit": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5 and [d["name"] for d in body["results"]] == ["wine-0", "wine-1"]
    archived = admin_client.get("/api/deployments/", {"archived": "only"}).json()["results"]
    assert [d["name"] for d in archived] == ["old-iris"] and archived[0]["archived_at"]
    refused = admin_client.get("/api/deployments/", {"status": "sleeping"})
    assert refused.status_code == 400 and "status" in refused.json()
    # An archived deployment is still found by its name.
    assert admin_client.get("/api/deployments/old-iris/").status_code == 200
    models = admin_client.get("/api/models/", {"job": st.REGRESSION}).json()["results"]
    assert [m["name"] for m in models] == ["wine"]


def test_the_models_page_filter_and_register_forms_have_distinct_ids(make_version) -> None:
    make_version("iris")
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="boss-password-1"))
    html = client.get("/models/").content.decode()
    assert html.count('id="id_name"') == 1 and html.count('id="filter-name"') == 1
    assert 'for="filter-name"' in html
