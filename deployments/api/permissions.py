"""Who may do what: anyone logged in may read and predict; deployers may change things."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

DEPLOY_PERMISSION = "deployments.deploy_model"


def can_deploy(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(DEPLOY_PERMISSION))


class ReadOrDeploy(BasePermission):
    message = "You need the deployer role for this action."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in SAFE_METHODS or getattr(view, "action", None) == "predict":
            return True
        return can_deploy(request.user)
