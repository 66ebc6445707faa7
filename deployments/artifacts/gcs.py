"""Artifacts in Google Cloud Storage, through the official client.

Uploads are resumable, in chunks of GCS_UPLOAD_CHUNK_BYTES, so a large artifact is never held in
memory whole, and they carry `if_generation_match=0`: GCS itself refuses to overwrite a blob.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError

from deployments.artifacts.stores import ArtifactStore, BlobExists, StoreError

if TYPE_CHECKING:
    from google.cloud import storage


@functools.cache
def _client(project: str | None) -> storage.Client:
    # Built lazily, once per process (after gunicorn or Celery forked). With
    # STORAGE_EMULATOR_HOST set the client talks to that emulator, anonymously.
    from google.cloud import storage

    return storage.Client(project=project)


def _why(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class GCSStore(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", project: str | None = None) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.project = project

    @classmethod
    def from_url(cls, url: str, project: str | None = None) -> GCSStore:
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        if not bucket:
            raise StoreError(f"ARTIFACT_STORE={url!r} names no bucket (use gs://BUCKET/PREFIX)")
        return cls(bucket, prefix, project)

    @property
    def bucket(self) -> storage.Bucket:
        return _client(self.project).bucket(self.bucket_name)

    def _blob_name(self, uri: str) -> str:
        head = f"gs://{self.bucket_name}/"
        if not uri.startswith(head):
            raise StoreError(f"{uri} is not in the artifact bucket gs://{self.bucket_name}")
        return uri.removeprefix(head)

    def put(self, local_path: Path, name: str) -> str:
        full = f"{self.prefix}/{name}" if self.prefix else name
        uri = f"gs://{self.bucket_name}/{full}"
        blob = self.bucket.blob(full, chunk_size=settings.GCS_UPLOAD_CHUNK_BYTES)
        try:
            # The precondition below is what keeps artifacts write-once on GCS; this check only
            # covers stores that ignore preconditions (gcp-storage-emulator does).
            if blob.exists():
                raise BlobExists(f"artifact {uri} already exists and is never overwritten")
            blob.upload_from_filename(
                str(local_path),
                content_type="application/octet-stream",
                if_generation_match=0,
                timeout=(10, 300),
            )
        except gexc.PreconditionFailed:
            raise BlobExists(f"artifact {uri} already exists and is never overwritten") from None
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise StoreError(f"could not upload {uri}: {_why(exc)}") from None
        return uri

    def delete(self, uri: str) -> None:
        try:
            self.bucket.blob(self._blob_name(uri)).delete()
        except gexc.NotFound:
            pass
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise StoreError(f"could not delete {uri}: {_why(exc)}") from None

    def exists(self, uri: str) -> bool:
        try:
            return self.bucket.blob(self._blob_name(uri)).exists()
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise StoreError(f"could not look up {uri}: {_why(exc)}") from None

    def serving_source(self, uri: str) -> dict[str, str]:
        blob = self._blob_name(uri)
        source = {"method": "GCS", "bucket_name": self.bucket_name, "blob_dir": blob}
        if self.project:
            source["project_name"] = self.project
        return source
