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
JOB_MESSAGE = f"Choose {' or '.join(JOBS)}."
# In the order a user picks them (joblib first); the names are serving's.
MODEL_TYPE_LABELS = {"joblib": "joblib", "pkl": "pickle", "skops": "skops"}
assert set(MODEL_TYPE_LABELS) == set(MODEL_TYPES), "a format serving reads has no label"
MODEL_TYPE_CHOICES = list(MODEL_TYPE_LABELS.items())
DEFAULT_MODEL_TYPE = "joblib"
NO_FILE_MESSAGE = "Choose the model file to upload (saved with joblib, pickle or skops)."
EMPTY_FILE_MESSAGE = "The file is empty. Choose the file you saved the model to."
MODEL_TYPE_MESSAGE = f"Choose the format the file was saved with: {', '.join(MODEL_TYPE_LABELS)}."
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

# A name suggested for a rejected one: "Iris Model" -> "iris-model".
NAME_HINT = 'Use lowercase letters, digits and dashes, starting with a letter, e.g. "{example}".'

# Registry: notes, tags, aliases and metrics ---------------------------------------------------

# Tags and aliases are labels of the same shape as names, shorter: "champion", "staging", "q3".
LABEL_PATTERN = r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$"
LABEL_MAX_LENGTH = 32
LABEL_MESSAGE = (
    "Use up to 32 lowercase letters, digits and dashes, starting with a letter, "
    'e.g. "champion" or "staging".'
)
MAX_TAGS = 20
MAX_NOTES_LENGTH = 5000
# User-supplied metrics of a version: a flat JSON object of numbers or short strings.
MAX_METRICS = 50
MAX_METRIC_NAME_LENGTH = 64
MAX_METRIC_TEXT_LENGTH = 200
METRICS_EXAMPLE = '{"auc": 0.93, "dataset": "2026-q3"}'

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
REPLICAS_INVALID = f"Give a whole number of replicas, {MIN_REPLICAS} to {MAX_REPLICAS}."
# The share of predictions written to the prediction log.
LOG_SAMPLE_MESSAGE = "Give a share of requests from 0 to 1, such as 0.1 for one in ten."

# Predictions ---------------------------------------------------------------------------------

# Rows the console's test form sends at a time.
MAX_PREDICT_ROWS = 1000

# The timeline -------------------------------------------------------------------------------

# The timeline: actions (each with the steps that followed it) per page, and how many recent
# events the deployment's page and its history pages group.
TIMELINE_ACTIONS_PER_PAGE = 10
TIMELINE_RECENT_EVENTS = 200
TIMELINE_HISTORY_EVENTS = 2000

# Input limits --------------------------------------------------------------------------------

# Features of one row (a model's input_size): wider inputs cost more memory and time per row
# than one web request should take.
MAX_INPUT_SIZE = 10_000
FEATURES_MESSAGE = f"Use 1 to {MAX_INPUT_SIZE} features (the numbers in one row of input)."
FEATURES_INVALID = f"Give the number of features as a whole number, 1 to {MAX_INPUT_SIZE}."
FEATURES_HELP = (
    f"How many numbers (or columns) one row of input holds, at most {MAX_INPUT_SIZE}. Optional: "
    "without it, the first version's upload takes it from the file (n_features_in_ or "
    "feature_names_in_) or from the header of the sample CSV uploaded with it."
)
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
# A local deployment's gRPC port is its REST port minus this (10000-19999, also below the
# ephemeral range): one rule, so the pair is reserved and found together.
LOCAL_GRPC_PORT_OFFSET = 10000
# Lines the logs API returns by default and at most.
LOG_TAIL_DEFAULT = 100
LOG_TAIL_MAX = 2000
# Log lines are read by a worker (the web process never calls the runtime): lines younger than
# this are shown as they are, older ones are read again, waiting at most LOG_WAIT_SECONDS.
LOG_FRESH_SECONDS = 2.0
LOG_WAIT_SECONDS = 5.0
LOG_KEEP_SECONDS = 600  # how long read lines stay in the cache, for a worker that is late
# A read asked of a worker that has not done it is asked again after this long (the worker is
# down, or lost the task); a read done clears the mark at once.
LOG_ASK_AGAIN_SECONDS = 30


def log_cache_key(deployment_id: int, tail: int) -> str:
    """Where a worker leaves a deployment's last `tail` log lines for the web process (and,
    with ":asked" appended, the mark that a read was asked of it)."""
    return f"deployment-logs:{deployment_id}:{tail}"


# Observability: metrics, the prediction log, drift -------------------------------------------

