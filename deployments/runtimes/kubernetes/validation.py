"""Validation on Kubernetes: the sandbox child runs as a Job in the models' namespace.

In the console's pod the child could read what that pod holds (its mounted secrets, the
environment of its parent). Here it runs in a pod of its own, with the serving image: no
service-account token, no secret, no environment of the console, a read-only root and the
artifact on a read-only volume, and a NetworkPolicy that lets it reach nothing in the cluster.
The artifact (and the sample CSV uploaded with it, if any) goes to the store under a
throw-away name first; an init container fetches them with the pod's own identity (workload
identity for GCS) and checks each one's sha256. The child writes its JSON report on stdout,
which the console reads from the pod's log: the same report as the local sandbox's. The Job
and the throw-away blobs are deleted afterwards, whatever happened.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deployments.artifacts.stores import ArtifactStore
from deployments.constants import EXTENSIONS, MAX_SAMPLE_BYTES
from deployments.registry.errors import ArtifactRejected, ValidationUnavailable
from deployments.registry.sandbox_child import child_arguments
from deployments.runtimes.base import RuntimeFailure
from deployments.runtimes.kubernetes import manifests, observe
from deployments.runtimes.kubernetes.client import failure, shared_client

log = logging.getLogger(__name__)

RUN_LABEL = "model-console/validation"  # the run's id, on the Job and its pod
POLICY_NAME = "model-console-validation"
WORK_DIR = "/work"
FETCH_CONTAINER = "fetch"
CHILD_CONTAINER = "validate"
QUARANTINE_PREFIX = "_validation"
# Waiting reasons that mean the pod will not start by itself.
CANNOT_START = observe.HARD_WAITING - {"CrashLoopBackOff"}
LOG_LIMIT_BYTES = 16 * 1024**2
REPORT_FILE = "/tmp/report.json"
SAMPLE_FILE = "sample.csv"  # the sample's throw-away blob, and the file the child reads
# $1: the report file; the rest: the child's command line.
REPORT_SCRIPT = 'out="$1"; shift; "$@" --output "$out"; code=$?; echo; cat "$out"; echo; exit $code'


@dataclass(frozen=True)
class JobSettings:
    namespace: str
    image: str
    timeout_seconds: int
    memory_bytes: int
    max_artifact_bytes: int
    # The pod's identity for reading the artifact (GCS workload identity); its token is not
    # mounted. Give it read access to the throw-away prefix only.
    service_account: str | None = None
    start_seconds: int = 120  # scheduling and pulling the image, before the timeout counts
    owner_label_value: str = "model-console"


def labels(run_id: str, owner_label_value: str = "model-console") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "model-validation",
        "app.kubernetes.io/component": "validation",
        "app.kubernetes.io/part-of": "model-console",
        "app.kubernetes.io/managed-by": "model-console",
        manifests.OWNER_LABEL: owner_label_value,
        RUN_LABEL: run_id,
    }


def job_name(run_id: str) -> str:
    return f"validate-{run_id}"


def artifact_path(model_type: str) -> str:
    return f"{WORK_DIR}/artifact.{EXTENSIONS[model_type]}"


def _security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def build_validation_job(
    run_id: str,
    source: dict[str, Any],
    *,
    model_type: str,
    job: str,
    input_size: int | None,
    trusted_types: list[str],
    settings: JobSettings,
    sample_source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Job that fetches the artifact `source` (a serving config's `model:` block, with its
    sha256), and the sample CSV `sample_source` (a blob named sample.csv) when there is one,
    and runs the sandbox child on them; pure, so it is checked without a cluster."""
    sources = [source] if sample_source is None else [source, sample_source]
    child = [
        "python",
        "-s",
        "-m",
        "deployments.registry.sandbox_child",
        artifact_path(model_type),
        *child_arguments(
            model_type=model_type,
            job=job,
            input_size=input_size,
            memory_bytes=settings.memory_bytes,
            cpu_seconds=settings.timeout_seconds,
            trusted_types=trusted_types,
            sample=f"{WORK_DIR}/{SAMPLE_FILE}" if sample_source is not None else None,
        ),
    ]
    # The report goes to a file, printed on a line of its own once the child has exited: what
    # the artifact printed (buffered, flushed at exit) can then only come before it.
    command = ["sh", "-c", REPORT_SCRIPT, "validate", REPORT_FILE, *child]
    scratch = {"name": "tmp", "mountPath": "/tmp"}
    env = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    threads = [
        {"name": name, "value": "1"}
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    ]
    mib = 1024**2
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": manifests.RUN_AS_USER,
            "runAsGroup": manifests.RUN_AS_USER,
            "fsGroup": manifests.RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            {
                "name": FETCH_CONTAINER,
                "image": settings.image,
                "imagePullPolicy": "IfNotPresent",
                "command": [
                    "python",
                    "-m",
                    "serving.fetch",
                    *(json.dumps(s) for s in sources),
                    WORK_DIR,
                ],
                "env": env,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "securityContext": _security_context(),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}, scratch],
            }
        ],
        "containers": [
            {
                "name": CHILD_CONTAINER,
                "image": settings.image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "env": env + threads,
                # The child limits its own address space to memory_bytes; the container's
                # limit is the kubelet's backstop above it.
                "resources": {
                    "requests": {"cpu": "250m", "memory": f"{settings.memory_bytes // mib}Mi"},
                    "limits": {"cpu": "1", "memory": f"{settings.memory_bytes // mib + 256}Mi"},
                },
                "securityContext": _security_context(),
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [
                    {"name": "work", "mountPath": WORK_DIR, "readOnly": True},
                    scratch,
                ],
            }
        ],
        "volumes": [
            {
                "name": "work",
                "emptyDir": {
                    "sizeLimit": f"{(settings.max_artifact_bytes + MAX_SAMPLE_BYTES) // mib + 64}Mi"
                },
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ],
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    run_labels = labels(run_id, settings.owner_label_value)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run_id),
            "namespace": settings.namespace,
            "labels": run_labels,
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.start_seconds + settings.timeout_seconds,
            # Deleted by the console when done; this is the backstop if the console died.
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": dict(run_labels)}, "spec": pod_spec},
        },
    }


