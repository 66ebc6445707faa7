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
            "input_schema",
            "sample_uri",
            "example_rows",
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
    sample = serializers.FileField(
        required=False,
        help_text="Optional CSV of a few real rows with a header naming the columns: the input "
        "schema is learned from it and the upload check predicts on its rows.",
    )


class DeploymentSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.model.name", read_only=True)
    version = serializers.IntegerField(source="model_version.version", read_only=True)
    previous_version = serializers.IntegerField(
        source="previous_version.version", read_only=True, default=None
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "name",
            "model",
            "version",
            "previous_version",
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


class DeploymentUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)
    replicas = _replicas(required=False)


class EventSerializer(serializers.ModelSerializer):
    """One audit entry: who (`actor`, empty for the system), what, when, and from where."""

    actor = serializers.CharField(source="actor_name", read_only=True)
    source_ip = serializers.IPAddressField(read_only=True, allow_null=True)
    via = serializers.CharField(read_only=True, help_text="api, ui or worker")

    class Meta:
        model = DeploymentEvent
        fields = ["created_at", "actor", "source_ip", "via", "action", "status", "message"]
        read_only_fields = fields
