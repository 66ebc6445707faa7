"""Browser forms. They validate input; the work is done by registry and lifecycle functions."""

from __future__ import annotations

import csv
import io
import json

from django import forms

from deployments.models import (
    DNS_LABEL,
    MODEL_TYPE_CHOICES,
    Deployment,
    ModelVersion,
    RegisteredModel,
)


class ModelForm(forms.ModelForm):
    class Meta:
        model = RegisteredModel
        fields = ["name", "job", "input_size", "description"]
        help_texts = {"name": "Lower-case letters, digits and '-' (used in URLs)."}


class UploadForm(forms.Form):
    file = forms.FileField(help_text="A model saved with joblib, pickle or skops.")
    model_type = forms.ChoiceField(choices=MODEL_TYPE_CHOICES, initial="joblib")


class DeployForm(forms.Form):
    name = forms.CharField(
        max_length=63, validators=[DNS_LABEL], help_text="A DNS-1123 label, e.g. iris-prod."
    )
    version = forms.ModelChoiceField(queryset=ModelVersion.objects.select_related("model"))
    replicas = forms.IntegerField(min_value=0, max_value=50, initial=1)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if Deployment.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A deployment named {name!r} already exists.")
        return name


class ChangeVersionForm(forms.Form):
    version = forms.ModelChoiceField(queryset=ModelVersion.objects.none())

    def __init__(self, *args, deployment: Deployment, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = ModelVersion.objects.filter(
            model=deployment.model_version.model
        ).select_related("model")


class PredictForm(forms.Form):
    rows = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="A JSON matrix such as [[5.1, 3.5, 1.4, 0.2]], or CSV rows, one per line.",
    )

    def clean_rows(self) -> list[list[float]]:
        text = self.cleaned_data["rows"].strip()
        if text.startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(
                    f"Not valid JSON: {exc.msg} at column {exc.colno}."
                ) from None
            if rows and not isinstance(rows[0], list):
                rows = [rows]
            return rows
        rows = []
        for number, line in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not line:
                continue
            try:
                rows.append([float(cell) for cell in line])
            except ValueError:
                raise forms.ValidationError(
                    f"Row {number} holds something that is not a number."
                ) from None
        return rows
