"""Aliases: movable names ("champion", "staging") for one version of a model each.

Wherever a version is asked for by number, an alias may be given instead; `find_version`
resolves either, at the moment of the request (a deployment made by alias stays on the version
it got; moving the alias later does not roll it). Setting, moving and removing an alias are
audited on the model.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import constants as st
from deployments.models import ModelAlias, ModelVersion, RegisteredModel, RegistryEvent
from deployments.registry.metadata import MetadataError, check_label

_NUMBER = re.compile(r"[0-9]+")
_MAX_VERSION = 2**31 - 1


class VersionNotFound(LookupError):
    """No version of the model has this number or alias; the message says what exists."""


def could_be_alias(text: str) -> bool:
    """Whether looking `text` up can find an alias (a long text or a NUL never can, and the
    database may refuse to compare them)."""
    return len(text) <= st.LABEL_MAX_LENGTH and "\x00" not in text


def aliases_of(version: ModelVersion) -> list[str]:
    return sorted(a.name for a in version.aliases.all())


def alias_map(model: RegisteredModel) -> dict[int, list[str]]:
    """Version pk -> its aliases, sorted, for a list of versions in one query."""
    found: dict[int, list[str]] = {}
    for alias in ModelAlias.objects.filter(model=model).order_by("name"):
        found.setdefault(alias.version_id, []).append(alias.name)
    return found


def find_version(model: RegisteredModel, ref: int | str) -> ModelVersion:
    """The version `ref` names: a number (1, "1", "v1") or an alias ("champion")."""
    text = str(ref).strip()
    number = text[1:] if text[:1] in ("v", "V") else text
    if _NUMBER.fullmatch(number):
        # Beyond the column's range nothing can match (and the database would refuse it).
        number = number.lstrip("0") or "0"
        found = len(number) <= 10 and int(number) <= _MAX_VERSION
        version = model.versions.filter(version=int(number)).first() if found else None
        if version is None:
            raise VersionNotFound(f"{model.name} has no version {number[:20]}{_known(model)}")
        return version
    alias = None
    if could_be_alias(text):
        alias = ModelAlias.objects.select_related("version").filter(model=model, name=text).first()
    if alias is None:
        raise VersionNotFound(f'{model.name} has no version or alias "{text[:40]}"{_known(model)}')
    return alias.version


def _known(model: RegisteredModel) -> str:
    numbers = list(model.versions.order_by("version").values_list("version", flat=True))
    names = list(ModelAlias.objects.filter(model=model).values_list("name", flat=True))
    if not numbers:
        return ": it has no versions yet, upload one first."
    versions = ", ".join(str(n) for n in numbers[-10:])
    aliases = f"; aliases: {', '.join(names)}" if names else ""
    return f". Use a version number ({versions}){aliases}."


def set_alias(
    model: RegisteredModel, name: str, version: ModelVersion, actor: object | None = None
) -> ModelAlias:
    """Point `name` at `version`, creating the alias or moving it; an audit event says which."""
    label = check_label(name, "alias")
    if version.model_id != model.pk:
        raise MetadataError("version", f"v{version.version} is not a version of {model.name}.")
    user: Any = actor if getattr(actor, "is_authenticated", False) else None
    for _attempt in range(3):
        try:
            with transaction.atomic():
                alias = (
                    ModelAlias.objects.select_for_update()
                    .select_related("version")
                    .filter(model=model, name=label)
                    .first()
                )
                if alias is None:
                    alias = ModelAlias.objects.create(
                        model=model, name=label, version=version, updated_by=user
                    )
                    message = f"{label} -> v{version.version}"
                    RegistryEvent.add(model, "alias-set", message, actor)
                    return alias
                if alias.version_id == version.pk:
                    return alias
                before = alias.version.version
                alias.version = version
                alias.updated_by = user
                alias.updated_at = timezone.now()
                alias.save(update_fields=["version", "updated_by", "updated_at"])
                message = f"{label} moved v{before} -> v{version.version}"
                RegistryEvent.add(model, "alias-move", message, actor)
                return alias
        except IntegrityError:
            continue  # another request created it meanwhile: move it instead
    raise MetadataError("alias", f'The alias "{label}" changed meanwhile; try again.')


def remove_alias(model: RegisteredModel, name: str, actor: object | None = None) -> bool:
    """Remove an alias; False when it did not exist (removing is idempotent)."""
    if not could_be_alias(name):
        return False
    with transaction.atomic():
        alias = (
            ModelAlias.objects.select_for_update()
            .select_related("version")
            .filter(model=model, name=name)
            .first()
        )
        if alias is None:
            return False
        alias.delete()
        RegistryEvent.add(
            model, "alias-remove", f"{name} removed (was v{alias.version.version})", actor
        )
    return True
