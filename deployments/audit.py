"""Where a request came from, for the audit trail.

A middleware notes the client address and the surface (UI or API) of every request in a context
variable; `DeploymentEvent` rows created while the request runs carry them. Events written by a
worker carry none: the worker acted on its own (status sync, retries).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Source:
    ip: str | None
    via: str  # "api", "ui" or "worker"


WORKER = Source(ip=None, via="worker")
_current: contextvars.ContextVar[Source] = contextvars.ContextVar("audit_source", default=WORKER)


def current_source() -> Source:
    return _current.get()


def who(actor: object | None) -> dict[str, object]:
    """The audit fields every event row carries: the acting user (if signed in), their name,
    and where the request came from (none for a worker acting on its own)."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    source = current_source()
    return {
        "actor": user,
        "actor_name": getattr(user, "username", "") if user else "",
        "source_ip": source.ip,
        "via": source.via,
    }


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT proxies saw (never a client-set value)."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None


class AuditSourceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        via = "api" if request.path.startswith("/api/") else "ui"
        token = _current.set(Source(ip=client_ip(request), via=via))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
