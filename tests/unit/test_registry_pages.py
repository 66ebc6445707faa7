"""The model page's registry tools through Django's test client: set an alias, edit notes and
tags, compare two versions; and what the version pickers read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments.models import ModelAlias, ModelVersion, RegistryEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create(username="admin", is_superuser=True))
    return client


def test_the_model_page_sets_an_alias_and_shows_it(
    admin_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    make_version(version=1)
    make_version(version=2)
    response = admin_client.post("/models/iris/aliases/", {"name": "champion", "version": "1"})
    assert response.status_code == 302
    assert ModelAlias.objects.get(name="champion").version.version == 1
    page = admin_client.get("/models/iris/").content.decode()
    assert 'data-alias="champion"' in page
    assert "champion -&gt; v1" in page  # the registry history
    bad = admin_client.post("/models/iris/aliases/", {"name": "Champion", "version": "9"})
    assert bad.status_code == 400
    text = bad.content.decode()
    assert "&quot;Champion&quot; cannot be used." in text
    assert "iris has no version 9. Use a version number (1, 2); aliases: champion." in text


def test_the_model_page_saves_notes_and_tags(
    admin_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    make_version()
    response = admin_client.post(
        "/models/iris/versions/1/describe/", {"notes": "first try", "tags": "baseline, q3"}
    )
    assert response.status_code == 302
    version = ModelVersion.objects.get(version=1)
    assert (version.notes, version.tags) == ("first try", ["baseline", "q3"])
    assert RegistryEvent.objects.get().action == "describe"
    bad = admin_client.post("/models/iris/versions/1/describe/", {"tags": "Q 3"})
    assert bad.status_code == 400
    assert "&quot;Q 3&quot; cannot be used." in bad.content.decode()


def test_the_compare_page_highlights_what_differs(
    admin_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    ModelVersion.objects.filter(pk=v1.pk).update(metrics={"auc": 0.91})
    ModelVersion.objects.filter(pk=v2.pk).update(metrics={"auc": 0.93})
    page = admin_client.get("/models/iris/compare/?a=1&b=2").content.decode()
    assert '<tr class="differs" data-key="metric:auc">' in page
    assert '<tr class="same" data-key="sha256">' in page
    missing = admin_client.get("/models/iris/compare/?a=1&b=gold")
    assert missing.status_code == 400
    assert "iris has no version or alias &quot;gold&quot;" in missing.content.decode()


def test_the_pickers_show_aliases_tags_and_dates(
    admin_client: Client, make_version: Callable[..., ModelVersion]
) -> None:
    v1 = make_version(version=1)
    admin_client.post("/models/iris/aliases/", {"name": "staging", "version": "1"})
    page = admin_client.get("/deploy/").content.decode()
    assert f"iris v1 [staging] uploaded {v1.created_at:%Y-%m-%d %H:%M}" in page
