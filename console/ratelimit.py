"""Login rate limiting: failed attempts are counted per client address and username, and per
client address alone; past the limit every way of logging in (the login page, the admin, the
token endpoint) refuses for LOGIN_LOCKOUT_SECONDS, even with the right password.

The authentication backend enforces it for all of them; the login view adds a clear message and
a 429 status.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from deployments.audit import client_ip

# Many usernames from one address is a password spray: allow more, but not without end.
PER_ADDRESS_FACTOR = 4


def _keys(request: HttpRequest | None, username: str | None) -> list[tuple[str, int]]:
    ip = client_ip(request) if request is not None else None
    limit = settings.LOGIN_FAILURES_ALLOWED
    keys = [(f"login-fail:{ip}:{(username or '').lower()}", limit)]
    if ip:
        keys.append((f"login-fail-ip:{ip}", limit * PER_ADDRESS_FACTOR))
    return keys


def login_blocked(request: HttpRequest | None, username: str | None) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(request, username))


def note_failure(request: HttpRequest | None, username: str | None) -> None:
    for key, _ in _keys(request, username):
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired in between
            cache.set(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)


@receiver(user_login_failed)
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kw) -> None:
    note_failure(request, credentials.get("username"))


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if login_blocked(request, username):
            # PermissionDenied stops Django trying other backends and counts as a failure.
            raise PermissionDenied("too many failed login attempts")
        return super().authenticate(request, username=username, password=password, **kwargs)


class LoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if login_blocked(request, request.POST.get("username")):
            form = self.get_form()
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            form.errors.clear()
            form.add_error(
                None,
                f"Too many failed login attempts. Try again in {minutes} minute(s).",
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)
