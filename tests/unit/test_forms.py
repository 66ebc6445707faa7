"""Browser forms (deployments/web/forms.py): the bounds and patterns of constants.py, and the
plain words a user reads when input is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django import forms

from deployments import constants as st
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.names import name_problem
from deployments.registry.aliases import set_alias
from deployments.web.forms import (
    DeployForm,
    ModelForm,
    PredictForm,
    ScaleForm,
    check_deployment_name,
    parse_rows,
)
from tests.unit.samples import BAD_NAMES, BAD_QUANTITIES, GOOD_NAMES, GOOD_QUANTITIES


def deploy_data(version: ModelVersion, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "iris-prod",
        "version": str(version.pk),
        "replicas": str(st.DEFAULT_REPLICAS),
        **st.DEFAULT_RESOURCES,
    }
    data.update(overrides)
    return data


# DeployForm ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deploy_form_accepts_the_defaults(make_version: Callable[..., ModelVersion]) -> None:
    version = make_version()
    form = DeployForm(data=deploy_data(version))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["version"] == version
    assert form.cleaned_data["replicas"] == st.DEFAULT_REPLICAS
    assert form.resources() == st.DEFAULT_RESOURCES


@pytest.mark.django_db
def test_deploy_form_offers_versions_grouped_by_model_newest_first(
    make_version: Callable[..., ModelVersion],
) -> None:
    v1, v2 = make_version(version=1), make_version(version=2)
    other = make_version("diabetes", job=st.REGRESSION, input_size=10)
    set_alias(v2.model, "champion", v2)
    ModelVersion.objects.filter(pk=v1.pk).update(tags=["baseline"])
    choices = DeployForm().fields["version"].choices

    def at(v: ModelVersion) -> str:
        return f"uploaded {v.created_at:%Y-%m-%d %H:%M}"

    assert choices == [
        ("", "Choose a model version"),
        ("diabetes", [(other.pk, f"diabetes v1 {at(other)}")]),
        ("iris", [(v2.pk, f"iris v2 [champion] {at(v2)}"), (v1.pk, f"iris v1 #baseline {at(v1)}")]),
    ]

    # An archived model is no longer offered (it stays in the registry).
    RegisteredModel.objects.filter(name="diabetes").update(archived_at=other.created_at)
    assert [group for group, _ in DeployForm().fields["version"].choices[1:]] == ["iris"]


@pytest.mark.django_db
@pytest.mark.parametrize("replicas", [st.MIN_REPLICAS, st.MAX_REPLICAS])
def test_deploy_form_accepts_the_replica_bounds(
    make_version: Callable[..., ModelVersion], replicas: int
) -> None:
    form = DeployForm(data=deploy_data(make_version(), replicas=str(replicas)))
    assert form.is_valid(), form.errors


@pytest.mark.django_db
@pytest.mark.parametrize("replicas", [st.MIN_REPLICAS - 1, st.MAX_REPLICAS + 1, "two", ""])
def test_deploy_form_refuses_replicas_out_of_bounds(
    make_version: Callable[..., ModelVersion], replicas: object
) -> None:
    form = DeployForm(data=deploy_data(make_version(), replicas=str(replicas)))
    assert not form.is_valid()
    assert list(form.errors) == ["replicas"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", GOOD_NAMES)
def test_deploy_form_accepts_dns_label_names(
    make_version: Callable[..., ModelVersion], name: str
) -> None:
    form = DeployForm(data=deploy_data(make_version(), name=name))
    assert form.is_valid(), form.errors


@pytest.mark.django_db
@pytest.mark.parametrize("name", BAD_NAMES)
def test_deploy_form_refuses_other_names_saying_why(
    make_version: Callable[..., ModelVersion], name: str
) -> None:
    form = DeployForm(data=deploy_data(make_version(), name=name))
    assert not form.is_valid()
    assert form.errors["name"] == [name_problem(name)]
    assert form.errors["name"][0].startswith("Use "), form.errors["name"]


@pytest.mark.django_db
def test_deploy_form_refuses_a_taken_name(
    make_version: Callable[..., ModelVersion], make_deployment: Callable[..., Deployment]
) -> None:
    version = make_version()
    make_deployment(version=version, name="iris-prod")
    form = DeployForm(data=deploy_data(version))
    assert not form.is_valid()
    assert form.errors["name"] == [
        "A deployment named iris-prod already exists. Choose another name."
    ]
    assert check_deployment_name("iris-prod") == form.errors["name"][0]
    assert check_deployment_name("iris-test") == ""
    assert check_deployment_name("Iris") == (
        'Use lowercase letters, digits and dashes, starting with a letter, e.g. "iris".'
    )


@pytest.mark.django_db
def test_deploy_form_refuses_a_version_that_is_gone(
    make_version: Callable[..., ModelVersion],
) -> None:
    version = make_version()
    form = DeployForm(data=deploy_data(version))  # the choices were read: the page was shown
    ModelVersion.objects.filter(pk=version.pk).delete()
    assert not form.is_valid()
    assert form.errors["version"] == ["That model version no longer exists."]


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", GOOD_QUANTITIES)
def test_deploy_form_accepts_kubernetes_quantities(
    make_version: Callable[..., ModelVersion], quantity: str
) -> None:
    form = DeployForm(data=deploy_data(make_version(), cpu_request=quantity, memory_limit=quantity))
    assert form.is_valid(), form.errors


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", BAD_QUANTITIES)
@pytest.mark.parametrize("field", st.RESOURCE_FIELDS)
def test_deploy_form_refuses_other_quantities(
    make_version: Callable[..., ModelVersion], quantity: str, field: str
) -> None:
    form = DeployForm(data=deploy_data(make_version(), **{field: quantity}))
    assert not form.is_valid()
    assert list(form.errors) == [field]
    assert st.QUANTITY_MESSAGE in form.errors[field] or len(quantity) > st.QUANTITY_MAX_LENGTH


@pytest.mark.django_db
def test_deploy_form_limits_may_be_empty_but_requests_may_not(
    make_version: Callable[..., ModelVersion],
) -> None:
    version = make_version()
    form = DeployForm(data=deploy_data(version, cpu_limit="", memory_limit=""))
    assert form.is_valid(), form.errors
    assert form.resources()["cpu_limit"] == ""
    form = DeployForm(data=deploy_data(version, cpu_request="", memory_request=""))
    assert not form.is_valid()
    assert set(form.errors) == {"cpu_request", "memory_request"}


# ScaleForm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [st.MIN_REPLICAS, st.DEFAULT_REPLICAS, st.MAX_REPLICAS])
def test_scale_form_accepts_replicas_within_bounds(replicas: int) -> None:
    form = ScaleForm(data={"replicas": str(replicas)})
    assert form.is_valid()
    assert form.cleaned_data["replicas"] == replicas


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (str(st.MAX_REPLICAS + 1), st.REPLICAS_MESSAGE),
        (str(st.MIN_REPLICAS - 1), st.REPLICAS_MESSAGE),
        ("", "Enter a number of replicas."),
        ("many", st.REPLICAS_INVALID),
    ],
)
def test_scale_form_says_what_is_wrong(value: str, message: str) -> None:
    form = ScaleForm(data={"replicas": value})
    assert not form.is_valid()
    assert form.errors["replicas"] == [message]


def test_the_replicas_message_names_the_bounds() -> None:
    assert f"Use {st.MIN_REPLICAS} to {st.MAX_REPLICAS} replicas." == st.REPLICAS_MESSAGE


# ModelForm -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_form_registers_a_model() -> None:
    form = ModelForm(data={"name": "iris", "job": st.CLASSIFICATION, "input_size": "4"})
    assert form.is_valid(), form.errors
    model = form.save()
    assert (model.name, model.job, model.input_size) == ("iris", st.CLASSIFICATION, 4)


@pytest.mark.django_db
@pytest.mark.parametrize("empty", [{}, {"input_size": ""}])
def test_model_form_leaves_the_feature_count_to_the_first_version(empty: dict) -> None:
    form = ModelForm(data={"name": "wide", "job": st.REGRESSION, **empty})
    assert form.is_valid(), form.errors
    assert form.save().input_size is None
    assert "Leave it empty" in str(form["input_size"].help_text)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "Iris", "job": st.CLASSIFICATION, "input_size": "4"}, "name"),
        ({"name": "iris", "job": "", "input_size": "4"}, "job"),
        ({"name": "iris", "job": "clustering", "input_size": "4"}, "job"),
        ({"name": "iris", "job": st.REGRESSION, "input_size": "0"}, "input_size"),
        ({"name": "iris", "job": st.REGRESSION, "input_size": "-3"}, "input_size"),
    ],
)
def test_model_form_refuses_bad_fields(data: dict[str, str], field: str) -> None:
    form = ModelForm(data=data)
    assert not form.is_valid()
    assert list(form.errors) == [field]


@pytest.mark.django_db
def test_model_form_name_message_and_clash() -> None:
    assert ModelForm(data={"name": "1x", "job": st.REGRESSION, "input_size": "1"}).errors[
        "name"
    ] == ['Use lowercase letters, digits and dashes, starting with a letter, e.g. "x".']
    RegisteredModel.objects.create(name="iris", job=st.CLASSIFICATION, input_size=4)
    form = ModelForm(data={"name": "iris", "job": st.CLASSIFICATION, "input_size": "4"})
    assert not form.is_valid()
    assert "already exists" in form.errors["name"][0]


def test_model_form_offers_the_jobs_serving_knows() -> None:
    choices = ModelForm().fields["job"].choices
    assert [value for value, _ in choices] == ["", *st.JOBS]


# parse_rows ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("[[1, 2], [3, 4.5]]", [[1, 2], [3, 4.5]]),
        ("[1, 2, 3]", [[1, 2, 3]]),
        ('{"instances": [[1, 2]]}', [[1, 2]]),
        ("1,2\n3,4", [[1.0, 2.0], [3.0, 4.0]]),
        ("  1, 2 \n\n 3 ,4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("-1.5e3,+2", [[-1500.0, 2.0]]),
    ],
)
def test_parse_rows_reads_json_and_csv(text: str, rows: list[list[float]]) -> None:
    assert parse_rows(text) == rows


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1, 2]", "This is not valid JSON: Expecting ',' delimiter (line 1, column 8)."),
        ("[]", "Give a JSON matrix such as [[5.1, 3.5, 1.4, 0.2]]."),
        ('{"rows": [[1]]}', "Give a JSON matrix such as [[5.1, 3.5, 1.4, 0.2]]."),
        ("[[1, 2], 3]", "Row 2 is not a list of numbers."),
        ('[[1, "2"]]', 'Row 1, value 2 is "2", not a number.'),
        ("[[1, true]]", "Row 1, value 2 is true, not a number."),
        ("[[null]]", "Row 1, value 1 is null, not a number."),
        ("1,2\n3,abc", "Line 2 holds 'abc', which is not a number."),
        ("1,,2", "Line 1 holds an empty value."),
        ("1,2e,3", "Line 1 holds '2e', which is not a number."),
        ("1.2.3,4", "Line 1 holds '1.2.3', which is not a number."),
        ("1,--2", "Line 1 holds '--2', which is not a number."),
    ],
)
def test_parse_rows_says_which_row_is_wrong(text: str, message: str) -> None:
    with pytest.raises(forms.ValidationError) as caught:
        parse_rows(text)
    assert caught.value.messages == [message]


# PredictForm -----------------------------------------------------------------------------------

FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]


def test_predict_form_takes_one_row_from_the_feature_inputs() -> None:
    form = PredictForm(
        data={"f0": "5.1", "f1": "3.5", "f2": "1.4", "f3": "0.2"}, feature_names=FEATURES
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["matrix"] == [[5.1, 3.5, 1.4, 0.2]]
    assert [field.label for field in form.features()] == FEATURES


def test_predict_form_names_the_missing_and_bad_features() -> None:
    form = PredictForm(data={"f0": "5.1", "f2": "x"}, feature_names=FEATURES)
    assert not form.is_valid()
    assert form.errors["f2"] == ["Enter a number for petal length."]
    form = PredictForm(data={"f0": "5.1", "f1": "3"}, feature_names=FEATURES)
    assert not form.is_valid()
    assert form.errors["f2"] == ["Enter a number for petal length."]
    assert form.errors["f3"] == ["Enter a number for petal width."]
    form = PredictForm(data={"f0": "inf", "f1": "1", "f2": "1", "f3": "1"}, feature_names=FEATURES)
    assert not form.is_valid()
    assert form.errors["f0"] == ["Enter a number for sepal length."]


def test_predict_form_asks_for_something() -> None:
    form = PredictForm(data={}, feature_names=FEATURES)
    assert not form.is_valid()
    assert form.non_field_errors() == ["Fill in the features, or paste rows as CSV or JSON."]


def test_predict_form_rows_win_over_the_feature_inputs() -> None:
    form = PredictForm(data={"rows": "1,2,3,4\n5,6,7,8", "f0": "9"}, feature_names=FEATURES)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["matrix"] == [[1, 2, 3, 4], [5, 6, 7, 8]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("1,2,3", "Row 1 has 3 values; this model takes 4 features."),
        ("1,2,3,4\n5", "Row 2 has 1 value; this model takes 4 features."),
        ("1,2,nan,4", "Row 1 holds NaN or infinity."),
        ("[[1, 2, 3, 4], [1, 2, 3, 4, 5]]", "Row 2 has 5 values; this model takes 4 features."),
        ("\n\n", "Fill in the features, or paste rows as CSV or JSON."),
        ("[[1, 2, 3, x]]", "This is not valid JSON: Expecting value (line 1, column 12)."),
    ],
)
def test_predict_form_says_which_row_is_wrong(rows: str, message: str) -> None:
    form = PredictForm(data={"rows": rows}, feature_names=FEATURES)
    assert not form.is_valid()
    assert message in (form.errors.get("rows", []) + form.non_field_errors())


def test_predict_form_limits_the_rows_to_the_constant() -> None:
    at_limit = json.dumps([[1, 2, 3, 4]] * st.MAX_PREDICT_ROWS)
    assert PredictForm(data={"rows": at_limit}, feature_names=FEATURES).is_valid()
    over = json.dumps([[1, 2, 3, 4]] * (st.MAX_PREDICT_ROWS + 1))
    form = PredictForm(data={"rows": over}, feature_names=FEATURES)
    assert not form.is_valid()
    assert form.errors["rows"] == [f"Give at most {st.MAX_PREDICT_ROWS} rows at a time."]


def test_predict_form_with_one_feature_speaks_in_the_singular() -> None:
    form = PredictForm(data={"rows": "1,2"}, feature_names=["x"])
    assert not form.is_valid()
    assert form.errors["rows"] == ["Row 1 has 2 values; this model takes 1 feature."]
