"""The registry (models and their versions) and deployments with their events.

A `Deployment` owns its status: every change goes through `move_to`, which is a conditional
UPDATE on the current status, so two racing requests can never both win a transition.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from deployments import constants as st
from deployments.scrub import scrub

NAME = RegexValidator(st.NAME_PATTERN, st.NAME_MESSAGE)
LABEL = RegexValidator(st.LABEL_PATTERN, st.LABEL_MESSAGE)
QUANTITY = RegexValidator(st.QUANTITY_PATTERN, st.QUANTITY_MESSAGE)


class RegisteredModel(models.Model):
    """A named model: what it predicts and how many features it takes."""

    name = models.CharField(max_length=st.NAME_MAX_LENGTH, unique=True, validators=[NAME])
    job = models.CharField(max_length=16, choices=st.JOB_CHOICES)
    # Null until the first version's upload sets it from what the artifact knows (or from its
    # sample CSV's header); every later version must take the same number.
    input_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(st.MAX_INPUT_SIZE)],
        help_text=st.FEATURES_HELP,
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Archived models are hidden from the models list unless asked for; nothing else changes.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def learn_input_size(self, width: int) -> int:
        """Store `width` as the input size unless the row has one (a conditional UPDATE: of
        two first uploads only one sets it); the row's input size after. The caller's
        transaction decides whether it stays, so this object is left as it is."""
        RegisteredModel.objects.filter(pk=self.pk, input_size__isnull=True).update(input_size=width)
        taken = RegisteredModel.objects.values_list("input_size", flat=True).get(pk=self.pk)
        return taken or width


class ModelVersion(models.Model):
    """One uploaded artifact of a model, pinned by its sha256, with what validation learned."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    model_type = models.CharField(max_length=8, choices=st.MODEL_TYPE_CHOICES)
    uri = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    estimator_class = models.CharField(max_length=255, blank=True)
    n_features = models.PositiveIntegerField(null=True, blank=True)
    classes = models.JSONField(null=True, blank=True)
    feature_names = models.JSONField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # What serving is told to trust for this artifact (all trusted at upload): skops types, or
    # the pickle/joblib globals beyond serving's allowlist that an admin approved.
    trusted_types = models.JSONField(default=list, blank=True)
    types_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Every global a pickle or joblib artifact imported while it was validated.
    imported_globals = models.JSONField(default=list, blank=True)
    # Tabular models: the input columns [{"name", "type", "categories", "nullable"}] learned
    # from the artifact and the sample; null when neither names the columns.
    input_schema = models.JSONField(null=True, blank=True)
    # The sample CSV uploaded with the version (stored beside the artifact), and its first rows
    # typed by the schema: serving's warm-up rows and the example row of the UI and snippets.
    sample_uri = models.CharField(max_length=1024, blank=True)
    example_rows = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # What people say about the version (editable, unlike the facts above): free notes, labels
    # such as "baseline", and the metrics the uploader measured, e.g. {"auc": 0.93}.
    notes = models.TextField(blank=True, max_length=st.MAX_NOTES_LENGTH)
    tags = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Rows the version's logged inputs are compared with for drift (a CSV in the artifact
    # store, uploaded after the version), and per-feature PSI thresholds overriding the default.
    reference_uri = models.CharField(max_length=1024, blank=True)
    drift_thresholds = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["model__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="unique_model_version")
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def input_size(self) -> int:
        """The number of features serving is told: the model's, which its first version's
        upload set when the model was registered without one."""
        size = self.model.input_size or self.n_features or len(self.input_schema or [])
        if not size:
            raise ValueError(f"{self} has no input size")
        return size


class ModelAlias(models.Model):
    """A movable name for one version of a model ("champion", "staging"): deployments and
    scripts ask for the alias and get whichever version it points at when they ask."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=st.LABEL_MAX_LENGTH, validators=[LABEL])
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="unique_model_alias")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name}"


class RegistryEvent(models.Model):
    """The registry's audit trail: aliases set, moved and removed, notes and tags edited.
    Written once, never changed, like DeploymentEvent."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=8, default="worker")
    action = models.CharField(max_length=32)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.action}"

    @classmethod
    def add(cls, model: RegisteredModel, action: str, message: str, actor: object | None) -> Any:
        """Record an event with the acting user and the request's source (see audit.py)."""
        from deployments.audit import who

        return cls.objects.create(
            model=model,
            **who(actor),
            action=action,
            message=message,
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events cannot be changed once written")
        super().save(*args, **kwargs)


class Deployment(models.Model):
    """A model version serving under a name, and the last status the runtime reported."""

    name = models.CharField(max_length=st.NAME_MAX_LENGTH, unique=True, validators=[NAME])
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    replicas = models.PositiveSmallIntegerField(
        default=st.DEFAULT_REPLICAS,
        validators=[MinValueValidator(st.MIN_REPLICAS), MaxValueValidator(st.MAX_REPLICAS)],
    )
    cpu_request = models.CharField(
        max_length=st.QUANTITY_MAX_LENGTH, default=st.DEFAULT_RESOURCES["cpu_request"]
    )
    memory_request = models.CharField(
        max_length=st.QUANTITY_MAX_LENGTH, default=st.DEFAULT_RESOURCES["memory_request"]
    )
    cpu_limit = models.CharField(
        max_length=st.QUANTITY_MAX_LENGTH, default=st.DEFAULT_RESOURCES["cpu_limit"], blank=True
    )
    memory_limit = models.CharField(
        max_length=st.QUANTITY_MAX_LENGTH,
        default=st.DEFAULT_RESOURCES["memory_limit"],
        blank=True,
    )
    status = models.CharField(max_length=16, choices=st.CHOICES, default=st.PENDING)
    status_reason = models.TextField(blank=True)
    endpoint = models.CharField(max_length=255, blank=True)
    # The Open Inference Protocol over gRPC ("host:port"), where the runtime serves it.
    grpc_endpoint = models.CharField(max_length=255, blank=True)
    replicas_ready = models.PositiveSmallIntegerField(default=0)
    # Times the runtime restarted a serving process of this deployment after it died.
    restarts = models.PositiveIntegerField(default=0)
    # The local runtime's port for this deployment, reserved once and kept for its lifetime
    # (its endpoint); empty on runtimes that need none.
    port = models.PositiveIntegerField(null=True, blank=True, unique=True)
    # The share of predictions serving writes to the prediction log (0 to 1); empty: the
    # console's PREDICTION_LOG_SAMPLE.
    log_sample = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # Traffic (deployments/traffic/): a canary takes `canary_weight` percent of the requests,
    # a shadow gets a copy of every request (its answers are discarded).
    canary_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    canary_weight = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(st.MIN_WEIGHT), MaxValueValidator(st.MAX_WEIGHT)]
    )
    # {"steps", "interval_s", "max_error_rate", "max_p99_ms"}: the weight moves by itself.
    canary_analysis = models.JSONField(null=True, blank=True)
    shadow_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # {"min", "max", "target_cpu"} (Kubernetes: a HorizontalPodAutoscaler owns the replicas).
    autoscaling = models.JSONField(null=True, blank=True)
    # What the traffic tick measured last: per version, counters and rates; the analysis step.
    traffic_state = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Archived (stopped) deployments are hidden from the dashboard unless asked for.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # The dashboard's filters and sorts (a page of 10,000 rows reads only its rows).
            models.Index(fields=["status", "name"], name="deployment_status_idx"),
            models.Index(fields=["updated_at", "name"], name="deployment_updated_idx"),
        ]
        permissions = [("deploy_model", "Can upload, deploy, change and undeploy models")]

    def __str__(self) -> str:
        return self.name

    def move_to(
        self,
        to: str,
        reason: str = "",
        *,
        actor: object | None = None,
        action: str = "status",
        message: str = "",
        only_from: Iterable[str] | None = None,
        guard: dict[str, object] | None = None,
        **fields: object,
    ) -> bool:
        """Change status if the current one allows it; False when another change won the race.

        The allowed starting statuses are those of `constants.TRANSITIONS`; `only_from`
        narrows them (for example only `pending` for the worker that claims a deploy) and
        must not widen them. `guard` adds conditions on other columns (for example the
        version a change started from, so two racing rollbacks cannot both apply).
        """
        allowed = st.sources_of(to)
        if only_from is not None:
            narrowed = frozenset(only_from)
            if not narrowed <= allowed:
                raise ValueError(
                    f"no move to {to} from {', '.join(sorted(narrowed - allowed))} "
                    "(constants.TRANSITIONS)"
                )
            allowed = narrowed
        now = timezone.now()
        reason = scrub(reason)  # it may quote a serving process's output
        with transaction.atomic():
            # The WHERE on the current status is the guard: of two racing requests only one
            # UPDATE matches a row, and only that one records an event and enqueues work.
            changed = Deployment.objects.filter(
                pk=self.pk, status__in=allowed, **(guard or {})
            ).update(status=to, status_reason=reason, updated_at=now, **fields)
            if changed:
                DeploymentEvent.add(self.pk, action, to, message or reason, actor)
        self.refresh_from_db()
        return bool(changed)

    def update_while(
        self, status: str, *, guard: dict[str, object] | None = None, **fields: object
    ) -> bool:
        """Write `fields` (never the status) only while the status is still `status`; False
        when it has moved meanwhile, so a late write cannot overwrite a newer state."""
        reason = fields.get("status_reason")
        if isinstance(reason, str):
            fields["status_reason"] = scrub(reason)
        changed = Deployment.objects.filter(pk=self.pk, status=status, **(guard or {})).update(
            **fields
        )
        self.refresh_from_db()
        return bool(changed)

    def reserve_port(self, pick: Callable[[set[int]], int]) -> int:
        """The deployment's port: chosen once by `pick` (given the ports already reserved) and
        kept. The unique constraint settles two deployments that pick the same one."""
        for _ in range(20):
            if self.port:
                return self.port
            taken = {
                port
                for port in Deployment.objects.exclude(port=None).values_list("port", flat=True)
                if port is not None
            }
            try:
                with transaction.atomic():
                    Deployment.objects.filter(pk=self.pk, port=None).update(port=pick(taken))
            except IntegrityError:
                pass  # another deployment took it meanwhile: pick again
            self.refresh_from_db(fields=["port"])
        raise RuntimeError(f"could not reserve a port for {self.name}")

    def traffic(self) -> list[dict[str, Any]]:
        """Who answers (see `traffic_of`)."""
        canary = self.canary_version if self.canary_version_id else None
        shadow = self.shadow_version if self.shadow_version_id else None
        return traffic_of(
            self.model_version.version,
            canary.version if canary else None,
            self.canary_weight,
            shadow.version if shadow else None,
        )

    def traffic_rows(self) -> list[dict[str, Any]]:
        """`traffic()` with each version's last measured numbers (requests_per_s, error_rate,
        p99_ms; for a shadow, copies_dropped), for the traffic panel; None where nothing was
        measured yet."""
        metrics = (self.traffic_state or {}).get("metrics") or {}
        analysis = (self.traffic_state or {}).get("analysis") or {}
        rows = []
        for row in self.traffic():
            seen = metrics.get(str(row["version"])) or {}
            rows.append(
                {
                    **row,
                    "requests_per_s": seen.get("requests_per_s"),
                    "error_rate_percent": (
                        None if seen.get("error_rate") is None else seen["error_rate"] * 100
                    ),
                    "p99_ms": seen.get("p99_ms"),
                    "copies_dropped": seen.get("copies_dropped"),
                    "analysis": analysis if row["role"] == st.CANARY else None,
                }
            )
        return rows

    def record(self, action: str, message: str, actor: object | None = None) -> None:
        """Add an event without changing status."""
        DeploymentEvent.add(self.pk, action, self.status, message, actor)


