"""What bubblewrap costs: validation and serving cold start of a small model, in one run.

`.venv/bin/python bench/isolation.py [ROUNDS]`: with an iris LogisticRegression (joblib),
ROUNDS times (default 5) each with MODEL_ISOLATION=bwrap and with off, alternating: validate it,
and start a local serving process for it until /v2/health/ready answers 200. Prints medians and
ratios. A figure for the README, not a test.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("CONSOLE_VAR_DIR", tempfile.mkdtemp(prefix="bench-isolation-"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from deployments.isolation import serving_process  # noqa: E402
from deployments.registry.sandbox import validate_artifact  # noqa: E402
from deployments.runtimes.local import free_port, spawn_detached, stop_process_group  # noqa: E402
from serving.config import ModelSource, ServingConfig, dump_config  # noqa: E402
from tests.support.models import iris_classifier, save  # noqa: E402


def validate(artifact: Path) -> None:
    validate_artifact(
        artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
    )


def cold_start(artifact: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    config = folder / "config.yaml"
    cfg = ServingConfig(
        model_type="joblib",
        job="classification",
        model=ModelSource(method="LOCAL", path=str(artifact)),
        input_size=4,
    )
    config.write_text(dump_config(cfg))
    port = free_port()
    command, env, cwd = serving_process(config, "127.0.0.1", port)
    pid = spawn_detached(command, folder / "serving.log", cwd, env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/v2/health/ready"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"not ready in 120 s: {(folder / 'serving.log').read_text()}")
    finally:
        stop_process_group(pid)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    artifact = save(iris_classifier()[0], Path(tempfile.mkdtemp()) / "iris.joblib", "joblib")
    for name, step in (("validation", validate), ("serving cold start", cold_start)):
        times: dict[str, list[float]] = {"bwrap": [], "off": []}
        for _ in range(rounds):
            for mode, values in times.items():
                settings.MODEL_ISOLATION = mode
                started = time.perf_counter()
                step(artifact)
                values.append(time.perf_counter() - started)
        medians = {mode: statistics.median(values) for mode, values in times.items()}
        for mode, values in times.items():
            print(
                f"{name} {mode:>5}: median {medians[mode]:.3f} s of {[round(v, 3) for v in values]}"
            )
        print(f"{name} ratio bwrap/off: {medians['bwrap'] / medians['off']:.2f}")


if __name__ == "__main__":
    main()
