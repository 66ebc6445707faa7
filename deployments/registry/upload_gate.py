"""Only an upload endpoint, asked by a deployer, may write a request's files to disk.

Django applies FILE_UPLOAD_HANDLERS to every multipart body it parses: without this gate an
anonymous multipart POST to the login page would stream its files into FILE_UPLOAD_TEMP_DIR
before the answer (403) was sent. Any other multipart request has its file parts read and
dropped, never written; one whose body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE is refused
(413) before a byte of it is read.

It must come after AuthenticationMiddleware (it reads `request.user`) and before anything
reads the body. API clients log in with a token inside the view; the gate checks the token
itself.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from deployments.models import ApiToken
from deployments.roles import can_deploy

# The routes that take a model file: the API's version upload and the UI's upload page.
UPLOAD_ROUTES = {"version-list", "model-upload"}


class DiscardFilesHandler(FileUploadHandler):
    """File parts are skipped: Django reads them off the socket and keeps nothing."""

    def new_file(self, *args: object, **kwargs: object) -> None:
        raise SkipFile()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        return None

    def file_complete(self, file_size: int) -> None:
        return None


def may_upload(request: HttpRequest) -> bool:
    """Whether this request goes to an upload route from a user with the deployer role."""
    try:
        route = resolve(request.path_info).url_name
    except Resolver404:
        return False
    if route not in UPLOAD_ROUTES:
        return False
    if request.user.is_authenticated:
        return can_deploy(request.user)
    user = ApiToken.user_for_header(request.headers.get("Authorization", ""))
    return user is not None and can_deploy(user)


class UploadGateMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("CONTENT_TYPE", "").startswith("multipart/") and not may_upload(
            request
        ):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # BodySizeLimitMiddleware has answered 400 already
            if limit is not None and length > limit:
                return JsonResponse(
                    {
                        "detail": f"The request body is {length} bytes; at most {limit} are "
                        "accepted here (files only on the upload endpoints, for deployers)."
                    },
                    status=413,
                )
            request.upload_handlers = [DiscardFilesHandler(request)]
        return self.get_response(request)
