"""Live consoles for the registry tests, one per artifact store, and what their stores hold.

Both run the real processes (gunicorn, a Celery worker); one keeps artifacts in a local folder,
the other in a bucket of gcp-storage-emulator through the real google-cloud-storage client.
Their size and memory limits are small so that each refusal is quick to provoke: 60 MiB per
file and 1.5 GiB of address space per validation. Their validation timeout is generous, so that
no real model's upload races it on a busy machine; the timeout test goes through another web
server of the same console that gives up after IMPATIENT_TIMEOUT_SECONDS, and uploads only an
artifact that never finishes loading. The GCS console trusts one skops type by setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.gcs import GcsEmulator
from tests.support.stack import ConsoleStack

BUCKET = "registry-test"
PREFIX = "artifacts"
MAX_ARTIFACT_BYTES = 60 * 1024**2
VALIDATION_TIMEOUT_SECONDS = 90
IMPATIENT_TIMEOUT_SECONDS = 5
VALIDATION_MEMORY_BYTES = 1536 * 1024**2
TREE_TYPE = "sklearn.tree._tree.Tree"  # a type skops does not trust by default

LIMITS = {
    "MAX_ARTIFACT_BYTES": str(MAX_ARTIFACT_BYTES),
    "VALIDATION_TIMEOUT_SECONDS": str(VALIDATION_TIMEOUT_SECONDS),
    "VALIDATION_MEMORY_BYTES": str(VALIDATION_MEMORY_BYTES),
}


@dataclass
class Registry:
    """A live console and a way to see what its artifact store holds."""

    kind: str
    stack: ConsoleStack
    gcs: GcsEmulator | None = None

    impatient_url: str | None = None

    def client(self, persona: str = "deployer") -> httpx.Client:
        return self.stack.client(persona)

    def impatient_client(self, persona: str = "deployer") -> httpx.Client:
        """A client of the web server whose validation gives up after IMPATIENT_TIMEOUT_SECONDS."""
        if self.impatient_url is None:
            self.impatient_url = self.stack.start_other_web(
                "web-impatient", {"VALIDATION_TIMEOUT_SECONDS": str(IMPATIENT_TIMEOUT_SECONDS)}
            )
        return self.stack.client(persona, self.impatient_url)

    def stored(self, model: str) -> dict[str, bytes]:
        """Every stored artifact of `model`, by its path under the store's root."""
        if self.gcs is None:
            root = self.stack.var_dir / "artifacts"
            return {
                str(p.relative_to(root)): p.read_bytes()
                for p in (root / model).rglob("*")
                if p.is_file()
            }
        blobs = self.gcs.client().list_blobs(BUCKET, prefix=f"{PREFIX}/{model}/")
        return {b.name.removeprefix(f"{PREFIX}/"): b.download_as_bytes() for b in blobs}

    def stored_names(self, model: str) -> list[str]:
        if self.gcs is None:
            return sorted(self.stored(model))
        blobs = self.gcs.client().list_blobs(BUCKET, prefix=f"{PREFIX}/{model}/")
        return sorted(b.name.removeprefix(f"{PREFIX}/") for b in blobs)

    def upload_leftovers(self) -> list[Path]:
        return [p for p in (self.stack.var_dir / "uploads").rglob("*") if p.is_file()]
