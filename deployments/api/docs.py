"""The API's documentation pages, Swagger UI and ReDoc, served from the console's own static
files (drf-spectacular-sidecar), so they work without internet access and under a strict
Content-Security-Policy: no CDN, no inline script, no web fonts."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# ReDoc's sidebar shows its maker's logo from their CDN, whatever its options say: the bundle
# is served with that one address swapped for an empty local image.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


class _DocsPolicy:
    """Answers with the docs pages' own policy (the rest of /api/ answers JSON)."""

    policy_setting = "API_DOCS_CONTENT_SECURITY_POLICY"

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = getattr(settings, self.policy_setting)
        return response


class SwaggerView(_DocsPolicy, SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is a second request (`?script`), not inline."""

    template_name = "api_docs/swagger.html"


class RedocView(_DocsPolicy, SpectacularRedocView):
    """ReDoc; it injects its own styles at run time, so its policy allows inline styles."""

    template_name = "api_docs/redoc.html"
    policy_setting = "API_REDOC_CONTENT_SECURITY_POLICY"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("api-redoc-bundle")


@cache
def _offline_redoc_bundle() -> bytes:
    path = finders.find(REDOC_BUNDLE)
    if not path:
        raise FileNotFoundError(f"{REDOC_BUNDLE} (drf-spectacular-sidecar is not installed)")
    with open(path, "rb") as bundle:
        code = bundle.read()
    assert REDOC_LOGO.encode() in code, "ReDoc changed: check it loads nothing from outside"
    return code.replace(REDOC_LOGO.encode(), EMPTY_IMAGE.encode())


@require_GET
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """ReDoc's script, loading nothing from outside the console."""
    response = HttpResponse(_offline_redoc_bundle(), content_type="application/javascript")
    response["Cache-Control"] = "public, max-age=86400"
    return response
