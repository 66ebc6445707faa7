"""REST API (DESIGN.md 3.3). Views validate input and call registry/lifecycle functions."""

from __future__ import annotations

from django.db.models import Max
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deployments import lifecycle
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
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.predictions import forward_prediction
from deployments.registry import upload_version
from deployments.sandbox import ArtifactRejected


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
    queryset = RegisteredModel.objects.select_related("created_by").annotate(
        latest_version=Max("versions__version")
    )

    def perform_create(self, serializer) -> None:
        serializer.save(created_by=self.request.user)


class VersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = VersionSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "version"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_model(self) -> RegisteredModel:
        return get_object_or_404(RegisteredModel, name=self.kwargs["model_name"])

    def get_queryset(self):
        return ModelVersion.objects.filter(model__name=self.kwargs["model_name"]).select_related(
            "model", "uploaded_by"
        )

    @extend_schema(
        request={"multipart/form-data": VersionUploadSerializer}, responses={201: VersionSerializer}
    )
    def create(self, request: Request, model_name: str) -> Response:
        """Upload an artifact; it is validated in a sandbox before a version is recorded."""
        model = self.get_model()
        form = VersionUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            version = upload_version(
                model,
                upload.chunks(),
                model_type=form.validated_data["model_type"],
                uploaded_by=request.user,
            )
        except ArtifactRejected as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeploymentSerializer
    permission_classes = [ReadOrDeploy]
    lookup_field = "name"
    queryset = Deployment.objects.select_related(
        "model_version__model", "previous_version", "created_by"
    )

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
            **{k: data[k] for k in ("cpu_request", "memory_request", "cpu_limit", "memory_limit")},
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
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def predict(self, request: Request, name: str) -> Response:
        """Forward a prediction body (same forms as serving's /predict) to the deployment."""
        result = forward_prediction(self.get_object(), request.data)
        return Response(result.body, status=result.status_code)

    @extend_schema(responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, name: str) -> Response:
        """The deployment's history, newest first."""
        page = self.paginate_queryset(self.get_object().events.all())
        return self.get_paginated_response(EventSerializer(page, many=True).data)
