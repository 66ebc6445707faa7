"""REST API (docs/architecture.md, "Contracts"). Views validate input and call registry and
lifecycle functions."""

from __future__ import annotations

from django.db.models import Max, QuerySet
from django.http import Http404, HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.fields import DateTimeField
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import constants as st
from deployments import lifecycle, removal
from deployments.api.parsers import CSVParser, FiniteJSONParser, JSONParser
from deployments.api.permissions import ReadOrDeploy
from deployments.api.serializers import (
    AliasSerializer,
    AliasSetSerializer,
    DeploymentCreateSerializer,
    DeploymentSerializer,
    DeploymentUpdateSerializer,
    EventSerializer,
    ModelSerializer,
    RegistryEventSerializer,
    VersionSerializer,
    VersionUpdateSerializer,
    VersionUploadSerializer,
)
from deployments.artifacts.stores import StoreError
from deployments.filters import DeploymentFilter, ModelFilter
from deployments.logs import deployment_logs
from deployments.models import (
    Deployment,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    traffic_of,
)
from deployments.observability import metrics as observed_metrics
from deployments.observability import prediction_log, window_seconds
from deployments.observability.drift import DriftUnavailable, deployment_drift
from deployments.observability.prometheus import PrometheusError
from deployments.observability.reference import store_reference
from deployments.predictions import forward_prediction
from deployments.registry.aliases import (
    VersionNotFound,
    could_be_alias,
    find_version,
    remove_alias,
    set_alias,
)
from deployments.registry.compare import comparison
from deployments.registry.errors import ArtifactRejected
from deployments.registry.metadata import MetadataError, describe_version
from deployments.registry.upload_handler import upload_refusal
from deployments.registry.versions import upload_version
from deployments.runtimes import kubernetes_options
from deployments.specs import serving_spec
from deployments.traffic.changes import change_traffic, promote


def _window(request: Request, default: str) -> int:
    try:
        return window_seconds(request.query_params.get("window"), default)
    except ValueError as exc:
        raise ValidationError({"window": str(exc)}) from None


def _lifecycle_response(call, *args, **kwargs) -> Response:
    try:
        deployment = call(*args, **kwargs)
    except lifecycle.LifecycleError as exc:
        return Response({"detail": str(exc)}, status=exc.code)
    return Response(DeploymentSerializer(deployment).data, status=status.HTTP_202_ACCEPTED)


def _version_of(deployment: Deployment, ref: int | str, field: str) -> ModelVersion:
    """The version of the deployment's model that `ref` names (a number or an alias)."""
    try:
        return find_version(deployment.model_version.model, ref)
    except VersionNotFound as exc:
        raise ValidationError({field: [str(exc)]}) from None


def _traffic_args(deployment: Deployment, traffic: dict) -> dict:
    """The API's `canary`, `shadow`, `autoscaling` as `change_traffic` arguments."""
    args: dict = {}
    if "canary" in traffic:
        canary = traffic["canary"]
        if canary is None:
            args["canary"] = None
        else:
            args["canary"] = _version_of(deployment, canary["version"], "canary")
            args["weight"] = canary.get("weight")
            analysis = canary.get("analysis")
            args["analysis"] = dict(analysis) if analysis is not None else None
    if "shadow" in traffic:
        shadow = traffic["shadow"]
        args["shadow"] = (
            None if shadow is None else _version_of(deployment, shadow["version"], "shadow")
        )
    if "autoscaling" in traffic:
        scaling = traffic["autoscaling"]
        args["autoscaling"] = dict(scaling) if scaling is not None else None
    return args


