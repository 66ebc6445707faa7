"""Artifacts in Google Cloud Storage, through the official client.

Uploads use a resumable session opened by the client with `if_generation_match=0`, so GCS itself
refuses to overwrite a blob. The file is then streamed to the session in one request, a MiB at a
time, instead of the client's chunked uploads, which hold a whole chunk (100 MiB by default) in
memory and cost a request each. If the connection breaks, the upload resumes from the offset
GCS reports as persisted. The CRC32C GCS computes is compared with the file's.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import requests
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


STREAM_BLOCK = 1024 * 1024
UPLOAD_ATTEMPTS = 4


class _FileBody:
    """A request body read from `path` a block at a time, from `offset` on; its length is
    known, so it goes as one request with Content-Length (not chunked encoding)."""

    def __init__(self, path: Path, offset: int, size: int) -> None:
        self.path, self.offset, self.size = path, offset, size

    def __len__(self) -> int:
        return self.size - self.offset

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            while block := f.read(STREAM_BLOCK):
                yield block


def _persisted(http: requests.Session, session: str, size: int) -> int:
    """How many bytes GCS holds for this session (asks with an empty `bytes */SIZE` PUT)."""
    answer = http.put(
        session, data=b"", headers={"Content-Range": f"bytes */{size}"}, timeout=(10, 60)
    )
    if answer.status_code in (200, 201):
        return size
    match = re.match(r"bytes=0-(\d+)", answer.headers.get("Range", ""))
    return int(match.group(1)) + 1 if match else 0


def _stream_to_session(session: str, path: Path, size: int, uri: str) -> dict[str, Any]:
    # The session URL is itself the credential for these requests (as GCS documents).
    offset = 0
    with requests.Session() as http:
        for _attempt in range(UPLOAD_ATTEMPTS):
            headers = {"Content-Type": "application/octet-stream"}
            if offset:
                headers["Content-Range"] = f"bytes {offset}-{size - 1}/{size}"
            try:
                answer = http.put(
                    session, data=_FileBody(path, offset, size), headers=headers, timeout=(10, 600)
                )
            except requests.ConnectionError:
                offset = _persisted(http, session, size)
                continue
            if answer.status_code in (200, 201):
                return answer.json()
            if answer.status_code == 412:
                raise BlobExists(f"artifact {uri} already exists and is never overwritten")
            if answer.status_code == 308 or answer.status_code == 429 or answer.status_code >= 500:
                offset = _persisted(http, session, size)
                continue
            raise StoreError(
                f"could not upload {uri}: HTTP {answer.status_code} {answer.text[:200]}"
            )
    raise StoreError(f"could not upload {uri}: gave up after {UPLOAD_ATTEMPTS} attempts")


def _file_crc32c(path: Path) -> str:
    """Base64 of the big-endian CRC32C, as GCS reports it in `crc32c`."""
    checksum = google_crc32c.Checksum()
    with path.open("rb") as f:
        while block := f.read(STREAM_BLOCK):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode()


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
        blob = self.bucket.blob(full)
        try:
            size = local_path.stat().st_size
            session = blob.create_resumable_upload_session(
                content_type="application/octet-stream",
                size=size,
                if_generation_match=0,
                timeout=30,
            )
            stored = _stream_to_session(session, local_path, size, uri)
        except gexc.PreconditionFailed:
            raise BlobExists(f"artifact {uri} already exists and is never overwritten") from None
        except (gexc.GoogleAPIError, GoogleAuthError, OSError, requests.RequestException) as exc:
            raise StoreError(f"could not upload {uri}: {_why(exc)}") from None
        expected = _file_crc32c(local_path)
        if stored.get("crc32c") and stored["crc32c"] != expected:
            self.delete(uri)
            raise StoreError(f"{uri} arrived corrupted (CRC32C mismatch); it was removed")
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
