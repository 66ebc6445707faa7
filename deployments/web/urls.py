from django.urls import path, re_path

from deployments.web import traffic, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("fragments/deployments/", views.dashboard_fragment, name="dashboard-fragment"),
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:name>/", views.model_detail, name="model-detail"),
    path("models/<slug:name>/upload/", views.model_upload, name="model-upload"),
    path("deploy/", views.deployment_new, name="deployment-new"),
    path("deploy/check-name/", views.deployment_name_check, name="deployment-name-check"),
    path("deployments/<slug:name>/", views.deployment_detail, name="deployment-detail"),
    path(
        "deployments/<slug:name>/live/",
        views.deployment_live_fragment,
        name="deployment-live",
    ),
    path("deployments/<slug:name>/logs/", views.deployment_logs_fragment, name="deployment-logs"),
    path("deployments/<slug:name>/predict/", views.deployment_predict, name="deployment-predict"),
    path(
        "deployments/<slug:name>/traffic/",
        traffic.traffic_fragment,
        name="deployment-traffic-live",
    ),
    re_path(
        r"^deployments/(?P<name>[-a-z0-9]+)/traffic/(?P<operation>"
        + "|".join(traffic.OPERATIONS)
        + ")/$",
        traffic.traffic_change,
        name="deployment-traffic",
    ),
    re_path(
        r"^deployments/(?P<name>[-a-z0-9]+)/(?P<action>" + "|".join(views.ACTIONS) + ")/$",
        views.deployment_action,
        name="deployment-action",
    ),
]
