"""The Tokens page: a user's API tokens (never their keys), a form for a new one whose key is
shown once, and revoking. The deployment page's snippet creates one in place (htmx)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from deployments.models import ApiToken
from deployments.tokens import (
    TokenRefused,
    create_token,
    expiry_for,
    free_token_name,
    revoke_token,
)
from deployments.web.forms import TokenForm
from deployments.web.views import login_required


def _page(request: HttpRequest, form: TokenForm, created: dict | None, status: int) -> HttpResponse:
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=request.user),
        "section": "tokens",
    }
    return render(request, "deployments/tokens.html", context, status=status)


@never_cache  # the answer to a POST holds a key: no cache may keep it
@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """GET lists the user's tokens; POST creates one and shows its key this once."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        if request.POST.get("pick_free_name") == "yes":  # the deployment page's one button
            name = free_token_name(request.user, name)
        try:
            key, token = create_token(
                request.user,
                name,
                expiry_for(form.cleaned_data["lifetime"]),
            )
        except TokenRefused as exc:
            form.add_error("name" if exc.field == "name" else "lifetime", str(exc))
        else:
            created = {"key": key, "token": token}
            form = TokenForm()
    if request.headers.get("HX-Request") == "true":
        # The deployment page's "create a token" asks for the key alone, put into its snippet.
        return render(
            request,
            "deployments/partials/token_inline.html",
            {"created": created, "form": form},
            status=200,
        )
    return _page(request, form, created, 400 if form.errors else 200)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    revoke_token(token, request.user)
    messages.success(request, f"Token {token.name} revoked: requests using it are refused now.")
    return redirect("tokens")
