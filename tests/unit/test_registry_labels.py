"""The registry's notes, tags, metrics and aliases (deployments/registry/), through the plain
functions and through the API in this process: what is accepted, what is audited, and the words
a user reads when input is wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from deployments import constants as st
from deployments.models import Deployment, ModelAlias, ModelVersion, RegistryEvent
from deployments.registry.aliases import (
    VersionNotFound,
    find_version,
    remove_alias,
    set_alias,
)
from deployments.registry.compare import comparison
from deployments.registry.metadata import (
    MetadataError,
    describe_version,
    parse_metrics,
    parse_tags,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db: None) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create(username="admin", is_superuser=True))
    return client


# Metrics and tags ------------------------------------------------------------------------------


def test_metrics_take_a_flat_object_of_numbers_and_texts() -> None:
    assert parse_metrics('{"auc": 0.93, "rows": 1000, "dataset": "q3"}') == {
        "auc": 0.93,
        "rows": 1000,
        "dataset": "q3",
    }
    assert parse_metrics("") == {}
    assert parse_metrics(None) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "{auc: 1}",
            'Metrics must be a JSON object such as {"auc": 0.93, "dataset": "2026-q3"}; '
            "this is not valid JSON.",
        ),
        ("[0.93]", 'Metrics must be a JSON object such as {"auc": 0.93, "dataset": "2026-q3"}.'),
        (
            {"auc": {"train": 0.9}},
            'Metric "auc" must be a number or a short text, not an object; metrics are one '
            'flat object such as {"auc": 0.93, "dataset": "2026-q3"}.',
        ),
        (
            {"ok": True},
            'Metric "ok" must be a number or a short text, not true/false; metrics are one '
            'flat object such as {"auc": 0.93, "dataset": "2026-q3"}.',
        ),
        ({"note": "x" * 201}, 'Metric "note" is longer than 200 characters.'),
        ({f"m{i}": i for i in range(51)}, "Give at most 50 metrics (got 51)."),
        ('{"auc": NaN}', 'Metric "auc" must be a finite number.'),
    ],
)
def test_metrics_refusals_say_what_to_send(value: object, message: str) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_metrics(value)
    assert (caught.value.field, str(caught.value)) == ("metrics", message)


def test_tags_are_labels_sorted_without_duplicates() -> None:
    assert parse_tags("baseline, q3\nbaseline") == ["baseline", "q3"]
    assert parse_tags(["q3"]) == ["q3"]
    with pytest.raises(MetadataError) as caught:
        parse_tags("Best Model")
    assert str(caught.value) == (
        '"Best Model" cannot be used. Use up to 32 lowercase letters, digits and dashes, '
        'starting with a letter, e.g. "champion" or "staging". For example "best-model".'
    )


# Aliases ---------------------------------------------------------------------------------------


def test_an_alias_is_set_moved_and_removed_with_an_audit_event_each(
    make_version: Callable[..., ModelVersion],
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    model = v1.model
    set_alias(model, "champion", v1)
    set_alias(model, "champion", v1)  # already there: no event
    set_alias(model, "champion", v2)
    assert find_version(model, "champion") == v2
    assert ModelAlias.objects.filter(model=model).count() == 1
    assert remove_alias(model, "champion") is True
    assert remove_alias(model, "champion") is False
    assert [(e.action, e.message) for e in RegistryEvent.objects.order_by("id")] == [
        ("alias-set", "champion -> v1"),
        ("alias-move", "champion moved v1 -> v2"),
        ("alias-remove", "champion removed (was v2)"),
    ]


def test_find_version_takes_numbers_and_aliases_and_says_what_exists(
    make_version: Callable[..., ModelVersion],
) -> None:
    v1 = make_version(version=1)
    make_version(version=2)
    set_alias(v1.model, "staging", v1)
    assert find_version(v1.model, 1) == find_version(v1.model, "v1") == v1
    with pytest.raises(VersionNotFound) as caught:
        find_version(v1.model, "champion")
    assert str(caught.value) == (
        'iris has no version or alias "champion". Use a version number (1, 2); aliases: staging.'
    )


def test_an_alias_name_must_be_a_label(make_version: Callable[..., ModelVersion]) -> None:
    v1 = make_version()
    with pytest.raises(MetadataError, match='"Champion" cannot be used.*"champion"'):
        set_alias(v1.model, "Champion", v1)


def test_notes_and_tags_changes_are_audited(make_version: Callable[..., ModelVersion]) -> None:
    v1 = make_version()
    describe_version(v1, notes="trained on q3", tags=["baseline"])
    describe_version(v1, notes="trained on q3", tags=["baseline"])  # no change, no event
    v1.refresh_from_db()
    assert (v1.notes, v1.tags) == ("trained on q3", ["baseline"])
    assert list(RegistryEvent.objects.values_list("message", flat=True)) == [
        "v1: notes; tags none -> baseline"
    ]


# The API ---------------------------------------------------------------------------------------


def test_api_sets_an_alias_and_deploys_and_changes_by_it(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    response = api.put("/api/models/iris/aliases/champion/", {"version": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 1
    created = api.post(
        "/api/deployments/", {"name": "iris-prod", "model": "iris", "version": "champion"}
    )
    assert created.status_code == 202, created.content
    assert created.json()["version"] == 1
    # Moving the alias does not move the deployment; changing it by alias does.
    api.put("/api/models/iris/aliases/champion/", {"version": "v2"}, format="json")
    assert Deployment.objects.get(name="iris-prod").model_version == v1
    Deployment.objects.filter(name="iris-prod").update(status=st.RUNNING)
    changed = api.patch("/api/deployments/iris-prod/", {"version": "champion"}, format="json")
    assert changed.status_code == 202, changed.content
    assert Deployment.objects.get(name="iris-prod").model_version == v2
    assert api.get("/api/models/iris/aliases/").json() == [
        {
            "name": "champion",
            "version": 2,
            "updated_by": "admin",
            "updated_at": api.get("/api/models/iris/aliases/champion/").json()["updated_at"],
        }
    ]
    events = api.get("/api/models/iris/events/").json()["results"]
    assert [(e["action"], e["actor"], e["via"]) for e in events] == [
        ("alias-move", "admin", "api"),
        ("alias-set", "admin", "api"),
    ]
    assert api.get("/api/models/iris/versions/2/").json()["aliases"] == ["champion"]


def test_api_refuses_bad_alias_input_in_words(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    make_version()
    bad_name = api.put("/api/models/iris/aliases/Top/", {"version": 1}, format="json")
    assert bad_name.status_code == 400
    assert bad_name.json() == {
        "name": [
            '"Top" cannot be used. Use up to 32 lowercase letters, digits and dashes, starting '
            'with a letter, e.g. "champion" or "staging". For example "top".'
        ]
    }
    missing = api.put("/api/models/iris/aliases/top/", {"version": 9}, format="json")
    assert missing.json() == {"version": ["iris has no version 9. Use a version number (1)."]}
    deploy = api.post("/api/deployments/", {"name": "x", "model": "iris", "version": "gold"})
    assert deploy.json() == {
        "version": ['iris has no version or alias "gold". Use a version number (1).']
    }


def test_api_edits_notes_and_tags(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    make_version()
    response = api.patch(
        "/api/models/iris/versions/1/", {"notes": "first try", "tags": ["baseline"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["notes"], response.json()["tags"]) == ("first try", ["baseline"])
    bad = api.patch("/api/models/iris/versions/1/", {"tags": "Not A Tag"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["tags"][0].startswith('"Not A Tag" cannot be used.')


def test_api_compares_two_versions(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    ModelVersion.objects.filter(pk=v1.pk).update(metrics={"auc": 0.91}, size=100)
    ModelVersion.objects.filter(pk=v2.pk).update(metrics={"auc": 0.93, "f1": 0.8}, size=120)
    set_alias(v2.model, "champion", v2)
    response = api.get("/api/models/iris/compare/?a=1&b=champion")
    assert response.status_code == 200, response.content
    body = response.json()
    rows = {row["key"]: (row["a"], row["b"], row["same"]) for row in body["rows"]}
    assert (body["a"], body["b"], body["same_artifact"]) == (1, 2, True)
    assert rows["metric:auc"] == (0.91, 0.93, False)
    assert rows["metric:f1"] == (None, 0.8, False)
    assert rows["size"] == (100, 120, False)
    assert rows["aliases"] == ([], ["champion"], False)
    assert rows["sha256"][2] is True
    assert set(body["differences"]) == {"size", "aliases", "metric:auc", "metric:f1"}
    assert comparison(v1, v1)["differences"] == []
    missing = api.get("/api/models/iris/compare/?a=1")
    assert missing.status_code == 400
    assert missing.json() == {"b": ["Give ?b= a version number or an alias."]}


def test_odd_references_are_not_found_rather_than_errors(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    """Texts the database cannot compare or hold (NUL, numbers beyond its integers, other
    scripts' digits) are a plain 400 or 404, never a server error."""
    v1 = make_version()
    for ref in ("²", "9" * 5000, "v" + "9" * 12, "a\x00b", "x" * 500):
        with pytest.raises(VersionNotFound):
            find_version(v1.model, ref)
    assert remove_alias(v1.model, "a\x00b") is False
    huge = api.post(
        "/api/deployments/", {"name": "x", "model": "iris", "version": 2**40}, format="json"
    )
    assert huge.json() == {
        "version": ['Give a version number such as 2, or an alias such as "champion".']
    }
    assert api.get("/api/models/iris/aliases/a%00b/").status_code == 404
    notes = api.patch("/api/models/iris/versions/1/", {"notes": "a\x00b"}, format="json")
    assert notes.json() == {"notes": ["Notes may not contain null characters."]}
    with pytest.raises(MetadataError, match="null characters"):
        parse_metrics({"auc\x00": 1})
