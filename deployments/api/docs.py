"""The API's documentation pages, Swagger UI and ReDoc, served from the console's own static
files (drf-spectacular-sidecar), so they work without internet access and under a strict
Content-Security-Policy: no CDN, no inline script, no web fonts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response


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
