"""API write serializers (deployments/api/serializers.py): the same bounds and patterns as the
forms, taken from constants.py, and the field messages API clients read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deployments import constants as st
from deployments.api.serializers import DeploymentCreateSerializer, DeploymentUpdateSerializer
from deployments.models import ModelVersion, RegisteredModel
from deployments.names import name_problem
from tests.unit.samples import BAD_NAMES, BAD_QUANTITIES, GOOD_NAMES, GOOD_QUANTITIES

pytestmark = pytest.mark.django_db
VERSION_REF = 'Give a version number such as 2, or an alias such as "champion".'


def create(**data: object) -> DeploymentCreateSerializer:
    serializer = DeploymentCreateSerializer(data={"name": "iris-prod", "model": "iris", **data})
    serializer.is_valid()
    return serializer


def messages(serializer: DeploymentCreateSerializer | DeploymentUpdateSerializer) -> dict:
    return {field: [str(m) for m in errors] for field, errors in serializer.errors.items()}


def test_create_defaults_to_the_latest_version_and_the_default_resources(
    make_version: Callable[..., ModelVersion],
) -> None:
    make_version(version=1)
    latest = make_version(version=2)
    serializer = create()
    assert serializer.errors == {}
    data = serializer.validated_data
    assert data["model_version"] == latest
    assert data["replicas"] == st.DEFAULT_REPLICAS
    assert {k: data[k] for k in st.RESOURCE_FIELDS} == st.DEFAULT_RESOURCES


def test_create_takes_a_named_version(make_version: Callable[..., ModelVersion]) -> None:
    first = make_version(version=1)
    make_version(version=2)
    assert create(version=1).validated_data["model_version"] == first


def test_create_names_the_missing_model_or_version(
    make_version: Callable[..., ModelVersion],
) -> None:
    assert messages(create(model="nope")) == {"model": ["no model named 'nope'"]}
    make_version(version=1)
    assert messages(create(version=7)) == {
        "version": ["iris has no version 7. Use a version number (1)."]
    }
    assert messages(create(version="champion")) == {
        "version": ['iris has no version or alias "champion". Use a version number (1).']
    }
    RegisteredModel.objects.create(name="empty", job=st.REGRESSION, input_size=3)
    assert messages(create(model="empty")) == {
        "model": ["model empty has no versions yet: upload one first"]
    }


@pytest.mark.parametrize("replicas", [st.MIN_REPLICAS, st.MAX_REPLICAS])
def test_create_accepts_the_replica_bounds(
    make_version: Callable[..., ModelVersion], replicas: int
) -> None:
    make_version()
    assert create(replicas=replicas).errors == {}


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        (st.MAX_REPLICAS + 1, st.REPLICAS_MESSAGE),
        (st.MIN_REPLICAS - 1, st.REPLICAS_MESSAGE),
        ("two", st.REPLICAS_INVALID),
    ],
)
def test_create_refuses_replicas_out_of_bounds(
    make_version: Callable[..., ModelVersion], replicas: object, message: str
) -> None:
    make_version()
    assert messages(create(replicas=replicas)) == {"replicas": [message]}


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_create_accepts_dns_label_names(
    make_version: Callable[..., ModelVersion], name: str
) -> None:
    make_version()
    assert create(name=name).errors == {}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_create_refuses_other_names(make_version: Callable[..., ModelVersion], name: str) -> None:
    make_version()
    errors = messages(create(name=name))
    assert list(errors) == ["name"]
    assert errors["name"] == [name_problem(name)]


@pytest.mark.parametrize("quantity", GOOD_QUANTITIES)
def test_create_accepts_kubernetes_quantities(
    make_version: Callable[..., ModelVersion], quantity: str
) -> None:
    make_version()
    assert create(cpu_request=quantity, memory_limit=quantity).errors == {}


@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
@pytest.mark.parametrize("field", st.RESOURCE_FIELDS)
def test_create_refuses_other_quantities(
    make_version: Callable[..., ModelVersion], quantity: str, field: str
) -> None:
    make_version()
    errors = messages(create(**{field: quantity}))
    assert list(errors) == [field]
    assert st.QUANTITY_MESSAGE in errors[field] or len(quantity) > st.QUANTITY_MAX_LENGTH


def test_create_limits_may_be_blank_but_requests_may_not(
    make_version: Callable[..., ModelVersion],
) -> None:
    make_version()
    serializer = create(cpu_limit="", memory_limit="")
    assert serializer.errors == {}
    assert serializer.validated_data["cpu_limit"] == ""
    assert set(messages(create(cpu_request="", memory_request=""))) == {
        "cpu_request",
        "memory_request",
    }


def test_create_requires_a_name_and_a_model() -> None:
    serializer = DeploymentCreateSerializer(data={})
    assert not serializer.is_valid()
    assert messages(serializer) == {
        "name": ["Enter a name."],
        "model": ["Name the model to deploy (its name on the Models page)."],
    }


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({}, {}),
        ({"replicas": st.MIN_REPLICAS, "version": 1}, {}),
        ({"replicas": st.MAX_REPLICAS}, {}),
        ({"replicas": st.MAX_REPLICAS + 1}, {"replicas": [st.REPLICAS_MESSAGE]}),
        ({"version": 0}, {"version": [VERSION_REF]}),
        ({"version": 1.5}, {"version": [VERSION_REF]}),
        ({"version": "champion"}, {}),  # an alias: the view resolves it
    ],
)
def test_update_bounds(data: dict, errors: dict) -> None:
    serializer = DeploymentUpdateSerializer(data=data)
    assert serializer.is_valid() is (not errors)
    assert messages(serializer) == errors
