"""API tokens a user manages for themself: create one with a name and an optional expiry (the
key is shown once), list them without their keys, revoke one. Each change is audited."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import constants as st
from deployments.models import ApiToken, AuditEvent


class TokenRefused(Exception):
    """A token cannot be made as asked; the message says which field and what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def expiry_for(lifetime: str, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """The expiry a lifetime choice of the UI means (TOKEN_LIFETIMES)."""
    days = st.TOKEN_LIFETIMES[lifetime]
    return None if days is None else (now or timezone.now()) + datetime.timedelta(days=days)


def free_token_name(user: Any, base: str) -> str:
    """`base`, or `base-2`, `base-3`... : the first name the user has no token of."""
    base = base[: st.TOKEN_NAME_MAX_LENGTH - 4]
    taken = set(
        ApiToken.objects.filter(user=user, name__startswith=base).values_list("name", flat=True)
    )
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def create_token(
    user: Any, name: str, expires_at: datetime.datetime | None
) -> tuple[str, ApiToken]:
    """A new token for `user`; the key is returned this once (only its hash is kept)."""
    name = name.strip()
    if not name:
        raise TokenRefused("name", "Give the token a name, such as the script or job using it.")
    if len(name) > st.TOKEN_NAME_MAX_LENGTH:
        raise TokenRefused("name", f"Use at most {st.TOKEN_NAME_MAX_LENGTH} characters.")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenRefused("expires_at", "Pick an expiry in the future, or none.")
    try:
        with transaction.atomic():
            if ApiToken.objects.filter(user=user).count() >= st.MAX_TOKENS_PER_USER:
                raise TokenRefused(
                    "name",
                    f"You have {st.MAX_TOKENS_PER_USER} tokens, the most allowed; revoke one "
                    "you no longer use first.",
                )
            key, token = ApiToken.create_named(user, name, expires_at)
            until = f"until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "with no expiry"
            AuditEvent.add("token.create", f"token {name}", f"created {until}", user)
    except IntegrityError:
        raise TokenRefused(
            "name", f"You already have a token named {name!r}; pick another name or revoke it."
        ) from None
    return key, token


def revoke_token(token: ApiToken, actor: object) -> None:
    """Delete the token: requests using it are refused from now on."""
    with transaction.atomic():
        token.delete()
        owner = f" of {token.user}" if getattr(actor, "pk", None) != token.user_id else ""
        AuditEvent.add("token.revoke", f"token {token.name}{owner}", "revoked", actor)


def expired_message(token: ApiToken) -> str:
    """What a client reads when it sends an expired token."""
    assert token.expires_at is not None
    return (
        f"This token ({token.name}) expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; create a "
        "new one on the console's Tokens page."
    )
