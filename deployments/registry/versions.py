"""Registering model versions: stream, hash, validate in the sandbox, then store and record.

The order matters: the store may receive the bytes while the sandbox validates them, but
nothing appears in it (no blob, no file) and nothing is recorded until the artifact passed;
a failure after storing removes the blob again, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError, Q

from deployments.artifacts import get_store
from deployments.artifacts.stores import (
    ArtifactStore,
    BlobExists,
    PendingPut,
    blob_name,
    sample_blob_name,
)
from deployments.constants import EMPTY_FILE_MESSAGE, EXTENSIONS, MAX_SAMPLE_BYTES
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.registry.errors import ArtifactRejected, ArtifactTooLarge
from deployments.registry.sandbox import ArtifactReport, feature_count_refusal, validate_artifact
from deployments.registry.upload_handler import too_large_message

log = logging.getLogger(__name__)

MAX_NUMBER_ATTEMPTS = 20


class ApprovalRefused(ArtifactRejected):
    status_code = 403


class VersionInUse(Exception):
    """A version that a deployment serves (or may roll back to) cannot be deleted."""


def _spool(chunks: Iterable[bytes], target: Path) -> tuple[str, int]:
    """Write chunks to `target`, returning sha256 and size; refuse files over the limit."""
    digest = hashlib.sha256()
    size = 0
    limit = settings.MAX_ARTIFACT_BYTES
    with target.open("wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ArtifactTooLarge(too_large_message(limit))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


@contextmanager
def _local_artifact(artifact: Any, model_type: str) -> Iterator[tuple[Path, str, int]]:
    """A local path to the artifact with its sha256 and size, without copying it when the
    upload handler already wrote it to disk and hashed it on the way."""
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        if hasattr(artifact, "temporary_file_path") and getattr(artifact, "sha256", None):
            size = artifact.size
            if size > settings.MAX_ARTIFACT_BYTES:
                raise ArtifactTooLarge(too_large_message(settings.MAX_ARTIFACT_BYTES))
            yield Path(artifact.temporary_file_path()), artifact.sha256, size
            return
        chunks = artifact.chunks() if hasattr(artifact, "chunks") else artifact
        local = Path(tmp) / f"artifact.{EXTENSIONS[model_type]}"
        sha256, size = _spool(chunks, local)
        yield local, sha256, size


def upload_version(
    model: RegisteredModel,
    artifact: Any,
    *,
    model_type: str,
    uploaded_by: Any = None,
    approve_types: Iterable[str] = (),
    notes: str = "",
    tags: Iterable[str] = (),
    metrics: dict[str, Any] | None = None,
    sample: Any = None,
) -> ModelVersion:
    """Validate and register a new version of `model`; raise ArtifactRejected if refused.

    `artifact` is an uploaded file (ideally one from HashingUploadHandler, which is already on
    disk and hashed) or an iterable of byte chunks. `approve_types` are names an admin trusts
    for this upload only (skops types, or pickle and joblib globals beyond serving's
    allowlist); the approval is recorded on the version and serving is told the same names.
    `notes`, `tags` and `metrics` are what the uploader says about it, already checked
    (registry/metadata.py).
    `sample` is an optional CSV (an uploaded file or bytes) of real rows with a header naming
    the columns: the sandbox learns the input schema from it and predicts on its rows instead
    of zeros; it is stored beside the artifact.
    A model registered without an input size takes it from its first version: what the
    artifact knows, else the sample's header (an upload where neither says is refused).
    """
    if model_type not in EXTENSIONS:
        raise ArtifactRejected(
            f"unknown model_type {model_type!r}: use one of {', '.join(EXTENSIONS)}"
        )
    approved = sorted(set(approve_types))
    if approved and not getattr(uploaded_by, "is_superuser", False):
        raise ApprovalRefused(
            "only an admin can approve untrusted skops types or pickle globals (approve_types)"
        )
    configured = set(settings.SKOPS_TRUSTED_TYPES) if model_type == "skops" else set()
    trusted = sorted(configured | set(approved))
    with (
        _local_artifact(artifact, model_type) as (local, sha256, size),
        _local_sample(sample) as sample_path,
    ):
        if size == 0:
            raise ArtifactRejected(EMPTY_FILE_MESSAGE)
        store = get_store()
        first = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        # The store starts receiving the file while the sandbox checks it; it shows nothing
        # until commit(), and abort() leaves no trace.
        started = time.monotonic()
        number, pending = _begin(store, model, local, model_type, first)
        try:
            report = validate_artifact(
                local,
                model_type=model_type,
                job=model.job,
                input_size=model.input_size,
                trusted_types=trusted,
                sample=sample_path,
            )
        except BaseException:
            pending.abort()
            raise
        validated = time.monotonic()
        # Serving is told to trust exactly what this artifact needs, all of it trusted above.
        needed = report.untrusted_types
        approver = uploaded_by if any(t not in configured for t in needed) else None
        fields = {
            "model_type": model_type,
            "sha256": sha256,
            "size": size,
            "estimator_class": report.estimator_class,
            "n_features": report.n_features,
            "feature_names": report.feature_names,
            "classes": report.classes,
            "library_versions": report.library_versions,
            "warnings": report.warnings,
            "imported_globals": report.globals,
            "trusted_types": needed,
            "types_approved_by": approver,
            "uploaded_by": uploaded_by if getattr(uploaded_by, "pk", None) else None,
            "notes": notes,
            "tags": sorted(set(tags)),
            "metrics": metrics or {},
            "input_schema": report.input_schema,
            "example_rows": report.sample_rows,
        }
        for _attempt in range(MAX_NUMBER_ATTEMPTS):
            try:
                uri = pending.commit()
            except BlobExists:
                # Another upload took this number at the last moment: store under the next.
                number, pending = _begin(store, model, local, model_type, number + 1)
                continue
            sample_uri = ""
            try:
                if sample_path is not None:
                    sample_uri = _store_sample(store, model, number, sample_path)
                with transaction.atomic():
                    _take_input_size(model, report)
                    version = ModelVersion.objects.create(
                        model=model, version=number, uri=uri, sample_uri=sample_uri, **fields
                    )
                model.input_size = model.input_size or report.input_size
                log.info(
                    "registered %s (%d bytes): validated in %.1f s, stored %.1f s later",
                    version,
                    size,
                    validated - started,
                    time.monotonic() - validated,
                )
                return version
            except IntegrityError:
                _delete_blobs(store, uri, sample_uri)
            except BaseException:
                _delete_blobs(store, uri, sample_uri)
                raise
            number, pending = _begin(store, model, local, model_type, number + 1)
        pending.abort()
        raise ArtifactRejected("could not assign a version number; please retry the upload")


def _take_input_size(model: RegisteredModel, report: ArtifactReport) -> None:
    """A model without an input size takes the width the artifact was checked with; a
    concurrent first upload of another width may have set it first."""
    if model.input_size is not None:
        return
    taken = model.learn_input_size(report.input_size)
    if taken != report.input_size:
        raise ArtifactRejected(
            feature_count_refusal(report.estimator_class, report.input_size, taken)
        )


@contextmanager
def _local_sample(sample: Any) -> Iterator[Path | None]:
    """The uploaded sample CSV as a local file (None without one); refused over the limit."""
    if sample is None:
        yield None
        return
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        target = Path(tmp) / "sample.csv"
        if isinstance(sample, bytes):
            chunks: Iterable[bytes] = [sample]
        else:
            chunks = sample.chunks() if hasattr(sample, "chunks") else sample
        size = 0
        with target.open("wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_SAMPLE_BYTES:
                    raise ArtifactRejected(
                        f"the sample CSV is larger than {MAX_SAMPLE_BYTES // 1024**2} MiB: "
                        "send a few hundred representative rows"
                    )
                out.write(chunk)
        if size == 0:
            raise ArtifactRejected("the sample CSV is empty: send a header and a few rows")
        yield target


def _store_sample(store: ArtifactStore, model: RegisteredModel, number: int, path: Path) -> str:
    """Store the sample beside the artifact just committed under `number` (so the name is free:
    a failed upload removes both)."""
    return store.put(path, sample_blob_name(model.name, number))


def _delete_blobs(store: ArtifactStore, *uris: str) -> None:
    for uri in uris:
        if uri:
            store.delete(uri)


def _begin(
    store: ArtifactStore, model: RegisteredModel, local: Path, model_type: str, number: int
) -> tuple[int, PendingPut]:
    """Start storing the artifact as version `number`, or the first free number after it."""
    for _attempt in range(MAX_NUMBER_ATTEMPTS):
        try:
            return number, store.begin(local, blob_name(model.name, number, model_type))
        except BlobExists:
            # A concurrent upload (or a blob left by a failed delete) holds this number.
            number += 1
    raise ArtifactRejected("could not assign a version number; please retry the upload")


def delete_version(version: ModelVersion) -> None:
    """Delete a version and its blob; VersionInUse while any deployment refers to it.

    The blob is removed inside the transaction, so a store failure keeps the row (and the
    caller can retry) instead of leaving a version whose artifact is gone.
    """
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        users = sorted(
            Deployment.objects.filter(
                Q(model_version=locked) | Q(previous_version=locked)
            ).values_list("name", flat=True)
        )
        if users:
            raise VersionInUse(_in_use_message(locked, users))
        try:
            locked.delete()
        except ProtectedError:  # a deployment was created since the check above
            raise VersionInUse(_in_use_message(locked, ["a new deployment"])) from None
        get_store().delete(locked.uri)
        if locked.sample_uri:
            get_store().delete(locked.sample_uri)
    log.info("deleted %s and its artifact %s", locked, locked.uri)


def _in_use_message(version: ModelVersion, users: list[str]) -> str:
    return (
        f"{version} is used by deployment(s) {', '.join(users)} (serving it or able to roll "
        "back to it); delete or change those deployments first"
    )
