"""Runtimes: where serving processes run. `get_runtime()` picks one from DEPLOY_RUNTIME."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from deployments.runtimes.base import Runtime


def kubernetes_options() -> dict[str, Any]:
    """What the Kubernetes objects depend on besides the deployment (also the Helm values'
    export, so an exported deployment matches what the runtime applies)."""
    return {
        "image": settings.SERVING_IMAGE,
        "ingress_host": settings.K8S_INGRESS_HOST or None,
        "ingress_class": settings.K8S_INGRESS_CLASS or None,
        "service_account": settings.K8S_SERVICE_ACCOUNT or None,
        "console_namespace": settings.K8S_CONSOLE_NAMESPACE or None,
        "allow_from_namespaces": settings.K8S_ALLOW_FROM_NAMESPACES,
    }


def get_runtime() -> Runtime:
    if settings.DEPLOY_RUNTIME == "kubernetes":
        from deployments.runtimes.kubernetes import KubernetesRuntime

        return KubernetesRuntime(
            namespace=settings.K8S_NAMESPACE,
            gateway=settings.K8S_GATEWAY or None,
            **kubernetes_options(),
        )
    from deployments.runtimes.local import LocalRuntime

    return LocalRuntime(settings.LOCAL_RUNTIME_DIR, settings.BASE_DIR)