class ModelViewSet(
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ModelSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"

    filter_backends = [DjangoFilterBackend]
    filterset_class = ModelFilter

    def list(self, request: Request, *args, **kwargs) -> Response:
        """Registered models, by name; search with `name` (contains), filter by `job`, sort
        with `sort`; archived models only with `archived=include` or `archived=only`."""
        return super().list(request, *args, **kwargs)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # Only the list is filtered: an archived model is still found by its name.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_queryset(self):
        return RegisteredModel.objects.select_related("created_by").annotate(
            latest_version=Max("versions__version")
        )

    def get_object(self) -> RegisteredModel:
        try:
            return super().get_object()
        except Http404:
            raise NotFound(f"No model named {self.kwargs['name']!r}.") from None

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter("a", str, required=True, description="A version number or alias."),
            OpenApiParameter("b", str, required=True, description="A version number or alias."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, name: str) -> Response:
        """Two versions side by side: schema, classes, libraries, metrics, size, sha, notes."""
        model = self.get_object()
        chosen = {}
        for key in ("a", "b"):
            ref = request.query_params.get(key, "").strip()
            if not ref:
                raise ValidationError({key: [f"Give ?{key}= a version number or an alias."]})
            try:
                chosen[key] = find_version(model, ref)
            except VersionNotFound as exc:
                raise ValidationError({key: [str(exc)]}) from None
        return Response(comparison(chosen["a"], chosen["b"]))

    @extend_schema(responses=RegistryEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, name: str) -> Response:
        """The model's registry history (aliases, notes, tags), newest first."""
        page = self.paginate_queryset(self.get_object().events.all())
        return self.get_paginated_response(RegistryEventSerializer(page, many=True).data)

    @extend_schema(responses={204: None, 409: OpenApiTypes.OBJECT})
    def destroy(self, request: Request, name: str) -> Response:
        """Delete a model with no versions; 409 (saying why) while it has some."""
        try:
            removal.delete_model(self.get_object(), actor=request.user)
        except removal.RemovalRefused as exc:
            return Response({"detail": str(exc)}, status=exc.code)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: ModelSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, name: str) -> Response:
        """Hide the model from the list (`archived=include` shows it); nothing else changes."""
        removal.archive_model(self.get_object(), actor=request.user)
        return Response(ModelSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={200: ModelSerializer})
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, name: str) -> Response:
        """Show the model in the list again."""
        removal.archive_model(self.get_object(), archived=False, actor=request.user)
        return Response(ModelSerializer(self.get_object()).data)


