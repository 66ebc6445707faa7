"""`Authorization: Token <key>`, as REST framework's token authentication, against hashed
tokens (`ApiToken`)."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from deployments.models import ApiToken
from deployments.tokens import expired_message


class HashedTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[object, ApiToken]:
        token = ApiToken.find(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if token.expired:
            raise AuthenticationFailed(expired_message(token))
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return token.user, token
