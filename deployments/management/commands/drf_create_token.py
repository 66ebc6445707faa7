"""`manage.py drf_create_token USER`: REST framework's command of that name, for hashed tokens.

Only a token's hash is stored, so an existing token cannot be shown again: every run issues a
new token and the previous one stops working (`-r/--reset` is accepted and changes nothing).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deployments.models import ApiToken


class Command(BaseCommand):
    help = "Issue a new API token for USER (replacing theirs) and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "-r", "--reset", action="store_true", help="accepted for compatibility; always new"
        )

    def handle(self, *args, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Cannot create the token: no user named {username!r}.")
        key = ApiToken.issue(user)
        # The same words as REST framework's command, so scripts reading field 3 keep working.
        self.stdout.write(f"Generated token {key} for user {username}")
