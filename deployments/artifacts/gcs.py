"""Artifacts in Google Cloud Storage, through the official client.

Uploads use a resumable session opened by the client with `if_generation_match=0`, so GCS itself
refuses to overwrite a blob. The file is then streamed to the session a MiB at a time, instead
of through the client's chunked uploads, which hold a whole chunk (100 MiB by default) in memory
and cost a request each. All but the last bytes go while the artifact is being validated; the
last bytes, which make GCS create the blob, only once it passed (see PendingUpload). If the
connection breaks, the upload resumes from the offset GCS reports as persisted. The CRC32C GCS
computes is compared with the file's.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import GoogleAuthError

from deployments.artifacts.stores import ArtifactStore, BlobExists, PendingPut, StoreError

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
QUANTUM = 256 * 1024  # every part of a resumable upload but the last is a multiple of this
UPLOAD_ATTEMPTS = 4


class _FileBody:
    """Bytes [start, end) of `path`, read a block at a time; the length is known, so it goes as
    one request with Content-Length. Stops early (failing the request) once `cancelled`."""

    def __init__(self, path: Path, start: int, end: int, cancelled: threading.Event) -> None:
        self.path, self.start, self.end, self.cancelled = path, start, end, cancelled

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self) -> Iterator[memoryview]:
        # One buffer, refilled: the sender writes each block out before asking for the next,
        # and a fresh 1 MiB object per block would make the allocator keep growing the heap.
        buffer = memoryview(bytearray(STREAM_BLOCK))
        with self.path.open("rb", buffering=0) as f:
            f.seek(self.start)
            left = self.end - self.start
            while left > 0:
                if self.cancelled.is_set():
                    raise StoreError("upload cancelled")
                n = f.readinto(buffer[: min(STREAM_BLOCK, left)])
                if not n:
                    raise StoreError(f"{self.path} shrank while it was being uploaded")
                left -= n
                yield buffer[:n]


class PendingUpload:
    """A resumable upload of one file to one blob name, in two parts.

    Everything but the last (at most 256 KiB + 1) bytes is sent at once, in the background,
    while the artifact is validated. GCS creates the blob only when the last byte arrives, in
    `commit()`; `abort()` cancels the session, and no blob ever existed.
    """

    def __init__(self, blob: storage.Blob, path: Path, uri: str) -> None:
        self.path, self.uri = path, uri
        self.size = path.stat().st_size
        # The precondition is checked now and again when the last byte arrives.
        self.session = blob.create_resumable_upload_session(
            content_type="application/octet-stream",
            size=self.size,
            if_generation_match=0,
            timeout=30,
        )
        self.http = requests.Session()
        self.cancelled = threading.Event()
        self.split = ((self.size - 1) // QUANTUM) * QUANTUM if self.size else 0
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="gcs-upload")
        self.head = self.pool.submit(self._send, 0, self.split) if self.split else None

    def commit(self) -> dict[str, Any]:
        """Send the last bytes; returns the blob's resource as GCS reports it."""
        try:
            if self.head is not None:
                self.head.result()
            return self._send(self.split, self.size)
        finally:
            self._close()

    def abort(self) -> None:
        self.cancelled.set()
        if self.head is not None:
            with contextlib.suppress(Exception):
                self.head.result()
        # Cancelling the session is tidiness only: an unfinished session never becomes a blob.
        with contextlib.suppress(requests.RequestException):
            self.http.delete(self.session, timeout=(10, 30))
        self._close()

    def _close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()

    def _persisted(self) -> int:
        """How many bytes GCS holds (asks with an empty `bytes */SIZE` PUT)."""
        answer = self.http.put(
            self.session,
            data=b"",
            headers={"Content-Range": f"bytes */{self.size}"},
            timeout=(10, 60),
        )
        if answer.status_code in (200, 201):
            return self.size
        match = re.match(r"bytes=0-(\d+)", answer.headers.get("Range", ""))
        return int(match.group(1)) + 1 if match else 0

    def _send(self, start: int, end: int) -> dict[str, Any]:
        """Send bytes [start, end), resuming from what GCS persisted if a request fails."""
        # The session URL is itself the credential for these requests (as GCS documents).
        offset = start
        for _attempt in range(UPLOAD_ATTEMPTS):
            last = max(end - 1, offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {offset}-{last}/{self.size}"
                if end > offset
                else f"bytes */{self.size}",
            }
            body = _FileBody(self.path, offset, end, self.cancelled)
            try:
                # requests' hints say bytes or str; it sends any bytes-like block (memoryviews).
                answer = self.http.put(self.session, data=body, headers=headers, timeout=(10, 600))  # type: ignore[arg-type]
            except requests.ConnectionError:
                if self.cancelled.is_set():
                    raise StoreError(f"upload of {self.uri} cancelled") from None
                offset = self._persisted()
                continue
            if answer.status_code in (200, 201):
                return answer.json()
            if answer.status_code == 412:
                raise BlobExists(f"artifact {self.uri} already exists and is never overwritten")
            if answer.status_code == 308 or answer.status_code == 429 or answer.status_code >= 500:
                offset = self._persisted()
                if answer.status_code == 308 and offset >= end and end < self.size:
                    return {}  # this part is complete; the session waits for the rest
                continue
            raise StoreError(
                f"could not upload {self.uri}: HTTP {answer.status_code} {answer.text[:200]}"
            )
        raise StoreError(f"could not upload {self.uri}: gave up after {UPLOAD_ATTEMPTS} attempts")


