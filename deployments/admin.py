from django.contrib import admin

from deployments.models import (
    ApiToken,
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RegisteredModel,
)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "job", "input_size", "created_by", "created_at"]
    search_fields = ["name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["model", "version", "model_type", "sha256", "size", "uploaded_by", "created_at"]
    list_filter = ["model"]
    # The artifact and what validation learned are facts about a stored blob: read-only.
    readonly_fields = [
        "model",
        "version",
        "model_type",
        "uri",
        "sha256",
        "size",
        "estimator_class",
        "n_features",
        "feature_names",
        "classes",
        "library_versions",
        "warnings",
        "trusted_types",
        "types_approved_by",
        "imported_globals",
        "uploaded_by",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # versions come only through an upload, which validates them

    def delete_model(self, request, obj: ModelVersion) -> None:
        from deployments.registry.versions import delete_version

        delete_version(obj)  # the blob goes too

    def delete_queryset(self, request, queryset) -> None:
        from deployments.registry.versions import delete_version

        for version in queryset:
            delete_version(version)


class EventInline(admin.TabularInline):
    model = DeploymentEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor_name", "source_ip", "via", "action", "status", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["name", "model_version", "status", "replicas", "replicas_ready", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = [
        "status",
        "status_reason",
        "endpoint",
        "replicas_ready",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [EventInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only the hash is stored: an admin can see who has a token and revoke it, not read it."""

    list_display = ["user", "name", "prefix", "created_at", "expires_at"]
    readonly_fields = ["user", "name", "prefix", "digest", "created_at", "expires_at"]

    def has_add_permission(self, request) -> bool:
        return False  # issued on the Tokens page, by the API or `manage.py drf_create_token`
