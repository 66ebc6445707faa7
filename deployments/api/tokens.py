"""API tokens, managed by their owner.

`/api/token/` hands out your personal token (a new one replaces the last) and needs a logged-in
user (session or token) or a username and password; password attempts go through the same rate
limit as the login page. `/api/tokens/` lists your tokens (never their keys), creates named ones
with an optional expiry and revokes them.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.ratelimit import login_blocked
from deployments import constants as st
from deployments.models import ApiToken, AuditEvent
from deployments.tokens import TokenRefused, create_token, revoke_token

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
        AuditEvent.add("token.create", f"token {st.PERSONAL_TOKEN_NAME}", "created", user)
        return Response({"token": key, "user": user.get_username()}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        """Revoke the token you are using (or, logged in without one, your personal token)."""
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        tokens = ApiToken.objects.filter(user=request.user)
        if isinstance(request.auth, ApiToken):
            tokens = tokens.filter(pk=request.auth.pk)
        else:
            tokens = tokens.filter(name=st.PERSONAL_TOKEN_NAME)
        for token in tokens:
            revoke_token(token, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenSerializer(serializers.ModelSerializer):
    """A token as lists show it: never its key, only the key's first characters."""

    expired = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "expired"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=st.TOKEN_NAME_MAX_LENGTH)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When it stops working; none: never."
    )


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The key: shown in this answer only.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class TokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your API tokens: list, create (the key is shown once), revoke."""

    serializer_class = TokenSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema is being generated
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        """Create a named token, optionally expiring; the answer holds its key, this once."""
        form = TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            key, token = create_token(
                request.user, form.validated_data["name"], form.validated_data.get("expires_at")
            )
        except TokenRefused as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        data = {**TokenSerializer(token).data, "token": key}
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        revoke_token(instance, self.request.user)
