"""The console's side of tabular versions: the schema-built test form, the serving config it
writes, and the sample as the drift reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployments.artifacts import get_store
from deployments.models import Deployment, ModelVersion
from deployments.specs import serving_config
from deployments.web.forms import TabularPredictForm

SCHEMA = [
    {"name": "age", "type": "integer", "categories": None, "nullable": True},
    {"name": "city", "type": "category", "categories": ["london", "paris"], "nullable": False},
    {"name": "note", "type": "string", "categories": None, "nullable": False},
]
EXAMPLE = {"age": 31, "city": "paris", "note": "hi"}


def _form(data: dict | None = None) -> TabularPredictForm:
    return TabularPredictForm(data, schema=SCHEMA, example=EXAMPLE)


def test_the_form_has_a_select_per_category_and_the_sample_prefilled() -> None:
    form = _form()
    html = str(form["c1"])
    assert "<select" in html and ">london<" in html and ">paris<" in html
    assert form["c0"].initial == 31 and form["c1"].initial == "paris"


def test_the_form_sends_one_object_and_null_where_allowed() -> None:
    form = _form({"c0": "", "c1": "london", "c2": "x"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["matrix"] == [{"age": None, "city": "london", "note": "x"}]


def test_pasted_csv_is_mapped_by_its_header() -> None:
    form = _form({"rows": "note,city,age\nhello,paris,40\n,london,\n"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["matrix"] == [
        {"age": 40, "city": "paris", "note": "hello"},
        {"age": None, "city": "london", "note": None},
    ]
    by_position = _form({"rows": "40,paris,hello"})
    assert by_position.is_valid(), by_position.errors
    assert by_position.cleaned_data["matrix"] == [{"age": 40, "city": "paris", "note": "hello"}]


def test_a_bad_pasted_number_names_its_row_and_column() -> None:
    form = _form({"rows": "age,city,note\nold,paris,x\n"})
    assert not form.is_valid()
    assert "row 1, column 'age'" in form.errors["rows"][0]


@pytest.mark.django_db
def test_the_serving_config_carries_the_schema_and_sample_rows(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment()
    version = deployment.model_version
    version.input_schema = SCHEMA + [{"name": "x", "type": "number", "nullable": False}]
    version.example_rows = [{**EXAMPLE, "x": 1.0}]
    version.save()
    cfg = serving_config(deployment)
    assert cfg.input_schema is not None and [c.name for c in cfg.input_schema] == [
        "age",
        "city",
        "note",
        "x",
    ]
    assert cfg.sample_rows == [{**EXAMPLE, "x": 1.0}]


@pytest.mark.django_db
def test_the_sample_is_the_drift_reference_unless_one_is_uploaded(
    make_version: Callable[..., ModelVersion], tmp_path: Path
) -> None:
    from deployments.observability.drift import DriftUnavailable, reference_rows

    version = make_version(input_size=3)
    with pytest.raises(DriftUnavailable, match="or a sample with the version"):
        reference_rows(version)
    sample = tmp_path / "sample.csv"
    sample.write_text("age,city,note\n31,paris,hi\n,london,\n")
    version.sample_uri = get_store().put(sample, "iris/1/sample.csv")
    version.save()
    assert reference_rows(version) == (
        ["age", "city", "note"],
        [["31", "paris", "hi"], ["", "london", ""]],
    )
    reference = tmp_path / "reference.csv"
    reference.write_text("age,city,note\n40,london,x\n")
    version.reference_uri = get_store().put(reference, "iris/1/reference.csv")
    version.save()
    assert reference_rows(version) == (["age", "city", "note"], [["40", "london", "x"]])


def test_result_rows_show_labels_alone_and_bars_for_probabilities() -> None:
    from deployments.predictions import PredictionResult
    from deployments.web.presenters import result_rows

    labels = PredictionResult(200, {"predictions": ["yes", "no"], "classes": ["no", "yes"]}, 1.0)
    assert result_rows(labels, ["no", "yes"]) == [
        {"number": 1, "label": "yes"},
        {"number": 2, "label": "no"},
    ]
    proba = PredictionResult(200, {"predictions": [[0.25, 0.75]], "classes": [0, 1]}, 1.0)
    (row,) = result_rows(proba, [0, 1])
    assert row["label"] == 1 and [c["percent"] for c in row["cells"]] == [25.0, 75.0]
