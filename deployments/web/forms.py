"""Browser forms. They validate input and say what is wrong in plain words; the work is done by
registry and lifecycle functions."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from django import forms

from deployments import constants as st
from deployments.constants import MAX_PREDICT_ROWS
from deployments.json_limits import JSONTooDeep, load_json
from deployments.models import QUANTITY, Deployment, ModelVersion, RegisteredModel
from deployments.names import validate_name
from deployments.registry import metadata
from deployments.registry.aliases import VersionNotFound, find_version

_REPLICA_ERRORS = {
    "min_value": st.REPLICAS_MESSAGE,
    "max_value": st.REPLICAS_MESSAGE,
    "required": "Enter a number of replicas.",
    "invalid": st.REPLICAS_INVALID,
}


def _replicas_field(**kwargs: Any) -> forms.IntegerField:
    """One definition of the replicas field, so every form words its errors the same."""
    return forms.IntegerField(
        min_value=st.MIN_REPLICAS,
        max_value=st.MAX_REPLICAS,
        error_messages=_REPLICA_ERRORS,
        **kwargs,
    )


def _quantity_field(label: str, name: str, required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=label,
        initial=st.DEFAULT_RESOURCES[name],
        required=required,
        max_length=st.QUANTITY_MAX_LENGTH,
        validators=[QUANTITY],
    )


def _name_field(**kwargs: Any) -> forms.CharField:
    """A model's or deployment's name, its errors worded by deployments/names.py."""
    # The length is checked by validate_name too (one message); the browser limits typing.
    return forms.CharField(
        validators=[validate_name],
        widget=forms.TextInput(attrs={"maxlength": st.NAME_MAX_LENGTH}),
        error_messages={"required": "Enter a name."},
        **kwargs,
    )


class ModelForm(forms.ModelForm):
    name = _name_field(
        label="Name", help_text="Lower-case letters, digits and '-', e.g. iris (used in URLs)."
    )
    job = forms.ChoiceField(
        choices=[("", "Choose one"), *st.JOB_CHOICES],
        help_text="Classification answers class probabilities; regression answers values.",
        error_messages={"required": st.JOB_MESSAGE, "invalid_choice": st.JOB_MESSAGE},
    )
    input_size = forms.IntegerField(
        label="Number of features",
        required=False,
        min_value=1,
        max_value=st.MAX_INPUT_SIZE,
        help_text=(
            f"How many numbers (or columns) one row of input holds, at most {st.MAX_INPUT_SIZE}. "
            "Leave it empty to take it from the first version's file, or from the header of "
            "the sample CSV uploaded with it."
        ),
        error_messages={
            "invalid": st.FEATURES_INVALID,
            "min_value": st.FEATURES_MESSAGE,
            "max_value": st.FEATURES_MESSAGE,
        },
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if RegisteredModel.objects.filter(name=name).exists():
            raise forms.ValidationError(
                f"A model named {name} already exists. Choose another name, or open {name} "
                "and upload a new version of it."
            )
        return name

    class Meta:
        model = RegisteredModel
        fields = ["name", "job", "input_size", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Model file",
        help_text="A fitted estimator saved with joblib, pickle or skops.",
        error_messages={
            "required": st.NO_FILE_MESSAGE,
            "empty": st.EMPTY_FILE_MESSAGE,
            "invalid": st.NO_FILE_MESSAGE,
            "missing": st.NO_FILE_MESSAGE,
        },
    )
    model_type = forms.ChoiceField(
        label="Format",
        choices=st.MODEL_TYPE_CHOICES,
        initial=st.DEFAULT_MODEL_TYPE,
        help_text="How the file was saved.",
        error_messages={"required": st.MODEL_TYPE_MESSAGE, "invalid_choice": st.MODEL_TYPE_MESSAGE},
    )
    approve_types = forms.CharField(
        label="Approve types or globals (admins)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="Types a skops file, or globals a pickle or joblib file, may load beyond "
        "the trusted ones, one per line or comma-separated. Only approve what you know.",
    )

    notes = forms.CharField(
        label="Notes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed in this version, how it was trained (optional).",
    )
    tags = forms.CharField(
        label="Tags",
        required=False,
        help_text="Labels such as baseline, q3, separated by commas (optional).",
    )
    metrics = forms.CharField(
        label="Metrics (JSON)",
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "placeholder": st.METRICS_EXAMPLE}),
        help_text="What you measured, as a flat JSON object of numbers or short texts (optional).",
    )
    sample = forms.FileField(
        label="Sample rows (CSV, optional)",
        required=False,
        help_text="A few real rows with a header naming the columns: the console learns the "
        "columns' types from it, checks the model on its rows and prefills the test form.",
    )

    def clean_approve_types(self) -> list[str]:
        text = self.cleaned_data["approve_types"]
        return [t.strip() for t in text.replace(",", "\n").splitlines() if t.strip()]

    def clean_notes(self) -> str:
        return _metadata(metadata.parse_notes, self.cleaned_data["notes"])

    def clean_tags(self) -> list[str]:
        return _metadata(metadata.parse_tags, self.cleaned_data["tags"])

    def clean_metrics(self) -> dict[str, Any]:
        return _metadata(metadata.parse_metrics, self.cleaned_data["metrics"])


def _metadata(parse: Any, value: Any) -> Any:
    try:
        return parse(value)
    except metadata.MetadataError as exc:
        raise forms.ValidationError(str(exc)) from None


def version_label(v: ModelVersion, *, with_model: bool = True) -> str:
    """How a version reads in a picker: number, aliases, tags, upload date and estimator."""
    parts = [f"{v.model.name} v{v.version}" if with_model else f"v{v.version}"]
    aliases = sorted(a.name for a in v.aliases.all())
    if aliases:
        parts.append(f"[{', '.join(aliases)}]")
    if v.tags:
        parts.append(f"#{' #'.join(v.tags)}")
    parts.append(f"uploaded {v.created_at:%Y-%m-%d %H:%M}")
    estimator = v.estimator_class.rsplit(".", 1)[-1]
    if estimator:
        parts.append(f"({estimator})")
    return " ".join(parts)


def version_choices() -> list[tuple[str, list[tuple[int, str]]]]:
    """Versions grouped by model, newest first, for a select with one group per model (archived
    models left out: archiving says the model is no longer offered)."""
    groups: dict[str, list[tuple[int, str]]] = {}
    versions = (
        ModelVersion.objects.select_related("model")
        .prefetch_related("aliases")
        .filter(model__archived_at__isnull=True)
    )
    for v in versions.order_by("model__name", "-version"):
        groups.setdefault(v.model.name, []).append((v.pk, version_label(v)))
    return list(groups.items())


class DeployForm(forms.Form):
    name = _name_field(
        label="Deployment name",
        help_text="Lower-case letters, digits and '-', e.g. iris-prod. It names the endpoint.",
    )
    version = forms.TypedChoiceField(
        label="Model version",
        coerce=int,
        error_messages={
            "required": "Choose a model version.",
            "invalid_choice": "Choose one of the listed model versions.",
        },
    )
    replicas = _replicas_field(
        initial=st.DEFAULT_REPLICAS,
        help_text=f"Serving processes ({st.MIN_REPLICAS} to {st.MAX_REPLICAS}).",
    )
    cpu_request = _quantity_field("CPU request", "cpu_request")
    memory_request = _quantity_field("Memory request", "memory_request")
    cpu_limit = _quantity_field("CPU limit", "cpu_limit", required=False)
    memory_limit = _quantity_field("Memory limit", "memory_limit", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "Choose a model version"), *version_choices()]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Deployment.objects.filter(name=name).exists():
            raise forms.ValidationError(
                f"A deployment named {name} already exists. Choose another name."
            )
        return name

    def clean_version(self) -> ModelVersion:
        version = ModelVersion.objects.select_related("model").filter(
            pk=self.cleaned_data["version"]
        )
        if not version:
            raise forms.ValidationError("That model version no longer exists.")
        return version[0]

    def resources(self) -> dict[str, str]:
        return {k: self.cleaned_data[k] for k in st.RESOURCE_FIELDS}


def check_deployment_name(name: str) -> str:
    """The first problem with `name` as a new deployment's name, or '' when it is fine."""
    form = DeployForm(data={"name": name})
    errors = form.errors.get("name")
    return errors[0] if errors else ""


