"""Search, filters and sorting of the deployment and model lists, one definition for the
dashboard, the models page and the API (django-filter). Archived records are left out unless
`archived` asks for them."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from deployments import constants as st
from deployments.models import Deployment, RegisteredModel

ARCHIVED_CHOICES = [("include", "Include archived"), ("only", "Archived only")]


def _archived(queryset: QuerySet, name: str, value: str) -> QuerySet:
    if value == "only":
        return queryset.filter(archived_at__isnull=False)
    if value == "include":
        return queryset
    return queryset.filter(archived_at__isnull=True)


def _sort_filter(sorts: dict[str, tuple[str, tuple[str, ...]]]) -> django_filters.ChoiceFilter:
    return django_filters.ChoiceFilter(
        label="Sort",
        choices=[(key, label) for key, (label, _) in sorts.items()],
        method=lambda queryset, name, value: queryset.order_by(*sorts[value][1]),
        empty_label=None,
    )


class _ListFilter(django_filters.FilterSet):
    """Applies the default sort and hides archived rows when the request names neither."""

    SORTS: dict[str, tuple[str, tuple[str, ...]]] = {}

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        data = data.copy() if data is not None else {}
        data.setdefault("sort", next(iter(self.SORTS)))
        data.setdefault("archived", "")
        super().__init__(data, *args, **kwargs)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("archived"):
            queryset = _archived(queryset, "archived", "")
        return queryset

    @property
    def form(self) -> Any:
        form = super().form
        # Its own ids: the models page also has the register form, with fields of these names.
        form.auto_id = "filter-%s"
        return form

    @property
    def active(self) -> bool:
        """Whether the list is narrowed (the empty state then says "no match", not "none")."""
        cleaned = getattr(self.form, "cleaned_data", {})
        return any(cleaned.get(k) for k in self.filters if k != "sort")


class DeploymentFilter(_ListFilter):
    SORTS = st.DEPLOYMENT_SORTS

    name = django_filters.CharFilter(
        label="Search", lookup_expr="icontains", help_text="Deployments whose name has this text."
    )
    status = django_filters.ChoiceFilter(
        label="Status", choices=st.CHOICES, empty_label="Any status"
    )
    model = django_filters.CharFilter(
        field_name="model_version__model__name", label="Model", help_text="A model's exact name."
    )
    job = django_filters.ChoiceFilter(
        label="Job",
        field_name="model_version__model__job",
        choices=st.JOB_CHOICES,
        empty_label="Any job",
    )
    archived = django_filters.ChoiceFilter(
        label="Archived", choices=ARCHIVED_CHOICES, method=_archived, empty_label="Hide archived"
    )
    sort = _sort_filter(st.DEPLOYMENT_SORTS)

    class Meta:
        model = Deployment
        fields: list[str] = []


class ModelFilter(_ListFilter):
    SORTS = st.MODEL_SORTS

    name = django_filters.CharFilter(
        label="Search", lookup_expr="icontains", help_text="Models whose name has this text."
    )
    job = django_filters.ChoiceFilter(label="Job", choices=st.JOB_CHOICES, empty_label="Any job")
    archived = django_filters.ChoiceFilter(
        label="Archived", choices=ARCHIVED_CHOICES, method=_archived, empty_label="Hide archived"
    )
    sort = _sort_filter(st.MODEL_SORTS)

    class Meta:
        model = RegisteredModel
        fields: list[str] = []