def traffic_of(
    primary: int, canary: int | None, canary_weight: int, shadow: int | None
) -> list[dict[str, Any]]:
    """A deployment's `traffic`: the primary and canary share the requests by weight; a shadow
    gets copies (weight 0). The order is primary, canary, shadow."""
    rows = [
        {
            "version": primary,
            "weight": st.MAX_WEIGHT - (canary_weight if canary is not None else 0),
            "role": st.PRIMARY,
        }
    ]
    if canary is not None:
        rows.append({"version": canary, "weight": canary_weight, "role": st.CANARY})
    if shadow is not None:
        rows.append({"version": shadow, "weight": 0, "role": st.SHADOW})
    return rows


class DeploymentEvent(models.Model):
    """The audit trail: who did what to a deployment, when and from where; also what the
    runtime reported. Rows are written once and never changed."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The username at the time, kept when the user is later deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=8, default="worker")  # api | ui | worker
    action = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=st.CHOICES)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["deployment", "-created_at", "-id"], name="event_history_idx")
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id}: {self.action} -> {self.status}"

    @classmethod
    def add(
        cls, deployment_id: int, action: str, status: str, message: str, actor: object | None
    ) -> DeploymentEvent:
        """Record an event with the acting user and the request's source (see audit.py)."""
        from deployments.audit import who

        return cls.objects.create(
            deployment_id=deployment_id,
            **who(actor),
            action=action,
            status=status,
            message=scrub(message),
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events cannot be changed once written")
        super().save(*args, **kwargs)


def token_digest(key: str) -> str:
    """The stored form of an API token. Tokens are 160 random bits, so a plain sha256 (no salt,
    no slow hash) is enough and lets a request find its token by an indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """One of a user's API tokens, kept as its sha256 only: whoever reads the database (a
    backup, a process that should not have) finds no token that would log in. A user may hold
    several, each named for what uses it, each with an optional expiry."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=st.TOKEN_NAME_MAX_LENGTH, default=st.PERSONAL_TOKEN_NAME)
    digest = models.CharField(max_length=64, unique=True)
    # The key's first characters, shown in lists so a user can tell tokens apart.
    prefix = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="unique_token_name_per_user")
        ]

    def __str__(self) -> str:
        return f"token {self.name} of {self.user}"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @staticmethod
    def _new_key() -> tuple[str, dict[str, Any]]:
        key = secrets.token_hex(20)
        return key, {"digest": token_digest(key), "prefix": key[:8], "created_at": timezone.now()}

    @classmethod
    def issue(cls, user: object) -> str:
        """A new personal token for `user`, replacing their previous personal one (the other
        named tokens stay). The key is returned this once."""
        key, fields = cls._new_key()
        cls.objects.update_or_create(
            user=user, name=st.PERSONAL_TOKEN_NAME, defaults={**fields, "expires_at": None}
        )
        return key

    @classmethod
    def create_named(
        cls, user: object, name: str, expires_at: datetime.datetime | None
    ) -> tuple[str, ApiToken]:
        """A new token called `name`; IntegrityError if the user has one of that name. The key
        is returned this once, beside the record."""
        key, fields = cls._new_key()
        return key, cls.objects.create(user=user, name=name, expires_at=expires_at, **fields)

    @classmethod
    def find(cls, key: str) -> ApiToken | None:
        return cls.objects.select_related("user").filter(digest=token_digest(key)).first()

    @classmethod
    def user_for_header(cls, authorization: str) -> Any | None:
        """The active user an `Authorization: Token KEY` header names (unexpired), or None."""
        keyword, _, key = authorization.strip().partition(" ")
        if keyword != "Token" or not key.strip():
            return None
        token = cls.find(key.strip())
        if token is None or token.expired or not token.user.is_active:
            return None
        return token.user


