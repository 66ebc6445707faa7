"""API shapes. Write serializers are separate from read ones so internal fields never leak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from deployments import constants as st
from deployments.models import (
    QUANTITY,
    Deployment,
    DeploymentEvent,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)
from deployments.names import validate_name
from deployments.registry import metadata
from deployments.registry.aliases import VersionNotFound, find_version


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]})
class VersionRefField(serializers.Field):
    """A version number (2) or one of the model's aliases ("champion")."""

    default_error_messages = {
        "invalid": 'Give a version number such as 2, or an alias such as "champion".'
    }

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, int | str) or str(data).strip() == "":
            self.fail("invalid")
        if isinstance(data, int) and not 1 <= data <= 2**31 - 1:
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class _MetadataField(serializers.Field):
    """Notes, tags or metrics, checked by registry/metadata.py (whose sentences are the
    errors); JSON values or the text a multipart form sends."""

    parse: Callable[[Any], Any]

    def to_internal_value(self, data: Any) -> Any:
        try:
            return type(self).parse(data)
        except metadata.MetadataError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "maxLength": st.MAX_NOTES_LENGTH})
class NotesField(_MetadataField):
    parse = staticmethod(metadata.parse_notes)


@extend_schema_field({"type": "array", "items": {"type": "string"}, "maxItems": st.MAX_TAGS})
class TagsField(_MetadataField):
    parse = staticmethod(metadata.parse_tags)

    def get_value(self, dictionary: Any) -> Any:
        # A multipart form may repeat `tags`; a JSON body gives the list itself.
        if hasattr(dictionary, "getlist"):
            values = dictionary.getlist(self.field_name)
            if not values:
                return serializers.empty
            return values if len(values) > 1 else values[0]
        return super().get_value(dictionary)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "number"}, {"type": "string"}]},
        "maxProperties": st.MAX_METRICS,
    }
)
class MetricsField(_MetadataField):
    parse = staticmethod(metadata.parse_metrics)


_MODEL_REQUIRED = "Name the model to deploy (its name on the Models page)."
_NAME_ERRORS = {"blank": "Enter a name.", "required": "Enter a name."}
_REPLICA_ERRORS = {"max_value": st.REPLICAS_MESSAGE, "min_value": st.REPLICAS_MESSAGE}


def _replicas(**kwargs: object) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=st.MIN_REPLICAS,
        max_value=st.MAX_REPLICAS,
        error_messages={
            **_REPLICA_ERRORS,
            "invalid": st.REPLICAS_INVALID,
            "max_string_length": st.REPLICAS_MESSAGE,
        },
        **kwargs,
    )


def _log_sample(**kwargs: object) -> serializers.FloatField:
    return serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        error_messages=dict.fromkeys(("invalid", "min_value", "max_value"), st.LOG_SAMPLE_MESSAGE),
        **kwargs,
    )


def _quantity(name: str, **kwargs: object) -> serializers.CharField:
    return serializers.CharField(
        max_length=st.QUANTITY_MAX_LENGTH,
        default=st.DEFAULT_RESOURCES[name],
        validators=[QUANTITY],
        **kwargs,
    )


_TAKEN_MODEL = "A model with this name already exists. Choose another name, or upload a new "
_TAKEN_MODEL += "version of that model."


class ModelSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        validators=[
            validate_name,
            UniqueValidator(queryset=RegisteredModel.objects.all(), message=_TAKEN_MODEL),
        ],
        error_messages=_NAME_ERRORS,
    )
    job = serializers.ChoiceField(
        choices=st.JOB_CHOICES,
        error_messages={"invalid_choice": st.JOB_MESSAGE},
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "job",
            "input_size",
            "description",
            "created_by",
            "created_at",
            "latest_version",
            "archived_at",
        ]
        read_only_fields = ["created_by", "created_at", "latest_version", "archived_at"]
        extra_kwargs = {
            "input_size": {
                "help_text": st.FEATURES_HELP,
                "error_messages": {
                    "min_value": st.FEATURES_MESSAGE,
                    "max_value": st.FEATURES_MESSAGE,
                    "invalid": st.FEATURES_INVALID,
                    "max_string_length": st.FEATURES_MESSAGE,
                },
            }
        }

    def get_latest_version(self, obj: RegisteredModel) -> int | None:
        latest = getattr(obj, "latest_version", None)
        if latest is not None:
            return latest
        last = obj.versions.order_by("-version").first()
        return last.version if last else None


class VersionSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    types_approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    deployments = serializers.SerializerMethodField(
        help_text="Deployments serving this version; it cannot be deleted while any exist."
    )
    aliases = serializers.SerializerMethodField(
        help_text="The model's aliases that point at this version."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "model_type",
            "sha256",
            "size",
            "uri",
            "estimator_class",
            "n_features",
            "feature_names",
            "classes",
            "library_versions",
            "warnings",
            "trusted_types",
            "types_approved_by",
            "imported_globals",
            "input_schema",
            "sample_uri",
            "example_rows",
            "deployments",
            "uploaded_by",
            "created_at",
            "notes",
            "tags",
            "aliases",
            "metrics",
            "reference_uri",
            "drift_thresholds",
        ]
        read_only_fields = fields

    def get_deployments(self, obj: ModelVersion) -> list[str]:
        return sorted(d.name for d in obj.deployments.all())

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(a.name for a in obj.aliases.all())


class VersionUpdateSerializer(serializers.Serializer):
    """What may change on a version: what people say about it, not what it is."""

    notes = NotesField(required=False)
    tags = TagsField(required=False, help_text='Labels, e.g. ["baseline", "q3"].')


class VersionUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        error_messages={
            "required": st.NO_FILE_MESSAGE,
            "invalid": st.NO_FILE_MESSAGE,
            "no_name": st.NO_FILE_MESSAGE,
        },
    )
    model_type = serializers.ChoiceField(
        choices=st.MODEL_TYPE_CHOICES,
        default=st.DEFAULT_MODEL_TYPE,
        error_messages={"invalid_choice": st.MODEL_TYPE_MESSAGE},
    )
    approve_types = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="Admins only: skops types, or pickle/joblib globals beyond the allowlist, "
        "to trust for this upload (recorded on the version).",
    )
    notes = NotesField(required=False)
    tags = TagsField(
        required=False, help_text="Labels: repeat the field, or separate them with commas."
    )
    metrics = MetricsField(
        required=False,
        help_text=f"A flat JSON object of numbers or short texts, e.g. {st.METRICS_EXAMPLE}.",
    )
    sample = serializers.FileField(
        required=False,
        help_text="Optional CSV of a few real rows with a header naming the columns: the input "
        "schema is learned from it and the upload check predicts on its rows. For a model "
        "registered without input_size, its header also gives the number of features when the "
        "artifact does not know it.",
    )


class AliasSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelAlias
        fields = ["name", "version", "updated_by", "updated_at"]
        read_only_fields = fields


class AliasSetSerializer(serializers.Serializer):
    version = VersionRefField(help_text="The version number (or another alias) to point at.")


