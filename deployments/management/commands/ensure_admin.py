"""Make sure an admin account exists (first run of `make run`), and the viewer/deployer roles."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

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
        chosen = admin_password()
        password = chosen or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if chosen:
            self.stdout.write(f"Created admin {username!r} with CONSOLE_ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Created admin {username!r} with password: {password}\n"
                "  (shown only this once; set CONSOLE_ADMIN_PASSWORD to choose your own)"
            )


def admin_password() -> str:
    """CONSOLE_ADMIN_PASSWORD, or the file CONSOLE_ADMIN_PASSWORD_FILE names if it exists (an
    optional key of a mounted Secret is an absent file); "" when neither is set."""
    path = os.environ.get("CONSOLE_ADMIN_PASSWORD_FILE")
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get("CONSOLE_ADMIN_PASSWORD", "")
