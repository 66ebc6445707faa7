"""Fetch, verify and load a model artifact.

Unpickling runs code, so the sha256 check happens before any bytes are unpickled, pickle and
joblib artifacts may import only the globals of serving/allowlist.py (plus those the config
approves), and skops artifacts are loaded with trusted types from the config only, never from
the artifact.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from pathlib import Path

from serving.allowlist import RefusedGlobal, Screen, screened
from serving.config import MODEL_TYPES, ModelSource, ServingConfig


class ArtifactError(Exception):
    """The artifact cannot be fetched, does not match its digest, or cannot be loaded."""


class GlobalRefused(ArtifactError):
    """The artifact imports a global the allowlist refuses; `name` is that global."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def fetch_artifact(source: ModelSource, dest_dir: str | Path) -> Path:
    """Return a local path to the artifact, downloading it from GCS into dest_dir if needed."""
    if source.method == "LOCAL":
        path = Path(source.path or "")
        if not path.is_file():
            raise ArtifactError(f"artifact not found: {path}")
        return path
    return _download_gcs(source, Path(dest_dir))


def _download_gcs(source: ModelSource, dest_dir: Path) -> Path:
    # Imported here: google-cloud-storage is slow to import and only GCS configs need it.
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError
    from google.cloud import storage

    uri = f"gs://{source.bucket_name}/{source.blob_dir}"
    dest = dest_dir / (Path(source.blob_dir or "model").name or "model")
    try:
        # With STORAGE_EMULATOR_HOST set the client talks to the emulator anonymously.
        client = storage.Client(project=source.project_name)
        client.bucket(source.bucket_name).blob(source.blob_dir).download_to_filename(str(dest))
    except gexc.NotFound:
        raise ArtifactError(f"artifact not found: {uri}") from None
    except gexc.GoogleAPIError as exc:
        raise ArtifactError(f"cannot download {uri}: {_one_line(exc)}") from None
    except GoogleAuthError as exc:
        raise ArtifactError(
            f"cannot download {uri}: no usable credentials ({_one_line(exc)})"
        ) from None
    except Exception as exc:  # e.g. no project could be determined, a network error
        raise ArtifactError(
            f"cannot download {uri}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None
    return dest


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Refuse the artifact unless its digest matches; call before loading anything from it."""
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc.strerror or exc}") from None
    if not hmac.compare_digest(actual, expected.strip().lower()):
        raise ArtifactError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}; refusing to load it"
        )


def load_artifact(
    path: str | Path,
    model_type: str,
    trusted_types: list[str] | None = None,
    *,
    screen: Screen | None = None,
    mmap: bool = False,
) -> object:
    """Deserialize an artifact of the given format (pkl, joblib or skops).

    `trusted_types` are skops types, or for pickle and joblib the globals beyond the
    allowlist, that were approved for this artifact. `screen` records the globals a pickle
    imported; `mmap` maps joblib's arrays copy-on-write instead of reading them.
    """
    path = Path(path)
    if model_type not in MODEL_TYPES:
        raise ArtifactError(f"unknown modelType {model_type!r}: expected one of {MODEL_TYPES}")
    if not path.is_file():
        raise ArtifactError(f"artifact not found: {path}")
    if model_type == "skops":
        return _load_skops(path, list(trusted_types or []))
    screen = screen or Screen(trusted_types or [])
    try:
        with screened(screen) as unpickler:
            if model_type == "joblib":
                import joblib

                return joblib.load(path, mmap_mode="c" if mmap else None)
            with open(path, "rb") as fh:
                return unpickler(fh).load()
    except Exception as exc:  # unpickling can raise anything; report it on one line
        refused = _refused(exc)
        if refused is not None:
            raise GlobalRefused(
                f"{model_type} artifact {path} imports {refused}, which is not on the list of "
                "classes and functions a model may load (it could run code); it was refused "
                "before it ran. List it in model.trustedTypes only if you trust it",
                refused.name,
            ) from None
        raise ArtifactError(
            f"cannot load {model_type} artifact {path}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _refused(exc: BaseException | None) -> RefusedGlobal | None:
    """The refusal behind `exc`, even when a library re-raised it as something else."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, RefusedGlobal):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _load_skops(path: Path, trusted: list[str]) -> object:
    import skops.io as sio

    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
    except Exception as exc:
        raise ArtifactError(
            f"cannot load skops artifact {path}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None
    if untrusted:
        raise ArtifactError(
            f"skops artifact {path} contains untrusted types: {', '.join(untrusted)}; "
            "list them in model.trustedTypes only if you trust them"
        )
    try:
        return sio.load(path, trusted=trusted)
    except Exception as exc:
        raise ArtifactError(
            f"cannot load skops artifact {path}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def load_model(cfg: ServingConfig) -> object:
    """Fetch, verify (when a sha256 is configured) and load the configured artifact."""
    # GCS artifacts are downloaded to a scratch folder removed once the model is in memory.
    with tempfile.TemporaryDirectory(prefix="serving-artifact-") as tmp:
        path = fetch_artifact(cfg.model, tmp)
        if cfg.model.sha256:
            verify_sha256(path, cfg.model.sha256)
        return load_artifact(path, cfg.model_type, cfg.model.trusted_types)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__
