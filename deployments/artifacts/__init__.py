"""Artifact storage: where model files live.

`stores` holds the interface and the local-folder store, `gcs` the Google Cloud Storage store
(the only module that imports google-cloud-storage); `get_store()` picks one from ARTIFACT_STORE.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from deployments.artifacts.stores import ArtifactStore, FileStore, StoreError


def get_store() -> ArtifactStore:
    """The store ARTIFACT_STORE names."""
    url = settings.ARTIFACT_STORE
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
        root.mkdir(parents=True, exist_ok=True)
        return FileStore(root)
    if url.startswith("gs://"):
        from deployments.artifacts.gcs import GCSStore

        return GCSStore.from_url(url, project=settings.GCS_PROJECT or None)
    raise StoreError(
        f"ARTIFACT_STORE={url!r} is not supported (use file://DIR or gs://BUCKET/PREFIX)"
    )
