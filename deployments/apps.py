from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DeploymentsConfig(AppConfig):
    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deployments.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
