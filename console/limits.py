"""Request size limits Django does not apply to API bodies.

Django checks DATA_UPLOAD_MAX_MEMORY_SIZE only when it reads a form body itself; DRF's JSON
parser reads the stream directly, so without this a 1 GB JSON body would be parsed in memory.
Multipart uploads are exempt: artifacts stream to disk and have their own limit
(MAX_ARTIFACT_BYTES).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
        if (
            limit is not None
            and length > limit
            and not content_type.startswith("multipart/form-data")
        ):
            return JsonResponse(
                {
                    "detail": f"The request body is {length} bytes; at most {limit} are "
                    "accepted here."
                },
                status=413,
            )
        return self.get_response(request)
