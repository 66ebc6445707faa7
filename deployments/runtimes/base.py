"""What every runtime offers the tasks: apply a serving spec, remove it, observe it.

Runtimes take plain data (`ServingSpec`), never ORM objects, so they can be tested without a
database and the tasks stay the only place that turns records into specs and observations into
status changes.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from deployments.constants import DEFAULT_RESOURCES
from deployments.scrub import redact_secret_patterns


@dataclass(frozen=True)
class Resources:
    """Kubernetes-style quantities; the local runtime ignores them."""

    cpu_request: str = DEFAULT_RESOURCES["cpu_request"]
    memory_request: str = DEFAULT_RESOURCES["memory_request"]
    cpu_limit: str | None = DEFAULT_RESOURCES["cpu_limit"]
    memory_limit: str | None = DEFAULT_RESOURCES["memory_limit"]


@dataclass(frozen=True)
class TrafficTarget:
    """A version beside the primary: a canary on `weight` percent of the requests, or a
    shadow that gets a copy of each (weight 0, answers discarded)."""

    role: str  # canary | shadow (constants.TRAFFIC_ROLES)
    version: int
    config_yaml: str
    weight: int = 0

    @property
    def config_checksum(self) -> str:
        return hashlib.sha256(self.config_yaml.encode()).hexdigest()


@dataclass(frozen=True)
class Autoscaling:
    """Replica bounds and the CPU utilisation (percent of the request) an autoscaler targets."""

    min_replicas: int
    max_replicas: int
    target_cpu: int


@dataclass(frozen=True)
class ServingSpec:
    """Everything a runtime needs to run one deployment of one model version."""

    name: str  # the deployment's name, a DNS-1123 label
    model_name: str
    version: int
    config_yaml: str  # the serving config file, rendered by serving.config.dump_config
    replicas: int = 1
    resources: Resources = field(default_factory=Resources)
    # The port the console reserved for this deployment (local runtime): its endpoint for life.
    port: int | None = None
    # Versions beside the primary (canary, shadow); empty: the primary answers everything.
    traffic: tuple[TrafficTarget, ...] = ()
    autoscaling: Autoscaling | None = None

    @property
    def canary_weight(self) -> int:
        return sum(t.weight for t in self.traffic if t.role == "canary")

    @property
    def traffic_key(self) -> str:
        """Names the traffic as applied ('' without canary or shadow), to tell whether a
        runtime has caught up with it."""
        return ";".join(
            f"{t.role}:{t.version}:{t.weight}:{t.config_checksum[:12]}" for t in self.traffic
        )

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
    restarts: int = 0  # times a serving process was restarted after it died


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

    # Runtimes whose endpoint is a port on this machine: the console reserves one for each
    # deployment (Deployment.port, passed as ServingSpec.port) and keeps it for life.
    reserves_ports: bool = False

    def pick_port(self, taken: set[int]) -> int:
        """A port for a new deployment, none of `taken` (the ports the console has given)."""
        raise NotImplementedError(f"the {self.name} runtime reserves no ports")

    def revive(self, spec: ServingSpec) -> str:
        """Start again what should serve `spec` but died outside the runtime's own care (on
        this machine, a killed supervisor); the event to record, or "" when nothing was done."""
        return ""

    def grpc_endpoint(self, spec: ServingSpec) -> str:
        """Where the deployment answers the Open Inference Protocol over gRPC ("host:port");
        empty where it does not."""
        return ""

    def version_endpoints(self, spec: ServingSpec) -> dict[int, str]:
        """Base URLs of each version's own serving processes when the deployment has a canary
        or shadow (where their /metrics are read), by version number; empty if unknown."""
        return {}

    def shadow_dropped(self, spec: ServingSpec) -> int | None:
        """How many copies of requests meant for the deployment's shadow were dropped since it
        joined (it falls behind at saturation); None where the runtime does not count them."""
        return None

    def logs(self, name: str, tail: int) -> list[str]:
        """The last `tail` lines the serving processes of deployment `name` wrote, oldest
        first (empty when there are none). Each runtime reads its own kind of log."""
        return []


# Error output -> a status reason -----------------------------------------------------------


def is_access_log_line(line: str) -> bool:
    """True for serving's JSON access-log lines ({"ts": ..., "path": ...}), which say
    nothing about why a process died."""
    if not line.startswith("{"):
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "path" in record and "status" in record


def last_error_line(output: str) -> str:
    """The last line of a process's output that is not an access-log line (for a traceback,
    the exception), with what looks like a secret redacted; empty if there is none. (Records
    are scrubbed again of the console's own secrets when written: deployments/scrub.py.)"""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line and not is_access_log_line(line):
            return redact_secret_patterns(line)[:500]
    return ""
