"""What people add to a version: notes, tags and the metrics they measured.

The parsers take what a user typed (form text or JSON values) and either return the clean value
or raise `MetadataError` with a sentence naming the field and the fix; the forms and the API
show that sentence as it is.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.db import transaction

from deployments import constants as st
from deployments.json_limits import JSONTooDeep, load_json
from deployments.models import ModelVersion, RegistryEvent
from deployments.names import suggest_name

_LABEL = re.compile(st.LABEL_PATTERN)


class MetadataError(ValueError):
    """Input for notes, tags, aliases or metrics that cannot be used; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_label(text: str, field: str) -> str:
    """`text` as a tag or alias, or MetadataError saying how to spell one."""
    label = text.strip()
    if not label:
        raise MetadataError(field, f"Give a name. {st.LABEL_MESSAGE}")
    if len(label) > st.LABEL_MAX_LENGTH or not _LABEL.match(label):
        hint = suggest_name(label, st.LABEL_MAX_LENGTH)
        example = f' For example "{hint}".' if hint and _LABEL.match(hint) else ""
        raise MetadataError(field, f'"{label[:40]}" cannot be used. {st.LABEL_MESSAGE}{example}')
    return label


def parse_tags(value: Any) -> list[str]:
    """Tags from a list, or from text with commas or one per line; sorted, no duplicates."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: list[Any] = [t for t in re.split(r"[,\n]", value) if t.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise MetadataError("tags", 'Give tags as a list of labels, e.g. ["baseline", "q3"].')
    if any(not isinstance(t, str) for t in items):
        raise MetadataError("tags", 'Give tags as a list of labels, e.g. ["baseline", "q3"].')
    tags = sorted({check_label(t, "tags") for t in items})
    if len(tags) > st.MAX_TAGS:
        raise MetadataError("tags", f"Give at most {st.MAX_TAGS} tags (got {len(tags)}).")
    return tags


def parse_metrics(value: Any) -> dict[str, float | int | str]:
    """Metrics from a JSON object (or its text): a flat object of numbers or short strings."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = load_json(value)
        except (json.JSONDecodeError, JSONTooDeep):
            raise MetadataError(
                "metrics",
                f"Metrics must be a JSON object such as {st.METRICS_EXAMPLE}; this is not "
                "valid JSON.",
            ) from None
    if not isinstance(value, dict):
        raise MetadataError(
            "metrics", f"Metrics must be a JSON object such as {st.METRICS_EXAMPLE}."
        )
    if len(value) > st.MAX_METRICS:
        raise MetadataError("metrics", f"Give at most {st.MAX_METRICS} metrics (got {len(value)}).")
    clean: dict[str, float | int | str] = {}
    for name, metric in value.items():
        if "\x00" in name or (isinstance(metric, str) and "\x00" in metric):
            raise MetadataError("metrics", "Metrics may not contain null characters.")
        if not name.strip() or len(name) > st.MAX_METRIC_NAME_LENGTH:
            raise MetadataError(
                "metrics",
                f"Metric names must be 1 to {st.MAX_METRIC_NAME_LENGTH} characters long.",
            )
        if isinstance(metric, bool) or not isinstance(metric, int | float | str):
            raise MetadataError(
                "metrics",
                f'Metric "{name}" must be a number or a short text, not '
                f"{_json_kind(metric)}; metrics are one flat object such as "
                f"{st.METRICS_EXAMPLE}.",
            )
        if isinstance(metric, float) and not math.isfinite(metric):
            raise MetadataError("metrics", f'Metric "{name}" must be a finite number.')
        if isinstance(metric, str) and len(metric) > st.MAX_METRIC_TEXT_LENGTH:
            raise MetadataError(
                "metrics",
                f'Metric "{name}" is longer than {st.MAX_METRIC_TEXT_LENGTH} characters.',
            )
        clean[name.strip()] = metric
    return clean


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    return "null" if value is None else "that"


def parse_notes(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MetadataError("notes", "Notes must be text.")
    if "\x00" in value:
        raise MetadataError("notes", "Notes may not contain null characters.")
    if len(value) > st.MAX_NOTES_LENGTH:
        raise MetadataError(
            "notes",
            f"Notes may be at most {st.MAX_NOTES_LENGTH} characters long (these are {len(value)}).",
        )
    return value.strip()


def describe_version(
    version: ModelVersion,
    *,
    notes: str | None = None,
    tags: list[str] | None = None,
    actor: object | None = None,
) -> ModelVersion:
    """Change a version's notes and/or tags, recording an audit event for each change."""
    changed = []
    if notes is not None and notes != version.notes:
        version.notes = notes
        changed.append("notes")
    if tags is not None and tags != version.tags:
        before = ", ".join(version.tags) or "none"
        version.tags = tags
        changed.append(f"tags {before} -> {', '.join(tags) or 'none'}")
    if not changed:
        return version
    with transaction.atomic():
        version.save(update_fields=["notes", "tags"])
        RegistryEvent.add(
            version.model, "describe", f"v{version.version}: {'; '.join(changed)}", actor
        )
    return version
