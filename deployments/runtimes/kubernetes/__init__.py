"""The Kubernetes runtime: `runtime` talks to the API (through `client`), `manifests` builds
the objects as plain data, `observe` reads pod and Deployment states as readable reasons."""

from deployments.runtimes.kubernetes.client import load_client
from deployments.runtimes.kubernetes.runtime import KubernetesRuntime

__all__ = ["KubernetesRuntime", "load_client"]
