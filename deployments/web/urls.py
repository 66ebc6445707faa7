from django.urls import path, re_path

from deployments.web import removal, tokens, traffic, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("fragments/deployments/", views.dashboard_fragment, name="dashboard-fragment"),
    path("fragments/sparklines/", views.dashboard_sparklines, name="dashboard-sparklines"),
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:name>/", views.model_detail, name="model-detail"),
    path("models/<slug:name>/upload/", views.model_upload, name="model-upload"),
    path("models/<slug:name>/aliases/", views.model_alias, name="model-alias"),
    path("models/<slug:name>/compare/", views.model_compare, name="model-compare"),
    path(
        "models/<slug:name>/versions/<int:version>/describe/",
        views.model_version_describe,
        name="model-version-describe",
    ),
    path("models/<slug:name>/delete/", removal.model_delete, name="model-delete"),
    path("models/<slug:name>/archive/", removal.model_archive, name="model-archive"),
    path(
        "models/<slug:name>/versions/<int:version>/delete/",
        removal.version_delete,
        name="version-delete",
    ),
    path("tokens/", tokens.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("deploy/", views.deployment_new, name="deployment-new"),
    path("deploy/check-name/", views.deployment_name_check, name="deployment-name-check"),
    path("deployments/<slug:name>/", views.deployment_detail, name="deployment-detail"),
    path(
        "deployments/<slug:name>/live/",
        views.deployment_live_fragment,
        name="deployment-live",
    ),
    path("deployments/<slug:name>/delete/", removal.deployment_delete, name="deployment-delete"),
    path("deployments/<slug:name>/archive/", removal.deployment_archive, name="deployment-archive"),
    path("deployments/<slug:name>/logs/", views.deployment_logs_fragment, name="deployment-logs"),
    path("deployments/<slug:name>/history/", views.deployment_history, name="deployment-history"),
    path("deployments/<slug:name>/predict/", views.deployment_predict, name="deployment-predict"),
    path(
        "deployments/<slug:name>/predictions/",
        views.deployment_predictions_fragment,
        name="deployment-predictions-fragment",
    ),
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
