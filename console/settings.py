"""Console settings, read from the environment (the README's "Configuration" lists them).
Defaults are the embedded ones: SQLite, a broker that needs no server, artifacts in a local
folder, the local runtime."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console.broker import embedded_broker_options
from console.env import env, envbool, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("CONSOLE_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", False)
# Production behind HTTPS (usually a TLS-terminating ingress): secure cookies, HSTS, redirects,
# and a SECRET_KEY that must come from the environment. Off by default so `make run` needs no
# configuration on plain http://127.0.0.1.
HTTPS = envbool("CONSOLE_HTTPS", False)
if HTTPS and DEBUG:
    raise ImproperlyConfigured("CONSOLE_HTTPS=true is production: DEBUG must be false")


def _secret_key() -> str:
    """From the environment; on the embedded defaults a key is generated once under var/."""
    key = env("SECRET_KEY")
    if key:
        if HTTPS and (len(key) < 50 or len(set(key)) < 5):
            raise ImproperlyConfigured(
                "SECRET_KEY is too weak for production: use at least 50 random characters"
            )
        return key
    if HTTPS or envbool("SECRET_KEY_REQUIRED", False):
        raise ImproperlyConfigured(
            "SECRET_KEY must be set in the environment (or SECRET_KEY_FILE) when CONSOLE_HTTPS=true"
        )
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# Safe on plain http too.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 3600)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (only enable when it always does).
if envbool("SECURE_PROXY_SSL_HEADER", HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front of the console append to X-Forwarded-For; 0 trusts only REMOTE_ADDR.
# The audit trail records the client address found this way.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "console.limits.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "deployments.registry.upload_gate.UploadGateMiddleware",
    "deployments.audit.AuditSourceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.csp.ContentSecurityPolicyMiddleware",
]

# The UI needs no inline script or style (console/csp.py); admin and Swagger UI are exempt.
CONTENT_SECURITY_POLICY = env(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'",
)
CONTENT_SECURITY_POLICY_EXEMPT = ["/admin/", "/api/"]
# The API docs (deployments/api/docs.py) load only the console's own files. Swagger UI shows
# inline SVG icons (data: images); ReDoc injects its styles and runs its search in a blob: worker.
API_DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
API_REDOC_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'console.sqlite3'}"),
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to one file: wait for locks instead of failing,
    # and take the write lock at BEGIN so conditional updates cannot deadlock.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "console.static.StaticStorage"},
}

# Login failures (console/ratelimit.py) and the worker's watch of deployments are counted in
# this cache, shared by every web and worker process. The default is a table in the console's
# database (made by `migrate`); CACHE_URL=redis://... uses Redis, with values stored as JSON.
# Never a file-based cache: Django's unpickles what it finds in its folder, and a folder under
# var/ is within reach of more than the console.
CACHE_URL = env("CACHE_URL")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {"serializer": "console.cache.JSONSerializer"},
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://... or leave it unset")
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "console_cache",
            # Counters of a password spray from many addresses must not be culled early.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
AUTHENTICATION_BACKENDS = ["console.ratelimit.RateLimitedModelBackend"]
LOGIN_FAILURES_ALLOWED = envint("LOGIN_FAILURES_ALLOWED", 5)
LOGIN_LOCKOUT_SECONDS = envint("LOGIN_LOCKOUT_SECONDS", 300)

# Uploads go to a temporary file on disk, never whole into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(VAR_DIR / "uploads")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    # Token first, so an anonymous request gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "deployments.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # REST framework's parsers, with JSON nesting depth limited (deployments/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "deployments.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"token": "30/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model deployment console API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and ReDoc from the console's static files (drf-spectacular-sidecar): the docs
    # work offline. No online validator badge (it would call out to validator.swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# Celery: the embedded default is kombu's SQLAlchemy transport on a SQLite file of its own. A
# message is a row written in one transaction, so a worker never reads half of one (kombu's
# filesystem transport creates a message file before writing it: a worker reading it empty dies,
# celery/kombu#1551). Redis or RabbitMQ are the production choices.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}")
if CELERY_BROKER_URL.startswith("sqla+sqlite:///"):
    CELERY_BROKER_TRANSPORT_OPTIONS = embedded_broker_options(CELERY_BROKER_URL)
    # The same transport, polling faster (see console/broker.py); kombu takes the transport
    # from a URL's "sqla+" prefix, so the prefix goes and the transport is named instead.
    CELERY_BROKER_TRANSPORT = "console.broker:Transport"
    CELERY_BROKER_URL = CELERY_BROKER_URL.removeprefix("sqla+")
    if "CELERY_BROKER_URL" in os.environ:
        # Celery reads this variable before its settings: it must say the same.
        os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
    # Remote control needs fanout, which this transport has only inside one process; without
    # it the worker polls one queue (the task queue) instead of two.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message taken by a worker that then died (SIGKILL, OOM) comes back after this long;
    # the periodic reconcile (RECONCILE_STALE_SECONDS) usually redoes the work sooner.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": envint("BROKER_VISIBILITY_TIMEOUT", 900)
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# One broker may serve several consoles (or test runs): each uses its own queue.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "console")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
STATUS_SYNC_SECONDS = envint("STATUS_SYNC_SECONDS", 15)
# How often the traffic tick reads the versions' metrics of deployments with a canary or shadow.
TRAFFIC_TICK_SECONDS = envint("TRAFFIC_TICK_SECONDS", 5)
# A deployment left pending, deploying or stopping this long without a change is taken to have
# lost its task (a worker died); the periodic reconcile starts the task again.
RECONCILE_STALE_SECONDS = envint("RECONCILE_STALE_SECONDS", max(STATUS_SYNC_SECONDS * 2, 30))
# Each running deployment's /metrics is scraped this often (not with PROMETHEUS_URL).
METRICS_SCRAPE_SECONDS = envint("METRICS_SCRAPE_SECONDS", 15)
CELERY_BEAT_SCHEDULE = {
    "sync-all-deployments": {
        "task": "deployments.tasks.sync_all_deployments",
        "schedule": float(STATUS_SYNC_SECONDS),
    },
    "scrape-metrics": {
        "task": "deployments.tasks.scrape_metrics",
        "schedule": float(METRICS_SCRAPE_SECONDS),
    },
    "compute-drift": {
        "task": "deployments.tasks.compute_drift",
        "schedule": float(envint("DRIFT_SECONDS", 300)),
    },
    "prune-metrics": {"task": "deployments.tasks.prune_metrics", "schedule": 600.0},
    "prune-prediction-logs": {
        "task": "deployments.tasks.prune_prediction_logs",
        "schedule": 3600.0,
    },
    # Canary and shadow metrics, and the automatic canary analysis (deployments/traffic/).
    "traffic-tick": {
        "task": "deployments.tasks.traffic_tick",
        "schedule": float(TRAFFIC_TICK_SECONDS),
    },
}

# Artifacts and validation.
ARTIFACT_STORE = env("ARTIFACT_STORE", f"file://{VAR_DIR / 'artifacts'}")
GCS_PROJECT = env("GCS_PROJECT")
MAX_ARTIFACT_BYTES = envint("MAX_ARTIFACT_BYTES", 2 * 1024**3)
VALIDATION_TIMEOUT_SECONDS = envint("VALIDATION_TIMEOUT_SECONDS", 60)
VALIDATION_MEMORY_BYTES = envint("VALIDATION_MEMORY_BYTES", 2 * 1024**3)
SKOPS_TRUSTED_TYPES = envlist("SKOPS_TRUSTED_TYPES", [])
# Model code (validation, local serving) runs inside bubblewrap (deployments/isolation.py);
# "off" runs it as the console's user with access to everything the console can read, and is
# logged as a warning each time a model is validated or started.
MODEL_ISOLATION = env("MODEL_ISOLATION", "bwrap").strip().lower()
if MODEL_ISOLATION not in {"bwrap", "off"}:
    raise ImproperlyConfigured(f"MODEL_ISOLATION={MODEL_ISOLATION!r}: use bwrap or off")
# Uploads stream to disk and are hashed on the way (deployments/registry/upload_handler.py),
# only on the upload routes for deployers (deployments/registry/upload_gate.py).
FILE_UPLOAD_HANDLERS = ["deployments.registry.upload_handler.HashingUploadHandler"]
# What the serving image runs, e.g. "scikit-learn=1.5.2,torch=2.4.0"; default: this install's.
SERVING_LIBRARY_VERSIONS = dict(
    item.split("=", 1) for item in envlist("SERVING_LIBRARY_VERSIONS", []) if "=" in item
)

# Runtimes.
DEPLOY_RUNTIME = env("DEPLOY_RUNTIME", "local")
if DEPLOY_RUNTIME not in {"local", "kubernetes"}:
    raise ImproperlyConfigured(f"DEPLOY_RUNTIME={DEPLOY_RUNTIME!r}: use local or kubernetes")
DEPLOY_TIMEOUT_SECONDS = envint("DEPLOY_TIMEOUT_SECONDS", 180)
LOCAL_RUNTIME_DIR = VAR_DIR / "runtime"
K8S_NAMESPACE = env("K8S_NAMESPACE", "default")
SERVING_IMAGE = env("SERVING_IMAGE", "model-serving:latest")
K8S_INGRESS_HOST = env("K8S_INGRESS_HOST")
K8S_INGRESS_CLASS = env("K8S_INGRESS_CLASS")
K8S_SERVICE_ACCOUNT = env("K8S_SERVICE_ACCOUNT")
# Serving pods take requests only from the console's pods (in K8S_CONSOLE_NAMESPACE, default
# K8S_NAMESPACE) and from these namespaces (an ingress controller, a gateway, monitoring).
K8S_CONSOLE_NAMESPACE = env("K8S_CONSOLE_NAMESPACE")
K8S_ALLOW_FROM_NAMESPACES = envlist("K8S_ALLOW_FROM_NAMESPACES", [])
# The Gateway API Gateway ("namespace/name") that deployments' HTTPRoutes attach to; canary and
# shadow traffic on Kubernetes need one (the route splits and mirrors the requests).
K8S_GATEWAY = env("K8S_GATEWAY")
_GATEWAY_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
if K8S_GATEWAY and not re.fullmatch(_GATEWAY_PATTERN, K8S_GATEWAY):
    raise ImproperlyConfigured(
        f"K8S_GATEWAY={K8S_GATEWAY!r}: use NAMESPACE/NAME of a Gateway, such as infra/shared"
    )
# Where uploads are validated: on Kubernetes as a Job in K8S_NAMESPACE with SERVING_IMAGE, never
# in the console's pod. The Job's pod reads the artifact as K8S_VALIDATION_SERVICE_ACCOUNT.
VALIDATION_RUNTIME = env("VALIDATION_RUNTIME", DEPLOY_RUNTIME)
if VALIDATION_RUNTIME not in {"local", "kubernetes"}:
    raise ImproperlyConfigured(
        f"VALIDATION_RUNTIME={VALIDATION_RUNTIME!r}: use local or kubernetes"
    )
K8S_VALIDATION_SERVICE_ACCOUNT = env("K8S_VALIDATION_SERVICE_ACCOUNT", K8S_SERVICE_ACCOUNT)
K8S_VALIDATION_START_SECONDS = envint("K8S_VALIDATION_START_SECONDS", 120)
PREDICT_TIMEOUT_SECONDS = envint("PREDICT_TIMEOUT_SECONDS", 30)

# Observability (README, "Observability"). With PROMETHEUS_URL the charts query Prometheus,
# selecting a deployment's series with PROMETHEUS_SELECTOR ({name}: the deployment's name);
# without it the worker scrapes each running deployment's /metrics itself.
PROMETHEUS_URL = env("PROMETHEUS_URL").rstrip("/")
PROMETHEUS_SELECTOR = env("PROMETHEUS_SELECTOR", 'job="{name}"')
METRICS_SCRAPE_TIMEOUT_SECONDS = envint("METRICS_SCRAPE_TIMEOUT_SECONDS", 3)
# The prediction log: locally every deployment writes to a folder under var/ (its share of
# requests: the deployment's log_sample, else this); on Kubernetes to PREDICTION_LOG_SINK
# (gs://BUCKET/PREFIX, one folder per deployment under it), and not at all without one.
PREDICTION_LOG_DIR = VAR_DIR / "predictions"
PREDICTION_LOG_SINK = env("PREDICTION_LOG_SINK").rstrip("/")
# Day folders of the local log older than this many days are deleted (hourly); 0 keeps them.
# A GCS sink is left to the bucket's own lifecycle rule.
PREDICTION_LOG_RETENTION_DAYS = envint("PREDICTION_LOG_RETENTION_DAYS", 30)
if PREDICTION_LOG_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("PREDICTION_LOG_RETENTION_DAYS must be 0 (keep) or more days")
_sample = env("PREDICTION_LOG_SAMPLE", "1.0")
try:
    PREDICTION_LOG_SAMPLE = float(_sample)
except ValueError:
    PREDICTION_LOG_SAMPLE = -1.0
if not 0.0 <= PREDICTION_LOG_SAMPLE <= 1.0:
    raise ImproperlyConfigured(f"PREDICTION_LOG_SAMPLE={_sample!r}: use a number from 0 to 1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