def build_validation_network_policy(
    namespace: str, owner_label_value: str = "model-console"
) -> dict[str, Any]:
    """Validation pods take no connection at all and reach only what fetching the artifact
    needs: DNS, the metadata server and 443 outside the cluster (as serving pods)."""
    policy_labels = labels("policy", owner_label_value)
    del policy_labels[RUN_LABEL]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "namespace": namespace, "labels": policy_labels},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": RUN_LABEL, "operator": "Exists"}]},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": manifests.untrusted_egress(),
        },
    }


def report_from_log(text: str) -> dict[str, Any] | None:
    """The child's report: the last log line that is a JSON object with "ok" (what the
    artifact printed comes before it)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and "ok" in report:
            return report
    return None


class JobValidator:
    """Runs one validation as a Job and waits for its report."""

    def __init__(
        self,
        settings: JobSettings,
        store: ArtifactStore,
        api_client: client.ApiClient | None = None,
        *,
        poll_seconds: float = 1.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.poll_seconds = poll_seconds
        self.request_timeout = request_timeout
        self._api_client = api_client

    @property
    def api_client(self) -> client.ApiClient:
        if self._api_client is None:
            self._api_client = shared_client()
        return self._api_client

    def inspect(
        self,
        path: Path,
        *,
        model_type: str,
        job: str,
        input_size: int | None,
        trusted_types: list[str],
        sample: Path | None = None,
    ) -> dict[str, Any]:
        """The sandbox child's JSON report on `path` (and the sample CSV), as
        `sandbox.inspect_artifact` returns."""
        run_id = secrets.token_hex(6)
        folder = f"{QUARANTINE_PREFIX}/{run_id}"
        uris: list[str] = []
        try:
            source = self._hand_over(path, f"{folder}/artifact.{EXTENSIONS[model_type]}", uris)
            sample_source = (
                self._hand_over(sample, f"{folder}/{SAMPLE_FILE}", uris, "the sample CSV")
                if sample is not None
                else None
            )
            job_object = build_validation_job(
                run_id,
                source,
                model_type=model_type,
                job=job,
                input_size=input_size,
                trusted_types=trusted_types,
                settings=self.settings,
                sample_source=sample_source,
            )
            self._call("ensure the validation NetworkPolicy", self._ensure_policy)
            batch = client.BatchV1Api(self.api_client)
            self._call(
                "create the validation Job",
                batch.create_namespaced_job,
                self.settings.namespace,
                job_object,
            )
            try:
                return self._wait(run_id)
            finally:
                self._delete_job(run_id)
        finally:
            for uri in uris:
                try:
                    self.store.delete(uri)
                except Exception as exc:  # a leftover throw-away blob must not hide the outcome
                    log.warning("could not delete the validation copy %s: %s", uri, exc)

    def _hand_over(
        self, path: Path, name: str, uris: list[str], what: str = "the artifact"
    ) -> dict[str, Any]:
        """Store `path` under the throw-away `name` (its uri appended to `uris`, to delete);
        the source the Job fetches it from, with its sha256."""
        from serving.loading import file_sha256

        try:
            uri = self.store.put(path, name)
        except Exception as exc:
            raise ValidationUnavailable(f"could not hand {what} to validation: {exc}") from exc
        uris.append(uri)
        source = dict(self.store.serving_source(uri))
        if source.get("method") != "GCS":
            raise ValidationUnavailable(
                "validation on Kubernetes reads the artifact from the store: it needs a "
                "gs:// ARTIFACT_STORE"
            )
        source["sha256"] = file_sha256(path)
        return source

    # -- the cluster --------------------------------------------------------------------------

    def _call(self, action: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, _request_timeout=(5, self.request_timeout), **kwargs)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise ValidationUnavailable(f"{failure(action, exc)}") from exc

    def _ensure_policy(self, **kwargs: Any) -> None:
        api = client.NetworkingV1Api(self.api_client)
        wanted = build_validation_network_policy(
            self.settings.namespace, self.settings.owner_label_value
        )
        try:
            live = api.read_namespaced_network_policy(
                POLICY_NAME, self.settings.namespace, **kwargs
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            try:
                # The client sends plain dicts as they are (its stubs only know its model classes).
                api.create_namespaced_network_policy(
                    self.settings.namespace,
                    wanted,  # type: ignore[arg-type]
                    **kwargs,
                )
            except ApiException as conflict:
                if conflict.status != 409:  # another upload created it at the same time
                    raise
            return
        live_spec = self.api_client.sanitize_for_serialization(live.spec)
        if live_spec != wanted["spec"]:
            if live.metadata is not None:
                wanted["metadata"]["resourceVersion"] = live.metadata.resource_version
            api.replace_namespaced_network_policy(
                POLICY_NAME,
                self.settings.namespace,
                wanted,  # type: ignore[arg-type]
                **kwargs,
            )

    def _pod(self, run_id: str) -> dict | None:
        core = client.CoreV1Api(self.api_client)
        answer = self._call(
            "list the validation pod",
            core.list_namespaced_pod,
            self.settings.namespace,
            label_selector=f"{RUN_LABEL}={run_id}",
            _preload_content=False,
        )
        items = json.loads(answer.data).get("items") or []
        return items[0] if items else None

    def _log(self, pod_name: str) -> str:
        core = client.CoreV1Api(self.api_client)
        answer = self._call(
            "read the validation pod's log",
            core.read_namespaced_pod_log,
            pod_name,
            self.settings.namespace,
            container=CHILD_CONTAINER,
            limit_bytes=LOG_LIMIT_BYTES,
            _preload_content=False,
        )
        return answer.data.decode("utf-8", "replace")

    def _delete_job(self, run_id: str) -> None:
        batch = client.BatchV1Api(self.api_client)
        try:
            batch.delete_namespaced_job(
                job_name(run_id),
                self.settings.namespace,
                propagation_policy="Background",  # its pod goes too
                _request_timeout=(5, self.request_timeout),
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            # ttlSecondsAfterFinished and activeDeadlineSeconds are the backstop.
            log.warning("could not delete the validation Job %s: %s", job_name(run_id), exc)

    def _wait(self, run_id: str) -> dict[str, Any]:
        """Follow the pod until the child ended; its report, or why there is none."""
        started_waiting = time.monotonic()
        running_since: float | None = None
        start, timeout = self.settings.start_seconds, self.settings.timeout_seconds
        while True:
            pod = self._pod(run_id)
            outcome = self._outcome(pod) if pod else None
            if outcome is not None:
                return outcome
            now = time.monotonic()
            if running_since is None and pod and _child_state(pod).get("running"):
                running_since = now
            if running_since is not None and now - running_since > timeout + 10:
                raise ArtifactRejected(
                    f"loading the artifact took longer than the validation timeout of {timeout} s "
                    "(VALIDATION_TIMEOUT_SECONDS); it was stopped and the artifact refused"
                )
            if running_since is None and now - started_waiting > start:
                why = _not_started(pod) if pod else "no pod was created for the Job"
                raise ValidationUnavailable(
                    f"the validation pod did not start within {start} s "
                    f"(K8S_VALIDATION_START_SECONDS): {why}"
                )
            time.sleep(self.poll_seconds)

    def _outcome(self, pod: dict) -> dict[str, Any] | None:
        pod_name = pod["metadata"]["name"]
        fetch = _container_status(pod, FETCH_CONTAINER, init=True)
        fetched = (fetch.get("state") or {}).get("terminated") or {}
        if fetched and fetched.get("exitCode") != 0:
            why = observe.error_tail(fetched.get("message") or "") or fetched.get("reason")
            raise ValidationUnavailable(f"the validation pod could not fetch the artifact: {why}")
        waiting = _waiting(pod)
        if waiting.get("reason") in CANNOT_START:
            raise ValidationUnavailable(
                f"the validation pod cannot start: {waiting['reason']}: "
                f"{(waiting.get('message') or '').strip()}".rstrip(": ")
            )
        ended = _child_state(pod).get("terminated")
        if not ended:
            return None
        if ended.get("reason") == "OOMKilled":
            return {"ok": False, "error": "loading the artifact ran out of memory", "memory": True}
        report = report_from_log(self._log(pod_name))
        if report is not None:
            return report
        tail = observe.error_tail(ended.get("message") or "", lines=1)
        raise ArtifactRejected(
            f"loading the artifact exited with code {ended.get('exitCode')} without a report "
            f"{tail}".strip()
        )


def _container_status(pod: dict, name: str, *, init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in (pod.get("status") or {}).get(key) or []:
        if status.get("name") == name:
            return status
    return {}


def _child_state(pod: dict) -> dict:
    return _container_status(pod, CHILD_CONTAINER).get("state") or {}


def _waiting(pod: dict) -> dict:
    for name, init in ((FETCH_CONTAINER, True), (CHILD_CONTAINER, False)):
        waiting = (_container_status(pod, name, init=init).get("state") or {}).get("waiting")
        if waiting:
            return waiting
    return {}


def _not_started(pod: dict) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return f"{condition.get('reason')}: {condition['message'].strip()}"
    waiting = _waiting(pod)
    if waiting:
        return f"{waiting.get('reason')}: {(waiting.get('message') or '').strip()}"
    return f"pod {pod['metadata']['name']} is {(pod.get('status') or {}).get('phase', 'Pending')}"


def inspect_in_job(
    path: Path,
    *,
    model_type: str,
    job: str,
    input_size: int | None,
    trusted_types: list[str],
    sample: Path | None = None,
) -> dict[str, Any]:
    """`sandbox.inspect_artifact` on Kubernetes, configured from the console's settings."""
    from django.conf import settings

    from deployments.artifacts import get_store

    if not settings.ARTIFACT_STORE.startswith("gs://"):
        raise ValidationUnavailable(
            "VALIDATION_RUNTIME=kubernetes reads the artifact from the store: it needs a gs:// "
            f"ARTIFACT_STORE, not {settings.ARTIFACT_STORE}"
        )
    job_settings = JobSettings(
        namespace=settings.K8S_NAMESPACE,
        image=settings.SERVING_IMAGE,
        timeout_seconds=settings.VALIDATION_TIMEOUT_SECONDS,
        memory_bytes=settings.VALIDATION_MEMORY_BYTES,
        max_artifact_bytes=settings.MAX_ARTIFACT_BYTES,
        service_account=settings.K8S_VALIDATION_SERVICE_ACCOUNT or None,
        start_seconds=settings.K8S_VALIDATION_START_SECONDS,
    )
    try:
        return JobValidator(job_settings, get_store()).inspect(
            path,
            model_type=model_type,
            job=job,
            input_size=input_size,
            trusted_types=trusted_types,
            sample=sample,
        )
    except RuntimeFailure as exc:  # no usable Kubernetes configuration, say
        raise ValidationUnavailable(str(exc)) from exc
