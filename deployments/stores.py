"""Kept for existing imports: the stores live in `deployments.artifacts`."""

from deployments.artifacts.stores import (
    EXTENSIONS,
    ArtifactStore,
    BlobExists,
    FileStore,
    PendingPut,
    StoreError,
    blob_name,
    get_store,
)

__all__ = [
    "EXTENSIONS",
    "ArtifactStore",
    "BlobExists",
    "FileStore",
    "PendingPut",
    "StoreError",
    "blob_name",
    "get_store",
]
