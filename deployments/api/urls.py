from django.urls import include, path
from rest_framework.routers import DefaultRouter

from deployments.api.tokens import TokenView, TokenViewSet
from deployments.api.views import AliasViewSet, DeploymentViewSet, ModelViewSet, VersionViewSet

router = DefaultRouter()
router.register("models", ModelViewSet, basename="model")
router.register(r"models/(?P<model_name>[^/.]+)/versions", VersionViewSet, basename="version")
router.register(r"models/(?P<model_name>[^/.]+)/aliases", AliasViewSet, basename="alias")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("tokens", TokenViewSet, basename="api-token")

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("", include(router.urls)),
]
