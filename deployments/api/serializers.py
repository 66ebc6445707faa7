"""API shapes. Write serializers are separate from read ones so internal fields never leak."""

from __future__ import annotations

from rest_framework import serializers

from deployments import constants as st
from deployments.models import (
    NAME,
    QUANTITY,
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RegisteredModel,
)


def _replicas(**kwargs: object) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=st.MIN_REPLICAS,
        max_value=st.MAX_REPLICAS,
        **kwargs,
    )


def _quantity(name: str, **kwargs: object) -> serializers.CharField:
    return serializers.CharField(
        max_length=st.QUANTITY_MAX_LENGTH,
        default=st.DEFAULT_RESOURCES[name],
        validators=[QUANTITY],
        **kwargs,
    )


class ModelSerializer(serializers.ModelSerializer):
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
        ]
        read_only_fields = ["created_by", "created_at", "latest_version"]

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
            "deployments",
            "uploaded_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_deployments(self, obj: ModelVersion) -> list[str]:
        return sorted(d.name for d in obj.deployments.all())


class VersionUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    model_type = serializers.ChoiceField(
        choices=st.MODEL_TYPE_CHOICES, default=st.DEFAULT_MODEL_TYPE
    )
    approve_types = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="Admins only: skops types, or pickle/joblib globals beyond the allowlist, "
        "to trust for this upload (recorded on the version).",
    )


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
        help_text="Per version (as a string): requests_per_s, error_rate, p99_ms, as last measured."
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
            "replicas_ready",
            "restarts",
            "cpu_request",
            "memory_request",
            "cpu_limit",
            "memory_limit",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_traffic(self, obj: Deployment) -> list[dict]:
        return TrafficSerializer(obj.traffic(), many=True).data

    def get_traffic_metrics(self, obj: Deployment) -> dict:
        return dict((obj.traffic_state or {}).get("metrics") or {})


class DeploymentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=st.NAME_MAX_LENGTH, validators=[NAME])
    model = serializers.CharField(max_length=st.NAME_MAX_LENGTH)
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="Defaults to the model's latest version."
    )
    replicas = _replicas(default=st.DEFAULT_REPLICAS)
    cpu_request = _quantity("cpu_request")
    memory_request = _quantity("memory_request")
    cpu_limit = _quantity("cpu_limit", allow_blank=True)
    memory_limit = _quantity("memory_limit", allow_blank=True)

    # A taken name is a 409 from lifecycle.create_deployment (the unique constraint decides,
    # so 20 racing requests get one deployment and 19 identical conflicts).

    def validate(self, attrs: dict) -> dict:
        model = RegisteredModel.objects.filter(name=attrs["model"]).first()
        if model is None:
            raise serializers.ValidationError({"model": f"no model named {attrs['model']!r}"})
        versions = model.versions.order_by("-version")
        if "version" in attrs:
            version = versions.filter(version=attrs["version"]).first()
            if version is None:
                raise serializers.ValidationError(
                    {"version": f"model {model.name} has no version {attrs['version']}"}
                )
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
    version = serializers.IntegerField(min_value=1)
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
    version = serializers.IntegerField(min_value=1)


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
    version = serializers.IntegerField(min_value=1, required=False)
    replicas = _replicas(required=False)
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
