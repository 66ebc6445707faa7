"""API tokens, managed by their owner: create (or replace) your token, revoke it.

Creating needs a logged-in user (session or token) or a username and password; password
attempts go through the same rate limit as the login page.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.ratelimit import login_blocked
from deployments.models import ApiToken

TokenOut = inline_serializer(
    "Token", {"token": serializers.CharField(), "user": serializers.CharField()}
)


class TokenCredentials(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=150)
    password = serializers.CharField(
        required=False, max_length=4096, style={"input_type": "password"}
    )


class TokenView(APIView):
    permission_classes = [AllowAny]  # checked in each method: credentials or a logged-in user

    @extend_schema(request=TokenCredentials, responses={201: TokenOut})
    def post(self, request: Request) -> Response:
        """Create a new token for yourself (shown only in this answer); any previous one stops
        working."""
        user = request.user if request.user.is_authenticated else None
        if user is None:
            form = TokenCredentials(data=request.data)
            form.is_valid(raise_exception=True)
            username = form.validated_data.get("username")
            password = form.validated_data.get("password")
            if not username or not password:
                raise NotAuthenticated("Log in, or send your username and password.")
            if login_blocked(request._request, username):
                return Response(
                    {"detail": "Too many failed login attempts; try again later."},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            user = authenticate(request._request, username=username, password=password)
            if user is None:
                raise AuthenticationFailed("Wrong username or password.")
        key = ApiToken.issue(user)  # only its hash is stored: this answer is the one chance
        return Response({"token": key, "user": user.get_username()}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        """Revoke your token (the one you are using, if you authenticate with it)."""
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        ApiToken.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