def _file_crc32c(path: Path) -> str:
    """Base64 of the big-endian CRC32C, as GCS reports it in `crc32c`."""
    checksum = google_crc32c.Checksum()
    with path.open("rb") as f:
        while block := f.read(64 * 1024):  # small blocks: the allocator recycles them
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode()


class _GCSPendingPut(PendingPut):
    def __init__(self, store: GCSStore, upload: PendingUpload) -> None:
        self.store, self.upload = store, upload

    def commit(self) -> str:
        uri = self.upload.uri
        try:
            stored = self.upload.commit()
        except (StoreError, BlobExists):
            raise
        except (gexc.GoogleAPIError, GoogleAuthError, OSError, requests.RequestException) as exc:
            raise StoreError(f"could not upload {uri}: {_why(exc)}") from None
        if stored.get("crc32c") and stored["crc32c"] != _file_crc32c(self.upload.path):
            self.store.delete(uri)
            raise StoreError(f"{uri} arrived corrupted (CRC32C mismatch); it was removed")
        return uri

    def abort(self) -> None:
        self.upload.abort()


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

    def begin(self, local_path: Path, name: str) -> PendingPut:
        full = f"{self.prefix}/{name}" if self.prefix else name
        uri = f"gs://{self.bucket_name}/{full}"
        try:
            upload = PendingUpload(self.bucket.blob(full), local_path, uri)
        except gexc.PreconditionFailed:
            raise BlobExists(f"artifact {uri} already exists and is never overwritten") from None
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise StoreError(f"could not upload {uri}: {_why(exc)}") from None
        return _GCSPendingPut(self, upload)

    def put(self, local_path: Path, name: str) -> str:
        return self.begin(local_path, name).commit()

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

    def read(self, uri: str) -> bytes:
        try:
            return bytes(self.bucket.blob(self._blob_name(uri)).download_as_bytes())
        except (gexc.GoogleAPIError, GoogleAuthError, OSError) as exc:
            raise StoreError(f"could not read {uri}: {_why(exc)}") from None

    def serving_source(self, uri: str) -> dict[str, str]:
        blob = self._blob_name(uri)
        source = {"method": "GCS", "bucket_name": self.bucket_name, "blob_dir": blob}
        if self.project:
            source["project_name"] = self.project
        return source
