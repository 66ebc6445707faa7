"""Content-Security-Policy for the console's own pages (Django 5.2 has no built-in one).

The UI loads scripts and styles only from its static files, so the policy forbids inline
scripts and styles. The admin and the JSON API are exempt by path prefix; the API's docs pages
(Swagger UI, ReDoc) set their own policy (deployments/api/docs.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        exempt = tuple(settings.CONTENT_SECURITY_POLICY_EXEMPT)
        path_exempt = request.path.startswith(exempt)
        # With DEBUG on, error answers are Django's technical pages, which inline their styles.
        debug_page = settings.DEBUG and response.status_code >= 400
        if policy and not (path_exempt or debug_page) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
