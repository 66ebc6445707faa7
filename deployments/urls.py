from django.urls import path

from deployments import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:name>/", views.model_detail, name="model-detail"),
    path("deployments/new/", views.deployment_new, name="deployment-new"),
    path("deployments/<slug:name>/", views.deployment_detail, name="deployment-detail"),
    path(
        "deployments/<slug:name>/<str:action>/", views.deployment_action, name="deployment-action"
    ),
]
