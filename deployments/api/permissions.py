"""Who may do what: anyone logged in may read and predict; deployers may change things."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from deployments.roles import can_deploy


class ReadOrDeploy(BasePermission):
    message = "You need the deployer role for this action."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in SAFE_METHODS or getattr(view, "action", None) == "predict":
            return True
        return can_deploy(request.user)
