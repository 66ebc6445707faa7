"""The console's rules in one place: deployment statuses and the moves between them, the jobs
and formats a model may have, names, resource quantities and the limits on replicas.

What serving reads (formats, jobs) is defined by serving's config schema and imported here, so
the console and serving cannot disagree. Everything else that decides "is this allowed?" for a
deployment is defined below and nowhere else: models, forms, serializers and runtimes import it.
"""

from __future__ import annotations

from serving.config import CLASSIFICATION, JOBS, MODEL_TYPES, REGRESSION

__all__ = ["CLASSIFICATION", "JOBS", "MODEL_TYPES", "REGRESSION"]

# Statuses ------------------------------------------------------------------------------------

PENDING = "pending"  # recorded; a worker will apply it
DEPLOYING = "deploying"  # applied; waiting for the serving process to be ready
RUNNING = "running"
DEGRADED = "degraded"  # serving, but not every replica is ready
FAILED = "failed"
STOPPING = "stopping"  # undeploy requested; a worker is removing it
STOPPED = "stopped"

STATUSES = (PENDING, DEPLOYING, RUNNING, DEGRADED, FAILED, STOPPING, STOPPED)
CHOICES = [(s, s) for s in STATUSES]

# Where a deployment may go from each status: the only definition of an allowed move.
# `Deployment.move_to` refuses anything else.
TRANSITIONS: dict[str, frozenset[str]] = {
    # A worker claims the deploy; undeploy is possible at once.
    PENDING: frozenset({DEPLOYING, FAILED, STOPPING}),
    # The runtime reports readiness or failure; a change or a resume queues it again.
    DEPLOYING: frozenset({RUNNING, DEGRADED, FAILED, STOPPING, PENDING}),
    RUNNING: frozenset({DEPLOYING, DEGRADED, FAILED, STOPPING, PENDING}),
    DEGRADED: frozenset({RUNNING, DEPLOYING, FAILED, STOPPING, PENDING}),
    FAILED: frozenset({PENDING, DEPLOYING, RUNNING, DEGRADED, STOPPING}),
    # Undeploy ends in stopped, or failed when the runtime cannot remove it.
    STOPPING: frozenset({STOPPED, FAILED}),
    STOPPED: frozenset({PENDING}),
}


def can_move(frm: str, to: str) -> bool:
    return to in TRANSITIONS.get(frm, frozenset())


def sources_of(to: str) -> frozenset[str]:
    """Every status from which a deployment may move to `to`."""
    return frozenset(s for s, targets in TRANSITIONS.items() if to in targets)


# Named sets, derived from the table so they cannot disagree with it.
FINAL = frozenset(s for s, targets in TRANSITIONS.items() if targets <= {PENDING})  # stopped
# Statuses in which the deployment is meant to be serving (the reconcile loop watches these).
ACTIVE = frozenset(STATUSES) - FINAL - {STOPPING}
# Statuses in which it answers predictions.
SERVING = frozenset({RUNNING, DEGRADED})
# Work is queued or under way: a change must wait until it settles.
IN_FLIGHT = frozenset({PENDING, STOPPING})
# A user may (re)deploy, undeploy, change or resume from these.
DEPLOYABLE = sources_of(PENDING) - {DEPLOYING}  # stopped, failed, running, degraded
UNDEPLOYABLE = sources_of(STOPPING)
CHANGEABLE = sources_of(PENDING) - FINAL  # running, degraded, failed, deploying
# After a console restart, what was meant to be serving is deployed again.
RESUMABLE = sources_of(PENDING) - FINAL - {FAILED}  # running, degraded, deploying

# Jobs and formats ----------------------------------------------------------------------------

JOB_CHOICES = [(job, job) for job in JOBS]
# In the order a user picks them (joblib first); the names are serving's.
MODEL_TYPE_LABELS = {"joblib": "joblib", "pkl": "pickle", "skops": "skops"}
assert set(MODEL_TYPE_LABELS) == set(MODEL_TYPES), "a format serving reads has no label"
MODEL_TYPE_CHOICES = list(MODEL_TYPE_LABELS.items())
DEFAULT_MODEL_TYPE = "joblib"
# The file extension of each format in the artifact store.
EXTENSIONS = {t: t for t in MODEL_TYPES}

# Names ---------------------------------------------------------------------------------------

# A DNS-1123 label that also starts with a letter: a deployment's name becomes its Kubernetes
# Service's name, and Service names must be DNS-1035 labels.
NAME_PATTERN = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME_MAX_LENGTH = 63
NAME_MESSAGE = (
    "Use at most 63 lower-case letters, digits and '-', starting with a letter and ending with "
    "a letter or digit (a DNS-1123 label that Kubernetes also accepts as a Service name)."
)

# Resources and replicas ----------------------------------------------------------------------

# Kubernetes resource quantities such as 100m, 0.5, 1 (CPU) or 256Mi, 1Gi (memory).
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
QUANTITY_MESSAGE = "Use a Kubernetes quantity such as 100m, 0.5, 1 (CPU) or 256Mi, 1Gi (memory)."
QUANTITY_MAX_LENGTH = 16
# Requests and limits of a new deployment's serving container (limits may be left empty).
DEFAULT_RESOURCES = {
    "cpu_request": "100m",
    "memory_request": "256Mi",
    "cpu_limit": "1",
    "memory_limit": "1Gi",
}
RESOURCE_FIELDS = tuple(DEFAULT_RESOURCES)

MIN_REPLICAS = 0
MAX_REPLICAS = 50
DEFAULT_REPLICAS = 1
REPLICAS_MESSAGE = f"Use {MIN_REPLICAS} to {MAX_REPLICAS} replicas."

# Predictions ---------------------------------------------------------------------------------

# Rows the console's test form sends at a time.
MAX_PREDICT_ROWS = 1000

# Input limits --------------------------------------------------------------------------------

# Features of one row (a model's input_size): wider inputs cost more memory and time per row
# than one web request should take.
MAX_INPUT_SIZE = 10_000
# The sample CSV uploaded with a version (its header names a tabular model's columns, its rows
# are the probe rows and the drift reference): small enough to read whole in the console.
MAX_SAMPLE_BYTES = 10 * 1024**2
# Above this many features the test-prediction form has no input per feature, only the rows box.
MAX_FORM_FEATURES = 100
# How deeply a JSON document the console reads may nest ([[...]] is 2; the deepest input the
# console takes is about 5). Python's parser recurses, so very deep documents are refused first.
MAX_JSON_DEPTH = 32

# Serving processes of the local runtime ------------------------------------------------------

# A dead serving process is restarted after a backoff that doubles from the first to the most
# (as a kubelet's CrashLoopBackOff); one that ran RESTART_STABLE_SECONDS starts over at the first.
RESTART_BACKOFF_FIRST_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 30.0
RESTART_STABLE_SECONDS = 60.0
# More restarts than this within the window, and the deployment is failed (no more restarts).
MAX_RESTARTS_IN_WINDOW = 3
RESTART_WINDOW_SECONDS = 300.0
# Ports the console reserves for deployments of the local runtime, one each for its lifetime
# (below Linux's ephemeral range, so outgoing connections do not take them).
LOCAL_PORT_FIRST = 20000
LOCAL_PORT_LAST = 29999
# Lines the logs API returns by default and at most.
LOG_TAIL_DEFAULT = 100
LOG_TAIL_MAX = 2000
