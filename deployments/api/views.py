"""REST API (docs/architecture.md, "Contracts"). Views validate input and call registry and
lifecycle functions."""

from __future__ import annotations

from django.db.models import Max
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.fields import DateTimeField
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import constants as st
from deployments import lifecycle
from deployments.api.parsers import FiniteJSONParser, JSONParser
from deployments.api.permissions import ReadOrDeploy
from deployments.api.serializers import (
    DeploymentCreateSerializer,
    DeploymentSerializer,
    DeploymentUpdateSerializer,
    EventSerializer,
    ModelSerializer,
    VersionSerializer,
    VersionUploadSerializer,
)
from deployments.artifacts.stores import StoreError
from deployments.logs import deployment_logs
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.predictions import forward_prediction
from deployments.registry.errors import ArtifactRejected
from deployments.registry.upload_handler import upload_refusal
from deployments.registry.versions import VersionInUse, delete_version, upload_version


def _lifecycle_response(call, *args, **kwargs) -> Response:
    try:
        deployment = call(*args, **kwargs)
    except lifecycle.LifecycleError as exc:
        return Response({"detail": str(exc)}, status=exc.code)
    return Response(DeploymentSerializer(deployment).data, status=status.HTTP_202_ACCEPTED)


class ModelViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ModelSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="Models whose name contains this text."),
            OpenApiParameter("job", str, enum=list(st.JOBS)),
        ]
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        """Registered models, by name; filter with `name` (contains) and `job`."""
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        models = RegisteredModel.objects.select_related("created_by").annotate(
            latest_version=Max("versions__version")
        )
        if self.action == "list":
            params = self.request.query_params
            if params.get("name"):
                models = models.filter(name__icontains=params["name"])
            if params.get("job"):
                models = models.filter(job=params["job"])
        return models

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)


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
        return get_object_or_404(RegisteredModel, name=self.kwargs["model_name"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema is being generated
            return ModelVersion.objects.none()
        versions = (
            ModelVersion.objects.filter(model__name=self.kwargs["model_name"])
            .select_related("model", "uploaded_by", "types_approved_by")
            .prefetch_related("deployments")
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
                sample=form.validated_data.get("sample"),
            )
        except ArtifactRejected as exc:
            return Response({"file": [str(exc)]}, status=exc.status_code)
        except StoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None, 409: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def destroy(self, request: Request, model_name: str, version: str) -> Response:
        """Delete a version and its artifact; 409 while any deployment refers to it."""
        try:
            delete_version(self.get_object())
        except VersionInUse as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except StoreError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
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
    "replicas_ready": "replicas_ready",
    "restarts": "restarts",
    "cpu_request": "cpu_request",
    "memory_request": "memory_request",
    "cpu_limit": "cpu_limit",
    "memory_limit": "memory_limit",
    "created_by": "created_by__username",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
_TIMESTAMP = DateTimeField()


def _list_rows(ids: list[int]) -> list[dict]:
    found = {
        row["pk"]: row
        for row in Deployment.objects.filter(pk__in=ids).values("pk", *_LIST_COLUMNS.values())
    }
    rows = []
    for pk in ids:
        if pk in found:
            row = {key: found[pk][column] for key, column in _LIST_COLUMNS.items()}
            row["created_at"] = _TIMESTAMP.to_representation(row["created_at"])
            row["updated_at"] = _TIMESTAMP.to_representation(row["updated_at"])
            rows.append(row)
    return rows


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeploymentSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"
    queryset = Deployment.objects.select_related(
        "model_version__model", "previous_version", "created_by"
    )

    def list(self, request: Request) -> Response:
        """Deployments by name, a page at a time."""
        # Page over the narrow table first, then join the page's rows only: OFFSET on the
        # joined query would join every skipped row too (19 ms at offset 5,000 of 10,000).
        ids = self.paginate_queryset(
            self.filter_queryset(Deployment.objects.order_by("name").values_list("pk", flat=True))
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
            **{k: data[k] for k in st.RESOURCE_FIELDS},
        )

    @extend_schema(request=DeploymentUpdateSerializer, responses={202: DeploymentSerializer})
    def partial_update(self, request: Request, name: str) -> Response:
        """Change `version` and/or `replicas`: rolls the deployment."""
        deployment = self.get_object()
        form = DeploymentUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = None
        if "version" in form.validated_data:
            number = form.validated_data["version"]
            version = ModelVersion.objects.filter(
                model=deployment.model_version.model, version=number
            ).first()
            if version is None:
                raise ValidationError({"version": [f"no version {number} of this model"]})
        return _lifecycle_response(
            lifecycle.change,
            deployment,
            version=version,
            replicas=form.validated_data.get("replicas"),
            actor=request.user,
        )

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

    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, name: str) -> Response:
        """The deployment's history, newest first."""
        page = self.paginate_queryset(self.get_object().events.all())
        return self.get_paginated_response(EventSerializer(page, many=True).data)