@extend_schema(
    parameters=[
        OpenApiParameter("model_name", str, OpenApiParameter.PATH, description="The model's name."),
    ]
)
class VersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = VersionSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "version"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_model(self) -> RegisteredModel:
        model = RegisteredModel.objects.filter(name=self.kwargs["model_name"]).first()
        if model is None:
            raise NotFound(f"No model named {self.kwargs['model_name']!r}.")
        return model

    def get_object(self) -> ModelVersion:
        try:
            return super().get_object()
        except Http404:
            self.get_model()
            raise NotFound(
                f"{self.kwargs['model_name']} has no version {self.kwargs['version']!r}."
            ) from None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema is being generated
            return ModelVersion.objects.none()
        versions = (
            ModelVersion.objects.filter(model__name=self.kwargs["model_name"])
            .select_related("model", "uploaded_by", "types_approved_by")
            .prefetch_related("deployments", "aliases")
        )
        if self.action == "list":
            params = self.request.query_params
            for param in ("model_type", "sha256"):
                if params.get(param):
                    versions = versions.filter(**{param: params[param]})
            if params.get("uploaded_by"):
                versions = versions.filter(uploaded_by__username=params["uploaded_by"])
        return versions

    @extend_schema(
        parameters=[
            OpenApiParameter("model_type", str, enum=list(st.MODEL_TYPE_LABELS)),
            OpenApiParameter("sha256", str, description="Versions with this exact digest."),
            OpenApiParameter("uploaded_by", str, description="A username."),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        """The model's versions, newest first (paginated with `limit` and `offset`)."""
        self.get_model()  # 404 for an unknown model rather than an empty list
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": VersionUploadSerializer},
        responses={201: VersionSerializer, 400: OpenApiTypes.OBJECT, 413: OpenApiTypes.OBJECT},
    )
    def create(self, request: Request, model_name: str) -> Response:
        """Upload an artifact; it is validated in a sandbox before a version is recorded."""
        model = self.get_model()
        # request.data runs the multipart parser, which streams the file to disk and hashes
        # it (HashingUploadHandler); a file over MAX_ARTIFACT_BYTES is dropped there.
        data = request.data
        refusal = upload_refusal(request)
        if refusal:
            return Response({"file": [refusal]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        form = VersionUploadSerializer(data=data)
        form.is_valid(raise_exception=True)
        try:
            version = upload_version(
                model,
                form.validated_data["file"],
                model_type=form.validated_data["model_type"],
                uploaded_by=request.user,
                approve_types=form.validated_data.get("approve_types", []),
                notes=form.validated_data.get("notes", ""),
                tags=form.validated_data.get("tags", []),
                metrics=form.validated_data.get("metrics", {}),
                sample=form.validated_data.get("sample"),
            )
        except ArtifactRejected as exc:
            return Response({"file": [str(exc)]}, status=exc.status_code)
        except StoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VersionUpdateSerializer, responses=VersionSerializer)
    def partial_update(self, request: Request, model_name: str, version: str) -> Response:
        """Change a version's `notes` and/or `tags` (audited on the model)."""
        target = self.get_object()
        form = VersionUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        describe_version(target, actor=request.user, **form.validated_data)
        return Response(VersionSerializer(self.get_object()).data)

    @extend_schema(
        request={"text/csv": OpenApiTypes.BINARY},
        responses={200: VersionSerializer, 400: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["put"], parser_classes=[CSVParser])
    def reference(self, request: Request, model_name: str, version: str) -> Response:
        """Upload the version's reference rows for drift: a CSV body (Content-Type text/csv)
        whose header names the features; `?thresholds={"feature": psi}` sets thresholds."""
        target = self.get_object()
        try:
            store_reference(target, request.data, request.query_params.get("thresholds"))
        except ValueError as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        except StoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(VersionSerializer(target).data)

    @extend_schema(responses={204: None, 409: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def destroy(self, request: Request, model_name: str, version: str) -> Response:
        """Delete a version and its artifact; 409 while any deployment refers to it."""
        try:
            removal.delete_model_version(self.get_object(), actor=request.user)
        except removal.RemovalRefused as exc:
            return Response({"detail": str(exc)}, status=exc.code)
        except StoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    parameters=[
        OpenApiParameter("model_name", str, OpenApiParameter.PATH, description="The model's name."),
        OpenApiParameter("name", str, OpenApiParameter.PATH, description="The alias."),
    ]
)
class AliasViewSet(viewsets.GenericViewSet):
    """A model's aliases: `PUT .../aliases/champion/ {"version": 2}` sets or moves one."""

    serializer_class = AliasSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    pagination_class = None

    def get_model(self) -> RegisteredModel:
        model = RegisteredModel.objects.filter(name=self.kwargs["model_name"]).first()
        if model is None:
            raise NotFound(f"No model named {self.kwargs['model_name']!r}.")
        return model

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelAlias.objects.none()
        return ModelAlias.objects.filter(model=self.get_model()).select_related(
            "version", "updated_by"
        )

    def list(self, request: Request, model_name: str) -> Response:
        """Every alias of the model and the version it points at."""
        return Response(AliasSerializer(self.get_queryset(), many=True).data)

    def retrieve(self, request: Request, model_name: str, name: str) -> Response:
        alias = self.get_queryset().filter(name=name).first() if could_be_alias(name) else None
        if alias is None:
            raise NotFound(f"{model_name} has no alias {name!r}.")
        return Response(AliasSerializer(alias).data)

    @extend_schema(request=AliasSetSerializer, responses=AliasSerializer)
    def update(self, request: Request, model_name: str, name: str) -> Response:
        """Point the alias at a version, creating or moving it (an audited event)."""
        model = self.get_model()
        form = AliasSetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            version = find_version(model, form.validated_data["version"])
        except VersionNotFound as exc:
            raise ValidationError({"version": [str(exc)]}) from None
        try:
            alias = set_alias(model, name, version, actor=request.user)
        except MetadataError as exc:
            field = "name" if exc.field == "alias" else exc.field
            raise ValidationError({field: [str(exc)]}) from None
        return Response(AliasSerializer(alias).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, model_name: str, name: str) -> Response:
        """Remove the alias; idempotent. Deployments made by it keep their version."""
        remove_alias(self.get_model(), name, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# The list is the console's hottest read (dashboards and scripts poll it): rows are read as
# plain values and shaped like DeploymentSerializer without building model instances or DRF
# fields, about ten times cheaper per row. test_list_rows_match_the_detail keeps them equal.
_LIST_COLUMNS = {
    "name": "name",
    "model": "model_version__model__name",
    "version": "model_version__version",
    "previous_version": "previous_version__version",
    "replicas": "replicas",
    "status": "status",
    "status_reason": "status_reason",
    "endpoint": "endpoint",
    "grpc_endpoint": "grpc_endpoint",
    "replicas_ready": "replicas_ready",
    "restarts": "restarts",
    "cpu_request": "cpu_request",
    "memory_request": "memory_request",
    "cpu_limit": "cpu_limit",
    "memory_limit": "memory_limit",
    "created_by": "created_by__username",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "log_sample": "log_sample",
    "archived_at": "archived_at",
    "canary_analysis": "canary_analysis",
    "autoscaling": "autoscaling",
}
# Read besides, for the `traffic` and `traffic_metrics` of each row.
_TRAFFIC_COLUMNS = (
    "canary_version__version",
    "canary_weight",
    "shadow_version__version",
    "traffic_state",
)
_TIMESTAMP = DateTimeField()


def _list_rows(ids: list[int]) -> list[dict]:
    found = {
        row["pk"]: row
        for row in Deployment.objects.filter(pk__in=ids).values(
            "pk", *_LIST_COLUMNS.values(), *_TRAFFIC_COLUMNS
        )
    }
    rows = []
    for pk in ids:
        if pk in found:
            seen = found[pk]
            row = {key: seen[column] for key, column in _LIST_COLUMNS.items()}
            row["traffic"] = traffic_of(
                seen["model_version__version"],
                seen["canary_version__version"],
                seen["canary_weight"],
                seen["shadow_version__version"],
            )
            row["traffic_metrics"] = dict((seen["traffic_state"] or {}).get("metrics") or {})
            row["created_at"] = _TIMESTAMP.to_representation(row["created_at"])
            row["updated_at"] = _TIMESTAMP.to_representation(row["updated_at"])
            if row["archived_at"] is not None:
                row["archived_at"] = _TIMESTAMP.to_representation(row["archived_at"])
            rows.append(row)
    return rows


class DeploymentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DeploymentSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"
    queryset = Deployment.objects.select_related(
        "model_version__model", "previous_version", "created_by", "canary_version", "shadow_version"
    )
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeploymentFilter

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # Only the list is filtered: an archived deployment is still found by its name.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def list(self, request: Request) -> Response:
        """Deployments, a page at a time (`limit`, `offset`): search with `name` (contains),
        filter by `status`, `model` and `job`, sort with `sort` (default: by name); archived
        ones only with `archived=include` or `archived=only`."""
        # Page over the narrow table first, then join the page's rows only: OFFSET on the
        # joined query would join every skipped row too (19 ms at offset 5,000 of 10,000).
        ids = self.paginate_queryset(
            self.filter_queryset(Deployment.objects.values_list("pk", flat=True))
        )
        return self.get_paginated_response(_list_rows(list(ids)))

    def get_object(self) -> Deployment:
        try:
            return super().get_object()
        except Http404:
            raise NotFound(f"No deployment named {self.kwargs['name']!r}.") from None

    @extend_schema(request=DeploymentCreateSerializer, responses={202: DeploymentSerializer})
    def create(self, request: Request) -> Response:
        """Create a deployment; it is deployed by a worker (status `pending`, then onwards)."""
        form = DeploymentCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        return _lifecycle_response(
            lifecycle.create_deployment,
            name=data["name"],
            version=data["model_version"],
            replicas=data["replicas"],
            actor=request.user,
            log_sample=data["log_sample"],
            **{k: data[k] for k in st.RESOURCE_FIELDS},
        )

    @extend_schema(request=DeploymentUpdateSerializer, responses={202: DeploymentSerializer})
    def partial_update(self, request: Request, name: str) -> Response:
        """Change `version`, `replicas` and/or `log_sample` (rolls the deployment), or its
        traffic: `canary`, `shadow` (null ends either), `autoscaling`."""
        deployment = self.get_object()
        form = DeploymentUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        traffic = {key: data[key] for key in ("canary", "shadow", "autoscaling") if key in data}
        if traffic and ({"version", "replicas", "log_sample"} & set(data)):
            raise ValidationError(
                {
                    "canary": [
                        "Change the traffic in a request of its own, not with version, "
                        "replicas or log_sample."
                    ]
                }
            )
        if traffic:
            return _lifecycle_response(
                change_traffic, deployment, actor=request.user, **_traffic_args(deployment, traffic)
            )
        version = None
        if "version" in data:
            version = _version_of(deployment, data["version"], "version")
        return _lifecycle_response(
            lifecycle.change,
            deployment,
            version=version,
            replicas=data.get("replicas"),
            log_sample=data.get("log_sample"),
            actor=request.user,
        )

    @extend_schema(responses={204: None, 409: OpenApiTypes.OBJECT})
    def destroy(self, request: Request, name: str) -> Response:
        """Delete a stopped deployment and its history; its name becomes free. 409 otherwise."""
        try:
            removal.delete_deployment(self.get_object(), actor=request.user)
        except removal.RemovalRefused as exc:
            return Response({"detail": str(exc)}, status=exc.code)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: DeploymentSerializer, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, name: str) -> Response:
        """Hide a stopped deployment from the list (`archived=include` shows it)."""
        try:
            deployment = removal.archive_deployment(self.get_object(), actor=request.user)
        except removal.RemovalRefused as exc:
            return Response({"detail": str(exc)}, status=exc.code)
        return Response(DeploymentSerializer(deployment).data)

    @extend_schema(request=None, responses={200: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, name: str) -> Response:
        """Show the deployment in the list again."""
        deployment = removal.archive_deployment(
            self.get_object(), archived=False, actor=request.user
        )
        return Response(DeploymentSerializer(deployment).data)

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, name: str) -> Response:
        """Make the canary the primary: it answers every request."""
        return _lifecycle_response(promote, self.get_object(), actor=request.user)

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def deploy(self, request: Request, name: str) -> Response:
        """Deploy again (a stopped or failed deployment)."""
        return _lifecycle_response(lifecycle.deploy, self.get_object(), actor=request.user)

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def undeploy(self, request: Request, name: str) -> Response:
        """Stop serving; idempotent."""
        return _lifecycle_response(lifecycle.undeploy, self.get_object(), actor=request.user)

    @extend_schema(request=None, responses={202: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, name: str) -> Response:
        """Return to the previously served version."""
        return _lifecycle_response(lifecycle.rollback, self.get_object(), actor=request.user)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"], parser_classes=[FiniteJSONParser])
    def predict(self, request: Request, name: str) -> Response:
        """Forward a prediction body (same forms as serving's /predict) to the deployment."""
        result = forward_prediction(self.get_object(), request.data)
        return Response(result.body, status=result.status_code)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "tail",
                int,
                description=f"Lines from the end (default {st.LOG_TAIL_DEFAULT}, "
                f"at most {st.LOG_TAIL_MAX}).",
            )
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, name: str) -> Response:
        """The last lines the deployment's serving processes wrote: {"lines": [...]}."""
        deployment = self.get_object()
        raw = request.query_params.get("tail", str(st.LOG_TAIL_DEFAULT))
        if not raw.isdigit() or not 1 <= int(raw) <= st.LOG_TAIL_MAX:
            raise ValidationError({"tail": f"use a whole number from 1 to {st.LOG_TAIL_MAX}"})
        return Response({"lines": deployment_logs(deployment, int(raw))})

    @extend_schema(
        parameters=[OpenApiParameter("window", str, enum=[*st.WINDOWS])],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, name: str) -> Response:
        """Requests, errors and rows per second and p50/p99 latency over a window:
        {"step_s", "series": {name: [[unix_ts, value], ...]}}."""
        deployment = self.get_object()
        window = _window(request, st.METRICS_WINDOW_DEFAULT)
        try:
            return Response(observed_metrics.deployment_metrics(deployment, window))
        except PrometheusError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit",
                int,
                description=f"Records (default {st.PREDICTIONS_LIMIT_DEFAULT}, "
                f"at most {st.PREDICTIONS_LIMIT_MAX}).",
            )
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def predictions(self, request: Request, name: str) -> Response:
        """The newest prediction-log records: {"records": [{ts, request_id, version,
        latency_ms, inputs, outputs}, ...]}, newest first."""
        deployment = self.get_object()
        raw = request.query_params.get("limit", str(st.PREDICTIONS_LIMIT_DEFAULT))
        if not raw.isdigit() or not 1 <= int(raw) <= st.PREDICTIONS_LIMIT_MAX:
            raise ValidationError(
                {"limit": f"use a whole number from 1 to {st.PREDICTIONS_LIMIT_MAX}"}
            )
        try:
            records = prediction_log.latest(deployment, int(raw))
        except prediction_log.LogUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"records": records})

    @extend_schema(
        parameters=[OpenApiParameter("window", str, enum=[*st.WINDOWS])],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def drift(self, request: Request, name: str) -> Response:
        """Drift of the logged inputs in a window against the version's reference rows:
        {"features": [{"name", "psi", "p_value", "drifted"}], "rows": N}."""
        deployment = self.get_object()
        window = _window(request, st.DRIFT_WINDOW_DEFAULT)
        try:
            return Response(deployment_drift(deployment, window))
        except DriftUnavailable as exc:
            return Response({"features": [], "rows": 0, "detail": str(exc)})
        except (StoreError, prediction_log.LogUnavailable) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)

    @extend_schema(
        responses={(200, "application/yaml"): OpenApiTypes.STR},
        description="The deployment as values of charts/model-serving (a YAML file): `helm "
        "template` of them renders the objects the kubernetes runtime applies.",
    )
    @action(detail=True, methods=["get"], url_path="helm-values")
    def helm_values(self, request: Request, name: str) -> HttpResponse:
        """Download the deployment as Helm values (GitOps)."""
        # Imported here: the kubernetes client library is large and only this action needs it.
        from deployments.runtimes.kubernetes.helm_values import helm_values_yaml

        deployment = self.get_object()
        text = helm_values_yaml(serving_spec(deployment), **kubernetes_options())
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{deployment.name}-values.yaml"'
        return response

    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, name: str) -> Response:
        """The deployment's history, newest first."""
        page = self.paginate_queryset(self.get_object().events.all())
        return self.get_paginated_response(EventSerializer(page, many=True).data)
