"""A 1 GiB artifact uploaded through the console's API to GCS, against a raw upload of the same
file with google-cloud-storage to the same emulator, side by side in one run.

    .venv/bin/python bench/upload.py [--mib 1024]

Starts gcp-storage-emulator and a console (gunicorn + Celery worker, as the tests do) whose
ARTIFACT_STORE is a bucket of that emulator. Prints the time of each upload, their ratio
(target: at most 1.5), and the peak RSS growth of the console's web processes during the API
upload (target: at most 64 MiB), sampled every 20 ms and checked against the kernel's VmHWM.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.gcs import GcsEmulator  # noqa: E402
from tests.support.models import iris_classifier  # noqa: E402
from tests.support.stack import ConsoleStack  # noqa: E402

MIB = 1024**2
BUCKET = "bench"


def web_pids(stack: ConsoleStack) -> list[int]:
    """The gunicorn master and its workers."""
    master = stack.procs["web"].pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def uses_gcs_client(pid: int) -> bool:
    """Whether the process has loaded google-cloud-storage (its crc32c extension shows)."""
    return "google_crc32c" in Path(f"/proc/{pid}/maps").read_text()


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Samples the RSS of each process every 20 ms; keeps each one's peak."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: status_kib(pid, "VmRSS") for pid in pids}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], status_kib(pid, "VmRSS"))
            time.sleep(0.02)

    def stop(self) -> dict[int, int]:
        self.stop_event.set()
        self.join()
        return self.peak


def make_artifact(path: Path, size: int) -> str:
    """An iris classifier padded with `size` random bytes; returns its sha256."""
    estimator, _ = iris_classifier()
    estimator.padding_ = np.frombuffer(np.random.default_rng(0).bytes(size), dtype=np.uint8)
    joblib.dump(estimator, path)
    del estimator
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def upload(client, model: str, path: Path):
    with path.open("rb") as f:
        return client.post(
            f"/api/models/{model}/versions/",
            files={"file": (path.name, f)},
            data={"model_type": "joblib"},
            timeout=1800,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="artifact size in MiB")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        work = Path(tmp)
        artifact = work / "big.joblib"
        print(f"building a {args.mib} MiB artifact ...", flush=True)
        sha256 = make_artifact(artifact, args.mib * MIB)
        size = artifact.stat().st_size

        emulator = GcsEmulator(work / "emulator.log").start()
        stack = ConsoleStack(
            work / "console",
            {
                "ARTIFACT_STORE": f"gs://{BUCKET}/models",
                "GCS_PROJECT": "bench",
                "STORAGE_EMULATOR_HOST": emulator.url,
                # The sandbox loads the whole artifact: give it room for 1 GiB of padding.
                "VALIDATION_MEMORY_BYTES": str(size + 3 * 1024 * MIB),
                "VALIDATION_TIMEOUT_SECONDS": "600",
            },
        )
        try:
            emulator.ensure_bucket(BUCKET, project="bench")
            stack.start()
            client = stack.client("deployer")
            created = client.post(
                "/api/models/", json={"name": "big", "job": "classification", "input_size": 4}
            )
            assert created.status_code == 201, created.text

            # Warm-up: a web worker imports the GCS client (~40 MiB) on its first upload.
            # Small uploads, two at a time, until every worker has, so the measurement sees
            # what the big file costs, not a cold worker's imports.
            small = work / "small.joblib"
            joblib.dump(iris_classifier()[0], small)
            workers = web_pids(stack)[1:]
            with ThreadPoolExecutor(2) as pool:
                for _ in range(15):
                    answers = pool.map(
                        lambda _: upload(stack.client("deployer"), "big", small), [1, 2]
                    )
                    assert all(a.status_code == 201 for a in answers)
                    if all(uses_gcs_client(pid) for pid in workers):
                        break
                else:
                    print("warning: a web worker never took a warm-up upload", flush=True)

            print("raw google-cloud-storage upload ...", flush=True)
            raw_blob = emulator.client("bench").bucket(BUCKET).blob("raw/model.joblib")
            started = time.monotonic()
            raw_blob.upload_from_filename(str(artifact))
            raw_seconds = time.monotonic() - started

            pids = web_pids(stack)
            before = {pid: status_kib(pid, "VmRSS") for pid in pids}
            hwm_before = {pid: status_kib(pid, "VmHWM") for pid in pids}
            sampler = RssSampler(pids)
            sampler.start()
            print("upload through the console API ...", flush=True)
            started = time.monotonic()
            response = upload(client, "big", artifact)
            api_seconds = time.monotonic() - started
            peak = sampler.stop()
            hwm_after = {pid: status_kib(pid, "VmHWM") for pid in pids}

            assert response.status_code == 201, response.text
            version = response.json()
            assert version["sha256"] == sha256, "sha256 differs"
            assert version["size"] == size
            stored = (
                emulator.client("bench")
                .bucket(BUCKET)
                .get_blob(version["uri"].removeprefix(f"gs://{BUCKET}/"))
            )
            assert stored is not None and stored.size == size

            growth_mib = max(peak[p] - before[p] for p in pids) / 1024
            hwm_growth_mib = max(hwm_after[p] - max(before[p], hwm_before[p]) for p in pids) / 1024
            ratio = api_seconds / raw_seconds
            print()
            print(f"artifact: {size / MIB:.0f} MiB, sha256 {sha256[:16]}... (matches)")
            print(f"raw google-cloud-storage upload: {raw_seconds:6.1f} s")
            print(f"console API upload (validated):  {api_seconds:6.1f} s")
            print(f"time ratio API / raw:            {ratio:6.2f}  (target <= 1.5)")
            print(
                f"peak RSS growth, web process:    {growth_mib:6.1f} MiB sampled, "
                f"{max(hwm_growth_mib, 0):.1f} MiB over the previous VmHWM  (target <= 64)"
            )
            print(f"RSS growth / artifact size:      {growth_mib / (size / MIB):6.3f}")
            for line in stack.log("web").splitlines():
                if "registered big v" in line and f"({size} bytes)" in line:
                    print("console log:                    ", line.split("registered ", 1)[1])
            ok = ratio <= 1.5 and growth_mib <= 64
            print("PASS" if ok else "OVER TARGET")
            return 0 if ok else 1
        finally:
            stack.stop()
            emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
