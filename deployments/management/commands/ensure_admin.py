"""Make sure an admin account exists (first run of `make run`), and the viewer/deployer roles."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin user if missing (password from CONSOLE_ADMIN_PASSWORD or generated)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("CONSOLE_ADMIN_USER", "admin"))

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"Log in as {username!r} (the password set on the first run).")
            return
        password = os.environ.get("CONSOLE_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if os.environ.get("CONSOLE_ADMIN_PASSWORD"):
            self.stdout.write(f"Created admin {username!r} with CONSOLE_ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Created admin {username!r} with password: {password}\n"
                "  (shown only this once; set CONSOLE_ADMIN_PASSWORD to choose your own)"
            )
