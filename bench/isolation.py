"""What bubblewrap costs: validation and serving cold start of a small model, in one run, and
the validation time of a large (about 100 MB) random forest.

`.venv/bin/python bench/isolation.py [ROUNDS]`: with an iris LogisticRegression (joblib),
ROUNDS times (default 5) each with MODEL_ISOLATION=bwrap and with off, alternating: validate it,
and start a local serving process for it (as the local runtime's supervisor does: on a listening
socket it inherits) until /v2/health/ready answers 200. Then the large forest is validated
ROUNDS times, isolated. Prints medians and ratios. Figures for the README, not a test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
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
from deployments.runtimes.local import listen  # noqa: E402
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
    listener = listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    notify_read, notify_write = os.pipe()
    command, env, cwd = serving_process(config, listener.fileno(), notify_write)
    with (folder / "serving.log").open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(), notify_write),
        )
    os.close(notify_write)
    listener.close()
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
        proc.terminate()
        proc.wait(timeout=60)
        os.close(notify_read)  # open until now: serving writes 'ready' to it


def large_forest(folder: Path) -> Path:
    """A RandomForestClassifier of about 100 MB as joblib (fully grown trees on noise)."""
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(19000, 4)), rng.integers(0, 3, 19000)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(features, labels)
    path = folder / "forest.joblib"
    joblib.dump(forest, path)
    return path


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
    settings.MODEL_ISOLATION = "bwrap"
    forest = large_forest(Path(tempfile.mkdtemp()))
    size = forest.stat().st_size / 1e6
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        validate(forest)
        times.append(time.perf_counter() - started)
    print(
        f"validation of a {size:.0f} MB forest (isolated): median {statistics.median(times):.2f} s"
    )


if __name__ == "__main__":
    main()
