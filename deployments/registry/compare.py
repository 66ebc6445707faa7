"""Two versions of a model side by side: what changed between them, fact by fact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployments.models import ModelVersion
from deployments.registry.aliases import aliases_of


@dataclass(frozen=True)
class Row:
    """One fact of both versions; `same` tells the page whether to highlight it."""

    key: str
    label: str
    a: Any
    b: Any

    @property
    def same(self) -> bool:
        return self.a == self.b

    @property
    def shown(self) -> tuple[str, str]:
        """Both values as a page shows them ("—" for none)."""
        return _shown(self.a), _shown(self.b)


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _facts(v: ModelVersion) -> dict[str, tuple[str, Any]]:
    return {
        "estimator_class": ("Estimator", v.estimator_class or None),
        "model_type": ("Format", v.model_type),
        "n_features": ("Features", v.n_features),
        "feature_names": ("Feature names", v.feature_names or None),
        "classes": ("Classes", v.classes),
        "size": ("Size (bytes)", v.size),
        "sha256": ("sha256", v.sha256),
        "aliases": ("Aliases", aliases_of(v)),
        "tags": ("Tags", v.tags),
        "notes": ("Notes", v.notes),
        "uploaded_by": ("Uploaded by", v.uploaded_by.username if v.uploaded_by else None),
        "created_at": ("Uploaded", v.created_at.strftime("%Y-%m-%d %H:%M UTC")),
    }


def compare_versions(a: ModelVersion, b: ModelVersion) -> list[Row]:
    """The facts, libraries and metrics of `a` and `b`, one row each (a metric or library
    only one version has shows None on the other side)."""
    fa, fb = _facts(a), _facts(b)
    rows = [Row(key, label, fa[key][1], fb[key][1]) for key, (label, _) in fa.items()]
    for lib in sorted(set(a.library_versions) | set(b.library_versions)):
        rows.append(
            Row(f"library:{lib}", lib, a.library_versions.get(lib), b.library_versions.get(lib))
        )
    for name in sorted(set(a.metrics) | set(b.metrics)):
        rows.append(Row(f"metric:{name}", name, a.metrics.get(name), b.metrics.get(name)))
    return rows


def comparison(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """The API's shape: {"a": 1, "b": 2, "same": bool, "rows": [{"key", "a", "b", "same"}]}."""
    rows = compare_versions(a, b)
    return {
        "model": a.model.name,
        "a": a.version,
        "b": b.version,
        "same_artifact": a.sha256 == b.sha256,
        "differences": [r.key for r in rows if not r.same],
        "rows": [
            {"key": r.key, "label": r.label, "a": r.a, "b": r.b, "same": r.same} for r in rows
        ],
    }
