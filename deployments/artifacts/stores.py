"""Where artifacts live. Selected by ARTIFACT_STORE: `file://DIR` (default) or `gs://BUCKET/PREFIX`.

Blob layout: PREFIX/MODEL/VERSION/model.EXT, written once and never overwritten.
"""

from __future__ import annotations

import os
import shutil
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from deployments.constants import EXTENSIONS


class StoreError(Exception):
    """The store cannot be reached or refused the operation; the message names the blob."""


class BlobExists(StoreError):
    """Blobs are written once: this name is taken."""


def blob_name(model_name: str, version: int, model_type: str) -> str:
    return f"{model_name}/{version}/model.{EXTENSIONS[model_type]}"


def sample_blob_name(model_name: str, version: int) -> str:
    """The version's sample CSV, beside its artifact."""
    return f"{model_name}/{version}/sample.csv"


class PendingPut(ABC):
    """An artifact on its way into the store: `commit()` makes it appear there (and returns its
    uri), `abort()` makes sure it never does."""

    @abstractmethod
    def commit(self) -> str: ...

    @abstractmethod
    def abort(self) -> None: ...


class _DeferredPut(PendingPut):
    def __init__(self, store: ArtifactStore, local_path: Path, name: str) -> None:
        self.store, self.local_path, self.name = store, local_path, name

    def commit(self) -> str:
        return self.store.put(self.local_path, self.name)

    def abort(self) -> None:
        pass


class ArtifactStore(ABC):
    @abstractmethod
    def put(self, local_path: Path, name: str) -> str:
        """Copy a validated local file to the store under `name`; returns its uri.

        Raises BlobExists if `name` is already taken: artifacts are never overwritten.
        """

    def begin(self, local_path: Path, name: str) -> PendingPut:
        """Start storing `local_path` as `name` while the caller still checks it; nothing is
        visible in the store before `commit()`. By default all the work happens in commit."""
        return _DeferredPut(self, local_path, name)

    @abstractmethod
    def delete(self, uri: str) -> None:
        """Remove a stored artifact; absent is success."""

    @abstractmethod
    def exists(self, uri: str) -> bool: ...

    @abstractmethod
    def read(self, uri: str) -> bytes:
        """A small stored blob's bytes (a version's sample or drift reference; artifacts are
        read by serving)."""

    @abstractmethod
    def serving_source(self, uri: str) -> dict[str, str]:
        """The `model:` block of a serving config (serving/config.py) that reads this artifact."""


class FileStore(ArtifactStore):
    """A local folder; the default, and what the local runtime's serving processes read."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, uri: str) -> Path:
        path = Path(uri.removeprefix("file://")).resolve()
        if self.root.resolve() not in path.parents:
            raise StoreError(f"{uri} is outside the artifact store {self.root}")
        return path

    def put(self, local_path: Path, name: str) -> str:
        target = (self.root / name).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            shutil.copyfile(local_path, partial)
            # link() fails if the name exists, so two racing uploads cannot both win it and a
            # stored artifact is never replaced (rename() would silently overwrite it).
            os.link(partial, target)
        except FileExistsError:
            raise BlobExists(f"artifact {name} already exists and is never overwritten") from None
        finally:
            partial.unlink(missing_ok=True)
        return f"file://{target}"

    def delete(self, uri: str) -> None:
        self._path(uri).unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def read(self, uri: str) -> bytes:
        try:
            return self._path(uri).read_bytes()
        except OSError as exc:
            raise StoreError(f"could not read {uri}: {exc.strerror or exc}") from None

    def serving_source(self, uri: str) -> dict[str, str]:
        return {"method": "LOCAL", "path": str(self._path(uri))}
