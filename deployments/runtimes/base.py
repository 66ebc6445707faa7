"""What every runtime offers the tasks: apply a serving spec, remove it, observe it.

Runtimes take plain data (`ServingSpec`), never ORM objects, so they can be tested without a
database and the tasks stay the only place that turns records into specs and observations into
status changes.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from deployments.constants import DEFAULT_RESOURCES


@dataclass(frozen=True)
class Resources:
    """Kubernetes-style quantities; the local runtime ignores them."""

    cpu_request: str = DEFAULT_RESOURCES["cpu_request"]
    memory_request: str = DEFAULT_RESOURCES["memory_request"]
    cpu_limit: str | None = DEFAULT_RESOURCES["cpu_limit"]
    memory_limit: str | None = DEFAULT_RESOURCES["memory_limit"]


@dataclass(frozen=True)
class ServingSpec:
    """Everything a runtime needs to run one deployment of one model version."""

    name: str  # the deployment's name, a DNS-1123 label
    model_name: str
    version: int
    config_yaml: str  # the serving config file, rendered by serving.config.dump_config
    replicas: int = 1
    resources: Resources = field(default_factory=Resources)

    @property
    def config_checksum(self) -> str:
        return hashlib.sha256(self.config_yaml.encode()).hexdigest()


@dataclass
class Observation:
    """What the runtime sees now. `status` uses the deployment statuses of constants.py."""

    status: str  # deploying | running | degraded | failed | stopped
    reason: str = ""
    replicas_ready: int = 0
    endpoint: str = ""
    events: list[str] = field(default_factory=list)  # noteworthy facts to record as events


class RuntimeFailure(Exception):
    """A runtime call failed. `permanent` tells the task whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Runtime(ABC):
    """A place where serving processes run (this machine, or a Kubernetes namespace)."""

    name: str
    # True when the periodic sync should re-apply every deployment (repairing drift such as a
    # deleted Service). The local runtime leaves a dead process failed, with its log, instead.
    reapply_on_sync: bool = False

    @abstractmethod
    def apply(self, spec: ServingSpec) -> str:
        """Create or update the deployment to match `spec`; idempotent. Returns the endpoint."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Stop and delete everything of deployment `name`; idempotent (absent is success)."""

    @abstractmethod
    def observe(self, spec: ServingSpec) -> Observation:
        """Report the current state of the deployment described by `spec`."""

    @abstractmethod
    def list_deployed(self) -> set[str]:
        """Names of the deployments this runtime currently holds (found by our own labels)."""

    def logs(self, name: str, tail: int) -> list[str]:
        """The last `tail` lines the serving processes of deployment `name` wrote."""
        raise NotImplementedError(f"the {self.name} runtime does not show logs")
