"""The Kubernetes API client: configuration, and API errors as `RuntimeFailure`.

With `runtime.py`, the only module that imports `kubernetes`. Errors are permanent when
retrying cannot help (400, 401, 403, 404, 422) and transient otherwise (timeouts, 409, 429, 5xx).
"""

from __future__ import annotations

import json
import os

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from deployments.runtimes.base import RuntimeFailure

PERMANENT_STATUSES = {400, 401, 403, 404, 405, 410, 422}


def load_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """The API client: in-cluster config inside a pod, else a kubeconfig ($KUBECONFIG, ~/.kube)."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # $KUBECONFIG is read now, not when the kubernetes package was imported.
            config.load_kube_config(
                config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
                context=context,
                client_configuration=configuration,
            )
    except (ConfigException, OSError) as exc:
        raise RuntimeFailure(f"No usable Kubernetes configuration: {exc}", permanent=True) from exc
    return client.ApiClient(configuration)


_SHARED_CLIENT: list[client.ApiClient] = []


def shared_client() -> client.ApiClient:
    """load_client() once per process (Celery forks first, so each child builds its own)."""
    if not _SHARED_CLIENT:
        _SHARED_CLIENT.append(load_client())
    return _SHARED_CLIENT[0]


def api_message(exc: ApiException) -> str:
    """The API server's own message (its Status object), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or exc.body or "no message")


def failure(action: str, exc: Exception) -> RuntimeFailure:
    if isinstance(exc, ApiException):
        status = exc.status or 0
        return RuntimeFailure(
            f"Kubernetes API refused to {action}: {status} {api_message(exc)}",
            permanent=status in PERMANENT_STATUSES,
        )
    return RuntimeFailure(
        f"Kubernetes API unreachable while trying to {action}: {exc}", permanent=False
    )