# Serving's route labels of prediction requests (REST, KServe V1, OIP REST and gRPC): the
# requests the metrics count. Other routes (health, metadata, /metrics) are not traffic.
PREDICTION_ROUTE_PATTERN = r".*(predict|infer|Infer).*"
# Answers counted as errors: the server failed (5xx). A 4xx is the caller's bad request.
ERROR_STATUS_FIRST = 500
# Scraped points are kept at their scrape interval (about 15 s) this long, then rolled up into
# ROLLUP_STEP_SECONDS points that are kept ROLLUP_RETENTION_SECONDS.
RAW_RETENTION_SECONDS = 24 * 3600
ROLLUP_STEP_SECONDS = 60
ROLLUP_RETENTION_SECONDS = 7 * 24 * 3600
# At most this many points per series in an answer: longer windows get a coarser step.
MAX_SERIES_POINTS = 360
# The windows the metrics and drift APIs accept (name: seconds).
WINDOWS = {
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "6h": 6 * 3600,
    "24h": 24 * 3600,
    "7d": 7 * 24 * 3600,
}
METRICS_WINDOW_DEFAULT = "15m"
DRIFT_WINDOW_DEFAULT = "24h"
METRIC_SERIES = ("requests_per_s", "errors_per_s", "latency_p50_ms", "latency_p99_ms", "rows_per_s")
# Prediction-log records the predictions API returns by default and at most.
PREDICTIONS_LIMIT_DEFAULT = 50
PREDICTIONS_LIMIT_MAX = 1000
# Logged rows drift reads at most per computation (the newest), and reference rows at most.
DRIFT_MAX_ROWS = 50_000
DRIFT_MIN_ROWS = 30  # fewer logged rows than this: no drift is computed ("not enough data")
# A feature drifts when its population stability index reaches this (0.1: a moderate shift,
# 0.2: a significant one, the usual reading); per-feature overrides in a version's
# reference settings. Numbers are cut into DRIFT_BINS quantile bins of the reference.
DRIFT_PSI_THRESHOLD = 0.2
DRIFT_BINS = 10

# Deleting and archiving ----------------------------------------------------------------------

# A deployment may be deleted (its name becomes free) or archived (hidden from the lists) only
# once it serves nothing: the runtime holds no processes or objects for it.
DELETABLE = FINAL  # stopped
ARCHIVABLE = FINAL

# Lists ---------------------------------------------------------------------------------------

# Rows per page on the dashboard and the models page.
PAGE_SIZE = 50
# How the dashboard may be sorted: the query value, its label and the ordering it means (the
# name last, so that a page never depends on the database's tie-breaking).
DEPLOYMENT_SORTS = {
    "name": ("Name (A-Z)", ("name",)),
    "-name": ("Name (Z-A)", ("-name",)),
    "-updated": ("Last change, newest first", ("-updated_at", "name")),
    "updated": ("Last change, oldest first", ("updated_at", "name")),
    "status": ("Status", ("status", "name")),
    "model": ("Model", ("model_version__model__name", "name")),
}
MODEL_SORTS = {
    "name": ("Name (A-Z)", ("name",)),
    "-name": ("Name (Z-A)", ("-name",)),
    "-created": ("Newest first", ("-created_at", "name")),
    "created": ("Oldest first", ("created_at", "name")),
}

# API tokens ----------------------------------------------------------------------------------

# The name of the token POST /api/token/ hands out (and replaces on the next call).
PERSONAL_TOKEN_NAME = "personal"
TOKEN_NAME_MAX_LENGTH = 64
MAX_TOKENS_PER_USER = 20
# What a user may pick as a token's lifetime in the UI (days; None: it never expires).
TOKEN_LIFETIMES = {"7": 7, "30": 30, "90": 90, "365": 365, "never": None}
DEFAULT_TOKEN_LIFETIME = "90"

# Traffic: canary, shadow, autoscaling -------------------------------------------------------

# Roles of the versions in a deployment's traffic.
PRIMARY = "primary"
CANARY = "canary"
SHADOW = "shadow"
TRAFFIC_ROLES = (PRIMARY, CANARY, SHADOW)
# A canary's share of the requests, in percent.
MIN_WEIGHT = 0
MAX_WEIGHT = 100
WEIGHT_MESSAGE = f"Use a whole number from {MIN_WEIGHT} to {MAX_WEIGHT} (percent of requests)."
# Automatic canary analysis: the weights it moves through, how often it looks, and its limits.
DEFAULT_ANALYSIS_STEPS = (10, 25, 50, 100)
MAX_ANALYSIS_STEPS = 20
MIN_ANALYSIS_INTERVAL_SECONDS = 5
MAX_ANALYSIS_INTERVAL_SECONDS = 86_400
DEFAULT_ANALYSIS_INTERVAL_SECONDS = 60
DEFAULT_MAX_ERROR_RATE = 0.01  # share of answers that are server errors (5xx)
DEFAULT_MAX_P99_MS = 500.0
# A step is judged only on at least this many requests to the canary; fewer, and it waits.
MIN_ANALYSIS_REQUESTS = 20
# (Its errors are ERROR_STATUS_FIRST and above, as for the metrics.)
# Horizontal autoscaling (Kubernetes only): replica bounds and the CPU utilisation targeted.
MIN_TARGET_CPU = 1
MAX_TARGET_CPU = 100
DEFAULT_TARGET_CPU = 70
LOCAL_NO_AUTOSCALING = (
    "the local runtime does not autoscale: set replicas instead (autoscaling needs "
    "DEPLOY_RUNTIME=kubernetes, where it writes a HorizontalPodAutoscaler)"
)
NO_GATEWAY = (
    "canary and shadow traffic on Kubernetes need a Gateway API Gateway: set K8S_GATEWAY to "
    "its namespace/name (the HTTPRoute that splits the traffic attaches to it)"
)
