"""The roles: viewers see and try predictions, deployers also change things,
admins (superusers) manage users. Roles are Django groups, created after every migrate."""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
DEPLOYER = "deployer"
DEPLOY_PERMISSION = "deployments.deploy_model"


def can_deploy(user: Any) -> bool:
    """Deployers (and admins) may upload, deploy, change and undeploy."""
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(DEPLOY_PERMISSION))


def ensure_roles(**kwargs: object) -> None:
    from django.contrib.auth.models import Group, Permission

    permission = Permission.objects.filter(
        codename="deploy_model", content_type__app_label="deployments"
    ).first()
    Group.objects.get_or_create(name=VIEWER)
    deployer, _ = Group.objects.get_or_create(name=DEPLOYER)
    if permission is not None:
        deployer.permissions.add(permission)
