"""Registering model versions: stream, hash, validate in the sandbox, then store and record.

The order matters: nothing is stored or recorded until the artifact has passed validation, and
a failure after storing removes the blob again, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from deployments.models import ModelVersion, RegisteredModel
from deployments.sandbox import ArtifactRejected, validate_artifact
from deployments.stores import EXTENSIONS, BlobExists, blob_name, get_store


def _spool(chunks: Iterable[bytes], target: Path) -> tuple[str, int]:
    """Write chunks to `target`, returning sha256 and size; refuse files over the limit."""
    digest = hashlib.sha256()
    size = 0
    limit = settings.MAX_ARTIFACT_BYTES
    with target.open("wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ArtifactRejected(
                    f"the file is larger than the limit of {limit} bytes (MAX_ARTIFACT_BYTES)"
                )
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise ArtifactRejected("the file is empty")
    return digest.hexdigest(), size


def upload_version(
    model: RegisteredModel,
    chunks: Iterable[bytes],
    *,
    model_type: str,
    uploaded_by: object | None = None,
) -> ModelVersion:
    """Validate and register a new version of `model`; raise ArtifactRejected if refused."""
    if model_type not in EXTENSIONS:
        raise ArtifactRejected(
            f"unknown model_type {model_type!r}: use one of {', '.join(EXTENSIONS)}"
        )
    trusted = list(settings.SKOPS_TRUSTED_TYPES) if model_type == "skops" else []
    store = get_store()
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        local = Path(tmp) / f"artifact.{EXTENSIONS[model_type]}"
        sha256, size = _spool(chunks, local)
        report = validate_artifact(
            local,
            model_type=model_type,
            job=model.job,
            input_size=model.input_size,
            trusted_types=trusted,
        )
        number = model.versions.aggregate(n=Max("version"))["n"] or 0
        for _attempt in range(20):
            number += 1
            try:
                uri = store.put(local, blob_name(model.name, number, model_type))
            except BlobExists:
                # A concurrent upload (or a deleted version) holds this number: take the next.
                continue
            try:
                with transaction.atomic():
                    return ModelVersion.objects.create(
                        model=model,
                        version=number,
                        model_type=model_type,
                        uri=uri,
                        sha256=sha256,
                        size=size,
                        estimator_class=report.estimator_class,
                        n_features=report.n_features,
                        feature_names=report.feature_names,
                        classes=report.classes,
                        library_versions=report.library_versions,
                        warnings=report.warnings,
                        trusted_types=trusted,
                        uploaded_by=uploaded_by if getattr(uploaded_by, "pk", None) else None,
                    )
            except IntegrityError:
                store.delete(uri)
            except BaseException:
                store.delete(uri)
                raise
    raise ArtifactRejected("could not assign a version number; please retry the upload")
