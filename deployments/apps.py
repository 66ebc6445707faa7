from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


class DeploymentsConfig(AppConfig):
    name = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from deployments.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
        post_migrate.connect(create_cache_table, sender=self)


def create_cache_table(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    """Every `migrate` makes sure the database cache's table exists (a no-op when it does)."""
    call_command("createcachetable", database=using, verbosity=0)