class MetricPoint(models.Model):
    """What a deployment's serving processes counted between two scrapes (or, rolled up, over
    a minute): increments, so that points add up exactly when merged into coarser ones."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    ts = models.FloatField()  # unix time at the end of the interval
    seconds = models.FloatField()  # the length of the interval
    rolled_up = models.BooleanField(default=False)  # a minute's points merged into one
    requests = models.FloatField(default=0)
    errors = models.FloatField(default=0)
    rows = models.FloatField(default=0)
    # Latency histogram increments, cumulative as Prometheus buckets: [[le, count], ...].
    latency_buckets = models.JSONField(default=list)

    class Meta:
        indexes = [models.Index(fields=["deployment", "ts"], name="metric_point_idx")]


class MetricScrape(models.Model):
    """The totals each serving process of a deployment reported at the last scrape, by its
    instance id: the next scrape's increments are taken against them."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="+")
    instances = models.JSONField(default=dict)
    scraped_at = models.FloatField(default=0)


class DriftReport(models.Model):
    """The last drift computed for a deployment (the periodic task or a request)."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField(default=timezone.now)
    window = models.CharField(max_length=8)
    rows = models.PositiveIntegerField(default=0)
    features = models.JSONField(default=list)
    drifted = models.JSONField(default=list)  # names of the drifted features


class AuditEvent(models.Model):
    """The audit trail of what is not one deployment's history, or outlives it: tokens created
    and revoked, deployments, versions and models deleted or archived. Written once."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=8, default="worker")  # api | ui | worker
    action = models.CharField(max_length=32)  # e.g. token.create, deployment.delete
    target = models.CharField(max_length=200)  # what it was done to, by name
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"

    @classmethod
    def add(cls, action: str, target: str, message: str, actor: object | None) -> AuditEvent:
        """Record an event with the acting user and the request's source (see audit.py)."""
        from deployments.audit import who

        return cls.objects.create(
            **who(actor),
            action=action,
            target=target,
            message=scrub(message),
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("audit events cannot be changed once written")
        super().save(*args, **kwargs)