class RegistryEventSerializer(serializers.ModelSerializer):
    """One registry audit entry: aliases set, moved or removed; notes and tags edited."""

    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = RegistryEvent
        fields = ["created_at", "actor", "source_ip", "via", "action", "message"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    previous_version = serializers.IntegerField(
        source="previous_version.version", read_only=True, default=None
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    traffic = serializers.SerializerMethodField(
        help_text="Who answers: primary and canary by weight (percent); a shadow gets copies."
    )
    canary_analysis = serializers.JSONField(read_only=True)
    autoscaling = serializers.JSONField(read_only=True)
    traffic_metrics = serializers.SerializerMethodField(
        help_text=(
            "Per version (as a string): requests_per_s, error_rate, p99_ms, as last measured; "
            "a shadow's copies_dropped (copies it fell too far behind to get; local runtime)."
        )
    )

    class Meta:
        model = Deployment
        fields = [
            "name",
            "model",
            "version",
            "previous_version",
            "traffic",
            "canary_analysis",
            "traffic_metrics",
            "autoscaling",
            "replicas",
            "status",
            "status_reason",
            "endpoint",
            "grpc_endpoint",
            "replicas_ready",
            "restarts",
            "cpu_request",
            "memory_request",
            "cpu_limit",
            "memory_limit",
            "created_by",
            "created_at",
            "updated_at",
            "log_sample",
            "archived_at",
        ]
        read_only_fields = fields

    def get_traffic(self, obj: Deployment) -> list[dict]:
        return TrafficSerializer(obj.traffic(), many=True).data

    def get_traffic_metrics(self, obj: Deployment) -> dict:
        return dict((obj.traffic_state or {}).get("metrics") or {})


class DeploymentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(validators=[validate_name], error_messages=_NAME_ERRORS)
    model = serializers.CharField(
        max_length=st.NAME_MAX_LENGTH,
        error_messages={"required": _MODEL_REQUIRED, "blank": _MODEL_REQUIRED},
    )
    version = VersionRefField(
        required=False,
        help_text='A version number or an alias such as "champion"; defaults to the '
        "model's latest version.",
    )
    replicas = _replicas(default=st.DEFAULT_REPLICAS)
    cpu_request = _quantity("cpu_request")
    memory_request = _quantity("memory_request")
    cpu_limit = _quantity("cpu_limit", allow_blank=True)
    memory_limit = _quantity("memory_limit", allow_blank=True)
    log_sample = _log_sample(
        allow_null=True,
        default=None,
        help_text="The share of predictions written to the prediction log (0 to 1); "
        "default: the console's PREDICTION_LOG_SAMPLE.",
    )

    # A taken name is a 409 from lifecycle.create_deployment (the unique constraint decides,
    # so 20 racing requests get one deployment and 19 identical conflicts).

    def validate(self, attrs: dict) -> dict:
        model = RegisteredModel.objects.filter(name=attrs["model"]).first()
        if model is None:
            raise serializers.ValidationError({"model": f"no model named {attrs['model']!r}"})
        versions = model.versions.order_by("-version")
        if "version" in attrs:
            try:
                version = find_version(model, attrs["version"])
            except VersionNotFound as exc:
                raise serializers.ValidationError({"version": str(exc)}) from None
        else:
            version = versions.first()
            if version is None:
                raise serializers.ValidationError(
                    {"model": f"model {model.name} has no versions yet: upload one first"}
                )
        attrs["model_version"] = version
        return attrs


class AnalysisSerializer(serializers.Serializer):
    """Automatic canary analysis: the weight moves through `steps` every `interval_s` while the
    canary's error rate and p99 hold, and drops to 0 by itself when either does not."""

    steps = serializers.ListField(
        child=serializers.IntegerField(min_value=st.MIN_WEIGHT + 1, max_value=st.MAX_WEIGHT),
        min_length=1,
        max_length=st.MAX_ANALYSIS_STEPS,
        default=list(st.DEFAULT_ANALYSIS_STEPS),
    )
    interval_s = serializers.FloatField(
        min_value=st.MIN_ANALYSIS_INTERVAL_SECONDS,
        max_value=st.MAX_ANALYSIS_INTERVAL_SECONDS,
        default=st.DEFAULT_ANALYSIS_INTERVAL_SECONDS,
    )
    max_error_rate = serializers.FloatField(
        min_value=0, max_value=1, default=st.DEFAULT_MAX_ERROR_RATE
    )
    max_p99_ms = serializers.FloatField(min_value=0.1, default=st.DEFAULT_MAX_P99_MS)

    def validate_steps(self, steps: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise serializers.ValidationError(
                "List the weights in increasing order, such as [10, 25, 50, 100]."
            )
        return steps


class CanarySerializer(serializers.Serializer):
    version = VersionRefField(help_text="A version number or an alias.")
    weight = serializers.IntegerField(
        min_value=st.MIN_WEIGHT,
        max_value=st.MAX_WEIGHT,
        required=False,
        help_text="Percent of the requests the canary answers (default 0).",
        error_messages={
            "min_value": st.WEIGHT_MESSAGE,
            "max_value": st.WEIGHT_MESSAGE,
            "invalid": st.WEIGHT_MESSAGE,
        },
    )
    analysis = AnalysisSerializer(required=False, allow_null=True)


class ShadowSerializer(serializers.Serializer):
    version = VersionRefField(help_text="A version number or an alias.")


class AutoscalingSerializer(serializers.Serializer):
    min = _replicas()
    max = _replicas()
    target_cpu = serializers.IntegerField(
        min_value=st.MIN_TARGET_CPU, max_value=st.MAX_TARGET_CPU, default=st.DEFAULT_TARGET_CPU
    )

    def validate(self, attrs: dict) -> dict:
        if attrs["min"] < 1 or attrs["max"] < attrs["min"]:
            raise serializers.ValidationError(
                {"max": "Use 1 <= min <= max (replicas the autoscaler may choose between)."}
            )
        return attrs


class DeploymentUpdateSerializer(serializers.Serializer):
    version = VersionRefField(required=False, help_text="A version number or an alias.")
    replicas = _replicas(required=False)
    log_sample = _log_sample(
        help_text="The share of predictions written to the prediction log (0 to 1); the "
        "serving processes are rolled to it."
    )
    canary = CanarySerializer(
        required=False,
        allow_null=True,
        help_text="A version on part of the requests; null ends it.",
    )
    shadow = ShadowSerializer(
        required=False,
        allow_null=True,
        help_text="A version that gets a copy of every request (answers discarded); null ends it.",
    )
    autoscaling = AutoscalingSerializer(
        required=False, allow_null=True, help_text="Kubernetes only; null turns it off."
    )


class TrafficSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    weight = serializers.IntegerField()
    role = serializers.ChoiceField(choices=st.TRAFFIC_ROLES)


class EventSerializer(serializers.ModelSerializer):
    """One audit entry: who (`actor`, empty for the system), what, when, and from where."""

    actor = serializers.CharField(source="actor_name", read_only=True)
    source_ip = serializers.IPAddressField(read_only=True, allow_null=True)
    via = serializers.CharField(read_only=True, help_text="api, ui or worker")

    class Meta:
        model = DeploymentEvent
        fields = ["created_at", "actor", "source_ip", "via", "action", "status", "message"]
        read_only_fields = fields
