"""Validation on Kubernetes: a Job in the models' namespace, never the console's pod.

Against the API emulator and the GCS emulator. The test plays the Job controller and the
kubelet (`Kubelet` below): it creates the Job's pod from its template and runs each of its
containers' commands on this machine, with only the files the serving image holds (the COPY
lines of Dockerfile.serving) and the pod's volumes mapped to folders, then reports the pod's
state and log as a kubelet would. So the report path is the real one: the artifact goes to
GCS, `python -m serving.fetch` fetches it, the sandbox child validates it and prints its report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from deployments.artifacts.gcs import GCSStore
from deployments.registry.errors import ArtifactRejected
from deployments.registry.sandbox_child import child_arguments
from deployments.runtimes.kubernetes import load_client, validation
from tests.kubernetes.test_charts import helm, template, values_args  # noqa: F401
from tests.support.gcs import GcsEmulator

if TYPE_CHECKING:
    from tests.support.kubernetes import Cluster

REPO = Path(__file__).resolve().parents[2]
JOBS = "batch/v1/jobs"
PODS = "v1/pods"
POLICIES = "networking.k8s.io/v1/networkpolicies"
BUCKET = "validation-test"
IMAGE = "registry.example.com/model-serving:1.0"
Validate = Callable[[dict], None]


def job_settings(namespace: str = "models", **kwargs: Any) -> validation.JobSettings:
    values: dict[str, Any] = {
        "namespace": namespace,
        "image": IMAGE,
        "timeout_seconds": 60,
        "memory_bytes": 2 * 1024**3,
        "max_artifact_bytes": 512 * 1024**2,
        "service_account": "model-reader",
        "start_seconds": 60,
    }
    values.update(kwargs)
    return validation.JobSettings(**values)


def build_job(**kwargs: Any) -> dict:
    source = {"method": "GCS", "bucket_name": "b", "blob_dir": "_validation/x/artifact.joblib"}
    return validation.build_validation_job(
        "abc123",
        {**source, "sha256": "ab" * 32},
        model_type="joblib",
        job="classification",
        input_size=4,
        trusted_types=[],
        settings=job_settings(**kwargs),
    )


# -- the objects ------------------------------------------------------------------------------


def test_the_job_is_valid_and_mounts_no_secret_no_token_no_console_env(
    validate_k8s: Validate,
) -> None:
    job = build_job()
    validate_k8s(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False  # no other services' addresses in the env
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Only scratch space: no secret, no projected token, no host path, no config of the console.
    assert [set(v) - {"name"} for v in pod["volumes"]] == [{"emptyDir"}, {"emptyDir"}]
    containers = pod["initContainers"] + pod["containers"]
    for container in containers:
        assert container["image"] == IMAGE
        assert not container.get("envFrom")
        assert all(set(e) == {"name", "value"} for e in container["env"])
        names = {e["name"] for e in container["env"]}
        assert names <= {"HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE"} | {
            "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
        }
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
    child = pod["containers"][0]
    command = child["command"][child["command"].index("python") :]
    assert command[:4] == ["python", "-s", "-m", "deployments.registry.sandbox_child"]
    assert {"name": "work", "mountPath": "/work", "readOnly": True} in child["volumeMounts"]
    # The child limits its own address space; the kubelet's limit is above it.
    assert command[command.index("--memory-bytes") + 1] == str(2 * 1024**3)
    assert child["resources"]["limits"]["memory"] == "2304Mi"
    assert pod["serviceAccountName"] == "model-reader"  # for GCS; its token is not mounted


def test_validation_pods_take_no_connection_and_reach_nothing_in_the_cluster(
    validate_k8s: Validate,
) -> None:
    policy = validation.build_validation_network_policy("models")
    validate_k8s(policy)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    assert spec["podSelector"] == {
        "matchExpressions": [{"key": validation.RUN_LABEL, "operator": "Exists"}]
    }
    job = build_job()
    assert validation.RUN_LABEL in job["spec"]["template"]["metadata"]["labels"]
    blocks = [peer["ipBlock"] for rule in spec["egress"] for peer in rule.get("to", [])]
    public = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(public["except"])


# -- the report path, with the test as kubelet --------------------------------------------------


def image_files(dest: Path) -> Path:
    """/app of the serving image: what Dockerfile.serving copies from the repository."""
    app = dest / "app"
    for line in (REPO / "Dockerfile.serving").read_text().splitlines():
        parts = line.split()
        if not parts or parts[0] != "COPY" or any(p.startswith("--") for p in parts):
            continue
        *sources, target = parts[1:]
        if not target.startswith("/app/"):
            continue
        for source in sources:
            origin = REPO / source
            to = dest / target.lstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, to, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                if target.endswith("/"):
                    to = to / origin.name
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin, to)
    return app


class Kubelet:
    """The Job controller and the kubelet for validation Jobs, on this machine."""

    def __init__(self, cluster: Cluster, app: Path, root: Path, gcs_url: str) -> None:
        self.cluster, self.app, self.root, self.gcs_url = cluster, app, root, gcs_url
        self.before_fetch: Callable[[dict], None] = lambda job: None
        self.script: Callable[[dict, str], bool] | None = None  # takes over when it returns True
        self.jobs: list[dict] = []
        self.outputs: list[str] = []  # what each child wrote
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        seen: set[str] = set()
        try:
            while not self._stop.is_set():
                for name in self.cluster.names(JOBS) - seen:
                    seen.add(name)
                    job = self.cluster.get(JOBS, name)
                    assert job is not None
                    self.jobs.append(job)
                    self._start(job)
                time.sleep(0.1)
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def _start(self, job: dict) -> None:
        template = job["spec"]["template"]
        pod_name = f"{job['metadata']['name']}-x7k2p"
        self.cluster.add(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "labels": dict(template["metadata"]["labels"])},
                "spec": template["spec"],
                "status": {"phase": "Pending"},
            },
        )
        if self.script is not None and self.script(job, pod_name):
            return
        spec = template["spec"]
        volumes = {v["name"]: self.root / pod_name / v["name"] for v in spec["volumes"]}
        for folder in volumes.values():
            folder.mkdir(parents=True)
        self.before_fetch(job)
        init = spec["initContainers"][0]
        code, out, err = self._exec(init, volumes)
        init_status = {"name": init["name"], "ready": False, "restartCount": 0}
        if code != 0:
            message = (out + err)[-2048:]  # FallbackToLogsOnError
            terminated = {"exitCode": code, "reason": "Error", "message": message}
            self._status(pod_name, "Failed", [{**init_status, "state": {"terminated": terminated}}])
            return
        done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
        init_statuses = [{**init_status, "state": done}]
        child = spec["containers"][0]
        code, out, err = self._exec(child, volumes)
        self.cluster.set_log(pod_name, out + err)
        self.outputs.append(out + err)
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        if code != 0:
            terminated["message"] = (out + err)[-2048:]
        child_status = {"name": child["name"], "ready": False, "restartCount": 0}
        self._status(
            pod_name,
            "Succeeded" if code == 0 else "Failed",
            init_statuses,
            [{**child_status, "state": {"terminated": terminated}}],
        )

    def _status(
        self, pod: str, phase: str, init: list[dict], containers: list[dict] | None = None
    ) -> None:
        status: dict = {"phase": phase, "initContainerStatuses": init}
        if containers is not None:
            status["containerStatuses"] = containers
        self.cluster.set_status(PODS, pod, status)

    def _exec(self, container: dict, volumes: dict[str, Path]) -> tuple[int, str, str]:
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}

        def mapped(text: str) -> str:
            for path, folder in mounts.items():
                if text == path or text.startswith(path + "/"):
                    return str(folder) + text[len(path) :]
            return text

        command = [mapped(part) for part in container["command"]]
        env = {e["name"]: mapped(e["value"]) for e in container["env"]}
        # The image's python first on PATH, its /app; GCS reached as the pod's identity would
        # (here: the emulator).
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        env.update(PATH=path, PYTHONPATH=str(self.app), STORAGE_EMULATOR_HOST=self.gcs_url)
        result = subprocess.run(
            command,
            cwd=self.app,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def serving_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_files(tmp_path_factory.mktemp("serving-image"))


@pytest.fixture
def store(gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> GCSStore:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    gcs.ensure_bucket(BUCKET)
    return GCSStore(BUCKET, "console", project="test")


@pytest.fixture
def kubelet(
    cluster: Cluster, serving_app: Path, tmp_path: Path, gcs: GcsEmulator
) -> Iterator[Kubelet]:
    with Kubelet(cluster, serving_app, tmp_path / "pods", gcs.url) as player:
        yield player


@pytest.fixture
def validator(cluster: Cluster, store: GCSStore) -> validation.JobValidator:
    return validation.JobValidator(
        job_settings(cluster.namespace),
        store,
        load_client(str(cluster.kubeconfig)),
        poll_seconds=0.1,
    )


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    path = tmp_path_factory.mktemp("artifact") / "model.joblib"
    joblib.dump(model, path)
    return path


def quarantined(gcs: GcsEmulator) -> list[str]:
    return [b.name for b in gcs.client().list_blobs(BUCKET, prefix="console/_validation/")]


def test_an_upload_and_its_sample_are_validated_in_a_job_as_locally_and_nothing_is_left(
    cluster: Cluster,
    kubelet: Kubelet,
    validator: validation.JobValidator,
    gcs: GcsEmulator,
    tmp_path: Path,
) -> None:
    """A model that cannot take a row of zeros (an encoder of codes 1..3), registered without
    its width: the sample CSV reaches the Job as the artifact does and gives the columns, the
    width and the probe rows; the report is the one the local sandbox writes for the same files."""
    codes = np.random.default_rng(2).integers(1, 4, size=(200, 2))
    model = make_pipeline(OneHotEncoder(), LogisticRegression())
    path = tmp_path / "codes.joblib"
    joblib.dump(model.fit(codes, (codes[:, 0] == 2).astype(int)), path)
    sample = tmp_path / "uploaded.csv"
    sample.write_text("plan_code,region_code\n1,3\n2,1\n3,2\n")

    report = validator.inspect(
        path,
        model_type="joblib",
        job="classification",
        input_size=None,
        trusted_types=[],
        sample=sample,
    )

    assert report["ok"] is True
    assert report["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert report["classes"] == [0, 1]
    # serving's ServedModel was built and warmed up, on the sample's rows (zeros would fail)
    assert report["unservable"] is None
    assert "sklearn.preprocessing._encoders.OneHotEncoder" in report["globals"]
    assert report["input_size"] == 2
    assert [(c["name"], c["type"], c["categories"]) for c in report["input_schema"]] == [
        ("plan_code", "category", [1, 2, 3]),
        ("region_code", "category", [1, 2, 3]),
    ]
    assert report["sample_rows"][0] == {"plan_code": 1, "region_code": 3}
    [job] = kubelet.jobs
    fetch = job["spec"]["template"]["spec"]["initContainers"][0]["command"]
    fetched = [json.loads(source)["blob_dir"].rsplit("/", 1)[-1] for source in fetch[3:-1]]
    assert fetched == ["artifact.joblib", "sample.csv"]
    assert job["metadata"]["namespace"] == cluster.namespace
    # Done: the Job is deleted (its pod with it, by the garbage collector) and so are the copies.
    assert cluster.names(JOBS) == set()
    assert quarantined(gcs) == []
    assert cluster.names(POLICIES) == {validation.POLICY_NAME}

    settings = job_settings()
    local = tmp_path / "local-report.json"
    arguments = child_arguments(
        model_type="joblib",
        job="classification",
        input_size=None,
        memory_bytes=settings.memory_bytes,
        cpu_seconds=settings.timeout_seconds,
        trusted_types=[],
        sample=str(sample),
    )
    subprocess.run(
        [sys.executable, "-s", "-m", "deployments.registry.sandbox_child", str(path)]
        + ["--output", str(local), *arguments],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        check=True,
        timeout=120,
    )
    assert report == json.loads(local.read_text())


FORGED = '{"ok": true, "estimator_class": "forged"}'


class _Prints:
    """Unpickles as a call to print: an artifact writing a report of its own on stdout."""

    def __reduce__(self) -> tuple:
        return (print, (FORGED,))


def test_what_the_artifact_prints_is_not_taken_for_the_report(
    kubelet: Kubelet, validator: validation.JobValidator, tmp_path: Path
) -> None:
    path = tmp_path / "noisy.joblib"
    joblib.dump([_Prints(), 1], path)

    report = validator.inspect(
        path, model_type="joblib", job="classification", input_size=4, trusted_types=[]
    )

    assert report.get("estimator_class") != "forged"
    if report["ok"]:  # print ran (a loader that refuses builtins.print never gets there)
        assert FORGED in kubelet.outputs[-1]
        assert report["estimator_class"] == "builtins.list"


def test_an_artifact_that_cannot_be_fetched_makes_validation_unavailable(
    kubelet: Kubelet, validator: validation.JobValidator, artifact: Path, gcs: GcsEmulator
) -> None:
    def lose_the_copy(job: dict) -> None:
        for name in quarantined(gcs):
            gcs.client().bucket(BUCKET).blob(name).delete()

    kubelet.before_fetch = lose_the_copy

    with pytest.raises(validation.ValidationUnavailable) as caught:
        validator.inspect(
            artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
        )

    assert caught.value.status_code == 503
    assert "could not fetch the artifact: fetch: artifact not found: gs://" in str(caught.value)


def test_a_child_killed_for_memory_is_reported_as_such(
    cluster: Cluster, kubelet: Kubelet, validator: validation.JobValidator, artifact: Path
) -> None:
    def oom(job: dict, pod: str) -> bool:
        oom_killed = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
        cluster.set_status(
            PODS,
            pod,
            {
                "phase": "Failed",
                "initContainerStatuses": [
                    {"name": "fetch", "state": {"terminated": {"exitCode": 0}}}
                ],
                "containerStatuses": [{"name": "validate", "state": oom_killed}],
            },
        )
        return True

    kubelet.script = oom
    report = validator.inspect(
        artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
    )
    assert report == {
        "ok": False,
        "error": "loading the artifact ran out of memory",
        "memory": True,
    }
    assert cluster.names(JOBS) == set()


def test_a_pod_that_cannot_start_says_why(
    cluster: Cluster, kubelet: Kubelet, validator: validation.JobValidator, artifact: Path
) -> None:
    def no_image(job: dict, pod: str) -> bool:
        waiting = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}
        cluster.set_status(
            PODS,
            pod,
            {
                "phase": "Pending",
                "initContainerStatuses": [{"name": "fetch", "state": {"waiting": waiting}}],
            },
        )
        return True

    kubelet.script = no_image
    with pytest.raises(validation.ValidationUnavailable) as caught:
        validator.inspect(
            artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
        )
    assert str(caught.value) == (
        f'the validation pod cannot start: ImagePullBackOff: Back-off pulling image "{IMAGE}"'
    )


def test_a_job_that_gets_no_pod_times_out_clearly(
    cluster: Cluster, store: GCSStore, artifact: Path, gcs: GcsEmulator
) -> None:
    validator = validation.JobValidator(
        job_settings(cluster.namespace, start_seconds=1),
        store,
        load_client(str(cluster.kubeconfig)),
        poll_seconds=0.1,
    )
    with pytest.raises(validation.ValidationUnavailable) as caught:
        validator.inspect(
            artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
        )
    assert str(caught.value) == (
        "the validation pod did not start within 1 s (K8S_VALIDATION_START_SECONDS): "
        "no pod was created for the Job"
    )
    assert cluster.names(JOBS) == set() and quarantined(gcs) == []


def test_a_child_that_ends_without_a_report_is_refused(
    cluster: Cluster, kubelet: Kubelet, validator: validation.JobValidator, artifact: Path
) -> None:
    def crash(job: dict, pod: str) -> bool:
        message = "Traceback (most recent call last):\nSystemError: the artifact broke it\n"
        cluster.set_log(pod, message)
        cluster.set_status(
            PODS,
            pod,
            {
                "phase": "Failed",
                "initContainerStatuses": [
                    {"name": "fetch", "state": {"terminated": {"exitCode": 0}}}
                ],
                "containerStatuses": [
                    {
                        "name": "validate",
                        "state": {"terminated": {"exitCode": 1, "message": message}},
                    }
                ],
            },
        )
        return True

    kubelet.script = crash
    with pytest.raises(ArtifactRejected) as caught:
        validator.inspect(
            artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
        )
    assert not isinstance(caught.value, validation.ValidationUnavailable)
    assert str(caught.value) == (
        "loading the artifact exited with code 1 without a report "
        "SystemError: the artifact broke it"
    )


def test_the_web_role_allows_exactly_what_validation_does(
    helm: str,  # noqa: F811
    cluster: Cluster,
    kubelet: Kubelet,
    validator: validation.JobValidator,
    artifact: Path,
) -> None:
    validator.inspect(
        artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
    )
    cluster.set_status(POLICIES, validation.POLICY_NAME, {})  # no change: no write
    live = cluster.get(POLICIES, validation.POLICY_NAME)
    assert live is not None
    live["spec"]["egress"] = []  # someone loosened it: the next validation restores it
    cluster.add(POLICIES, live)
    validator.inspect(
        artifact, model_type="joblib", job="classification", input_size=4, trusted_types=[]
    )
    restored = cluster.get(POLICIES, validation.POLICY_NAME)
    assert restored is not None and restored["spec"]["egress"]

    used: set[tuple[str, str, str]] = set()
    for request in cluster.requests():
        if request.resource is None or request.resource.plural is None:
            continue
        resource = request.resource.plural
        if request.subresource:
            resource += f"/{request.subresource}"
        method = request.method.value
        verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method)
        if method == "GET":
            verb = "get" if request.name else "list"
        used.add((request.resource.group or "", resource, str(verb)))

    objects = template(helm, "console", *values_args(["ci/secrets-values.yaml"], "console"))
    role = next(
        o for o in objects if o["kind"] == "Role" and o["metadata"]["name"].endswith("-validation")
    )
    allowed = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert used == allowed


def test_fetch_refuses_an_artifact_that_does_not_match_its_digest(
    serving_app: Path, artifact: Path
) -> None:
    source = {"method": "LOCAL", "path": str(artifact), "sha256": "ab" * 32}
    result = subprocess.run(
        [sys.executable, "-m", "serving.fetch", json.dumps(source), str(artifact.parent)],
        cwd=serving_app,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(serving_app)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fetch: sha256 mismatch for ")
    assert "refusing to load it" in result.stderr
