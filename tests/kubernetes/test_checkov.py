"""checkov on both rendered charts and on the objects the console sends: nothing fails beyond
the listed, explained choices (charts/console/README.md, "Checks left to the installer").

checkov comes from tools/get-checkov.sh (.tools/checkov-venv), which `make test` runs. Outside
CI a missing checkov skips these tests with the command to run; with CI=true the script is
run. It runs without network (inside `bwrap --unshare-net` when bubblewrap works here), so it
needs no API key and downloads nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deployments.runtimes.base import ServingSpec
from deployments.runtimes.kubernetes import manifests, validation
from tests.kubernetes.test_charts import CHARTS, REPO, helm, template, values_args  # noqa: F401
from tests.support.requires import skip_missing

DIGEST = "sha256:" + "ab" * 32
# Failed checks that are the installer's choice, by check id: kinds of object they may fail on.
INSTALLERS_CHOICE = {
    "CKV_K8S_43": "image by digest: set image.digest (SERVING_IMAGE=repo@sha256:...)",
    "CKV_K8S_15": "imagePullPolicy Always: set image.pullPolicy",
}
# Failed checks that are by design, by (check id, kind.namespace.name).
BY_DESIGN = {
    # The worker applies deployments, web starts validation Jobs: each has a token for its own
    # Role in the models' namespace, and they alone.
    ("CKV_K8S_38", "Deployment.console.mc-console-worker"),
    ("CKV_K8S_38", "Deployment.console.mc-console-web"),
}


def _find_checkov() -> str | None:
    for candidate in (
        os.environ.get("CHECKOV"),
        str(REPO / ".tools" / "checkov-venv" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def checkov() -> str:
    found = _find_checkov()
    if found is None and os.environ.get("CI") == "true":
        subprocess.run(["bash", str(REPO / "tools" / "get-checkov.sh")], check=True, timeout=900)
        found = _find_checkov()
        assert found, "tools/get-checkov.sh ran but .tools/checkov-venv/bin/checkov is not there"
    if found is None:
        skip_missing("checkov", "checkov", "bash tools/get-checkov.sh (make test runs it)")
    return found


def _offline_prefix() -> list[str]:
    """bwrap --unshare-net when it works here: proof that checkov needs no network."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return []
    probe = [bwrap, "--dev-bind", "/", "/", "--unshare-net", "true"]
    if subprocess.run(probe, capture_output=True, timeout=30).returncode != 0:
        return []
    return probe[:-1]


def run_checkov(checkov: str, folder: Path) -> list[tuple[str, str]]:
    """(check id, resource) of every failed check on the YAML files in `folder`."""
    result = subprocess.run(
        [
            *_offline_prefix(),
            checkov,
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(folder)},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports and all(r["summary"]["parsing_errors"] == 0 for r in reports), result.stdout
    assert sum(r["summary"]["passed"] for r in reports) > 100  # it did check something
    return [
        (check["check_id"], check["resource"])
        for report in reports
        for check in report["results"]["failed_checks"]
    ]


def _write(folder: Path, name: str, objects: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))


def console_objects(image: str) -> list[dict]:
    """What the console sends: a deployment's objects, a validation Job and its policy."""
    spec = ServingSpec("iris-prod", "iris", 3, "modelType: joblib\n", replicas=2)
    job = validation.build_validation_job(
        "abc123",
        {"method": "GCS", "bucket_name": "b", "blob_dir": "_validation/abc123/artifact.joblib"},
        model_type="joblib",
        job="classification",
        input_size=4,
        trusted_types=[],
        settings=validation.JobSettings(
            namespace="models",
            image=image,
            timeout_seconds=60,
            memory_bytes=2 * 1024**3,
            max_artifact_bytes=2 * 1024**3,
        ),
    )
    return [job, validation.build_validation_network_policy("models")] + manifests.build_objects(
        spec,
        namespace="models",
        image=image,
        ingress_host="models.example.com",
        ingress_class="nginx",
        service_account="model-reader",
        console_namespace="console",
        allow_from_namespaces=["ingress-nginx"],
    )


def render_all(helm: str, folder: Path, *extra: str) -> None:  # noqa: F811
    """Both charts as installed (console and models in their own namespaces)."""
    for files in ([], ["ci/ingress-values.yaml"]):
        objects = template(
            helm, "model-serving", *values_args(files, "model-serving"), *extra, release="iris"
        )
        _write(folder / "serving", f"serving-{len(files)}.yaml", objects)
    objects = template(
        helm,
        "console",
        *values_args(["ci/secrets-values.yaml"], "console"),
        *extra,
        release="mc",
        namespace="console",
    )
    _write(folder / "console", "console.yaml", objects)


def test_charts_and_console_objects_fail_only_the_installers_choices(
    helm: str,  # noqa: F811
    checkov: str,
    tmp_path: Path,
) -> None:
    render_all(helm, tmp_path)
    _write(tmp_path / "runtime", "objects.yaml", console_objects("model-serving:0.1.0"))

    failed = run_checkov(checkov, tmp_path)

    unexplained = [
        (check, resource)
        for check, resource in failed
        if check not in INSTALLERS_CHOICE and (check, resource) not in BY_DESIGN
    ]
    assert unexplained == []
    assert set(BY_DESIGN) <= set(failed)  # still true, so the README's list stays honest


def test_with_a_digest_and_pull_policy_always_only_the_designed_exceptions_are_left(
    helm: str,  # noqa: F811
    checkov: str,
    tmp_path: Path,
) -> None:
    render_all(
        helm, tmp_path, "--set", f"image.digest={DIGEST}", "--set", "image.pullPolicy=Always"
    )

    failed = run_checkov(checkov, tmp_path)

    assert set(failed) == BY_DESIGN


def test_the_readme_lists_every_check_left() -> None:
    readme = (CHARTS / "console" / "README.md").read_text()
    for check in [*INSTALLERS_CHOICE, *(check for check, _ in BY_DESIGN)]:
        assert check in readme