class ChangeVersionForm(forms.Form):
    version = forms.ModelChoiceField(
        label="Version",
        queryset=ModelVersion.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of this model's versions."},
    )

    def __init__(self, *args: Any, deployment: Deployment, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"version": deployment.model_version_id})
        super().__init__(*args, **kwargs)
        field = self.fields["version"]
        field.queryset = (
            ModelVersion.objects.filter(model=deployment.model_version.model)
            .select_related("model")
            .prefetch_related("aliases")
        )
        field.label_from_instance = lambda v: version_label(v, with_model=False)


class DescribeVersionForm(forms.Form):
    """A version's notes and tags, edited on the model's page."""

    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(
        label="Tags", required=False, help_text="Separated by commas, e.g. baseline, q3."
    )

    def clean_notes(self) -> str:
        return _metadata(metadata.parse_notes, self.cleaned_data["notes"])

    def clean_tags(self) -> list[str]:
        return _metadata(metadata.parse_tags, self.cleaned_data["tags"])


class AliasForm(forms.Form):
    """Point an alias (new or existing) at one of the model's versions."""

    name = forms.CharField(
        label="Alias",
        max_length=64,
        help_text="e.g. champion or staging; an existing alias moves to the chosen version.",
        error_messages={"required": 'Enter an alias, e.g. "champion".'},
    )
    version = forms.IntegerField(
        label="Version",
        error_messages={"required": "Choose a version.", "invalid": "Choose a version."},
    )

    def __init__(self, *args: Any, model: RegisteredModel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = model

    def clean_name(self) -> str:
        return _metadata(lambda v: metadata.check_label(v, "alias"), self.cleaned_data["name"])

    def clean_version(self) -> ModelVersion:
        try:
            return find_version(self.model, self.cleaned_data["version"])
        except VersionNotFound as exc:
            raise forms.ValidationError(str(exc)) from None


class ScaleForm(forms.Form):
    replicas = _replicas_field(label="Replicas")


class LogSampleForm(forms.Form):
    log_sample = forms.FloatField(
        label="Prediction log (share of requests)",
        min_value=0.0,
        max_value=1.0,
        error_messages=dict.fromkeys(
            ("required", "invalid", "min_value", "max_value"), st.LOG_SAMPLE_MESSAGE
        ),
    )


def _number(value: Any, row: int, column: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise forms.ValidationError(
            f"Row {row}, value {column} is {json.dumps(value)}, not a number."
        )
    return value


def parse_rows(text: str) -> list[list[float]]:
    """Rows from a JSON matrix (or one JSON row, or {"instances": ...}) or from CSV lines."""
    text = text.strip()
    if text.startswith(("[", "{")):
        try:
            data = load_json(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        except JSONTooDeep:
            raise forms.ValidationError(
                f"This JSON is nested more than {st.MAX_JSON_DEPTH} levels deep; "
                "give a matrix such as [[5.1, 3.5, 1.4, 0.2]]."
            ) from None
        if isinstance(data, dict):
            data = data.get("instances")
        if not isinstance(data, list) or not data:
            raise forms.ValidationError("Give a JSON matrix such as [[5.1, 3.5, 1.4, 0.2]].")
        if not isinstance(data[0], list):
            data = [data]
        rows = []
        for r, row in enumerate(data, start=1):
            if not isinstance(row, list):
                raise forms.ValidationError(f"Row {r} is not a list of numbers.")
            rows.append([_number(v, r, c) for c, v in enumerate(row, start=1)])
        return rows
    rows = []
    for number, line in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in line]
        if not any(cells):
            continue
        try:
            rows.append([float(cell) for cell in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_float(c))
            problem = "an empty value" if not bad else f"{bad!r}, which is not a number"
            raise forms.ValidationError(f"Line {number} holds {problem}.") from None
    return rows


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


class PredictForm(forms.Form):
    """One input per feature (named after the model's features when known), or many rows pasted
    as CSV or JSON. Rows win when both are given."""

    rows = forms.CharField(
        label="Rows (CSV or JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One row per line as CSV, or a JSON matrix such as [[5.1, 3.5, 1.4, 0.2]].",
    )

    def __init__(self, *args: Any, feature_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feature_names = feature_names
        self.feature_fields = []
        # A wide model gets the rows box only: a page of thousands of inputs is too heavy.
        self.one_input_per_feature = len(feature_names) <= st.MAX_FORM_FEATURES
        for i, name in enumerate(feature_names if self.one_input_per_feature else []):
            key = f"f{i}"
            self.fields[key] = forms.FloatField(
                label=name,
                required=False,
                widget=forms.NumberInput(attrs={"step": "any"}),
                error_messages={"invalid": f"Enter a number for {name}."},
            )
            self.feature_fields.append(key)

    def features(self) -> list[forms.BoundField]:
        return [self[key] for key in self.feature_fields]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        n = len(self.feature_names)
        if self.errors:
            return cleaned
        text = (cleaned.get("rows") or "").strip()
        if text:
            try:
                rows = parse_rows(text)
            except forms.ValidationError as exc:
                self.add_error("rows", exc)
                return cleaned
            if not rows:
                self.add_error("rows", "Give at least one row.")
            elif len(rows) > MAX_PREDICT_ROWS:
                self.add_error("rows", f"Give at most {MAX_PREDICT_ROWS} rows at a time.")
            for r, row in enumerate(rows, start=1):
                if len(row) != n:
                    self.add_error(
                        "rows",
                        f"Row {r} has {len(row)} value{'s' if len(row) != 1 else ''}; "
                        f"this model takes {n} feature{'s' if n != 1 else ''}.",
                    )
                    break
                if not all(math.isfinite(v) for v in row):
                    self.add_error("rows", f"Row {r} holds NaN or infinity.")
                    break
            cleaned["matrix"] = rows
            return cleaned
        if not self.one_input_per_feature:
            self.add_error(
                "rows",
                f"Paste rows as CSV or JSON: this model takes {n} features, too many to ask "
                "one by one.",
            )
            return cleaned
        values = [cleaned.get(key) for key in self.feature_fields]
        if all(v is None for v in values):
            raise forms.ValidationError("Fill in the features, or paste rows as CSV or JSON.")
        for key, name, value in zip(self.feature_fields, self.feature_names, values, strict=True):
            if value is None:
                self.add_error(key, f"Enter a number for {name}.")
            elif not math.isfinite(value):
                self.add_error(key, f"{name} must be a finite number.")
        cleaned["matrix"] = [values]
        return cleaned


class TokenForm(forms.Form):
    """A new API token: a name saying what uses it, and how long it lasts."""

    name = forms.CharField(
        label="Name",
        max_length=st.TOKEN_NAME_MAX_LENGTH,
        help_text="What will use it, such as a CI job or a notebook.",
        error_messages={
            "required": "Give the token a name, such as the script or job using it.",
            "max_length": f"Use at most {st.TOKEN_NAME_MAX_LENGTH} characters.",
        },
    )
    lifetime = forms.ChoiceField(
        label="Expires",
        choices=[
            (key, f"in {days} days" if days else "never")
            for key, days in st.TOKEN_LIFETIMES.items()
        ],
        initial=st.DEFAULT_TOKEN_LIFETIME,
        error_messages={"invalid_choice": "Pick one of the listed lifetimes."},
    )


class TrafficForm(forms.Form):
    """The traffic panel: which version, what weight (canary) or a copy of each request (shadow)."""

    version = forms.ModelChoiceField(
        label="Version",
        queryset=ModelVersion.objects.none(),
        empty_label=None,
        required=False,
        error_messages={"invalid_choice": "Choose one of this model's versions."},
    )
    weight = forms.IntegerField(
        label="Weight (%)",
        min_value=st.MIN_WEIGHT,
        max_value=st.MAX_WEIGHT,
        required=False,
        error_messages={
            "min_value": st.WEIGHT_MESSAGE,
            "max_value": st.WEIGHT_MESSAGE,
            "invalid": st.WEIGHT_MESSAGE,
        },
    )

    def __init__(self, *args: Any, deployment: Deployment, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["version"]
        field.queryset = ModelVersion.objects.filter(model=deployment.model_version.model).exclude(
            pk=deployment.model_version_id
        )
        field.label_from_instance = lambda v: f"v{v.version}"


class TabularPredictForm(forms.Form):
    """The test form of a version with an input schema: a select for each category column (and
    booleans), a text input for strings, a number input for numbers, an empty field allowed
    where the column takes a missing value, the sample's first row prefilled. Pasted CSV whose
    first line names the columns is mapped by name; without it, by position."""

    rows = forms.CharField(
        label="Rows (CSV or JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="CSV whose first line names the columns (any order), or a JSON array of "
        'objects such as [{"age": 31, "city": "paris"}].',
    )

    def __init__(
        self,
        *args: Any,
        schema: list[dict[str, Any]],
        example: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        from serving.config import Column

        self.columns = [Column.model_validate(c) for c in schema]
        self.feature_names = [c.name for c in self.columns]
        self.one_input_per_feature = len(self.columns) <= st.MAX_FORM_FEATURES
        self.feature_fields: list[str] = []
        example = example or {}
        for i, column in enumerate(self.columns if self.one_input_per_feature else []):
            key = f"c{i}"
            self.fields[key] = _column_field(column, example.get(column.name))
            self.feature_fields.append(key)

    def features(self) -> list[forms.BoundField]:
        return [self[key] for key in self.feature_fields]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        text = (cleaned.get("rows") or "").strip()
        if text:
            try:
                rows = self._pasted(text)
            except forms.ValidationError as exc:
                self.add_error("rows", exc)
                return cleaned
            if len(rows) > MAX_PREDICT_ROWS:
                self.add_error("rows", f"Give at most {MAX_PREDICT_ROWS} rows at a time.")
            cleaned["matrix"] = rows
            return cleaned
        if not self.one_input_per_feature:
            self.add_error("rows", "Paste rows as CSV or JSON: this model has too many columns.")
            return cleaned
        row: dict[str, Any] = {}
        for key, column in zip(self.feature_fields, self.columns, strict=True):
            value = cleaned.get(key)
            if value in (None, ""):
                if not column.nullable and column.type != "string":
                    self.add_error(key, f"Enter a value for {column.name}: it cannot be missing.")
                value = "" if column.type == "string" and not column.nullable else None
            elif column.type == "boolean":
                value = value == "true"
            elif column.type == "category":
                value = _category_value(column, value)
            row[column.name] = value
        cleaned["matrix"] = [row]
        return cleaned

    def _pasted(self, text: str) -> list[Any]:
        """Objects keyed by column from pasted JSON (passed on as is: serving checks them) or
        CSV (typed by the schema)."""
        from serving.schema import SampleError, read_sample, typed_rows

        if text[0] in "[{":
            try:
                data = load_json(text)
            except (json.JSONDecodeError, JSONTooDeep):
                raise forms.ValidationError("This is not valid JSON.") from None
            if isinstance(data, dict):
                data = data.get("instances", data.get("dataframe_records"))
            if not isinstance(data, list) or not data:
                raise forms.ValidationError("Give a JSON array of rows.")
            return data
        names = self.feature_names
        first = next(csv.reader(io.StringIO(text)), [])
        if {cell.strip() for cell in first} != set(names):
            text = ",".join(_csv_cell(n) for n in names) + "\n" + text  # rows by position
        try:
            header, cells = read_sample(text, max_rows=MAX_PREDICT_ROWS + 1)
            return typed_rows(self.columns, header, cells)
        except SampleError as exc:
            message = str(exc).replace("the sample CSV", "the pasted CSV")
            raise forms.ValidationError(message[0].upper() + message[1:] + ".") from None


def _csv_cell(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n') else name


def _category_value(column: Any, value: str) -> Any:
    """A select's value back as the category it names (numbers stay numbers)."""
    for category in column.categories or []:
        if str(category) == value:
            return category
    return value


def _column_field(column: Any, initial: Any) -> forms.Field:
    label = column.name
    hint = "may be left empty (a missing value)" if column.nullable else ""
    if column.type in ("category", "boolean"):
        options = column.categories if column.type == "category" else ["true", "false"]
        choices = [(str(c), str(c)) for c in options or []]
        if column.nullable:
            choices = [("", "(missing)"), *choices]
        if column.type == "boolean" and isinstance(initial, bool):
            initial = "true" if initial else "false"
        return forms.ChoiceField(
            label=label,
            choices=choices,
            required=False,
            initial=str(initial) if initial is not None else None,
            help_text=hint,
        )
    if column.type == "string":
        return forms.CharField(
            label=label, required=False, initial=initial, help_text=hint, strip=False
        )
    field = forms.FloatField(
        label=label,
        required=False,
        initial=initial,
        widget=forms.NumberInput(attrs={"step": "1" if column.type == "integer" else "any"}),
        help_text=hint,
        error_messages={"invalid": f"Enter a number for {column.name}."},
    )
    return field
