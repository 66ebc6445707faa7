"""API tokens a user manages (deployments/tokens.py, /api/tokens/, the Tokens page): the key is
shown once and stored hashed, names are unique per user, an expired token is refused in plain
words, revoking stops it, and each change is an audit event."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from deployments import constants as st
from deployments.models import ApiToken, AuditEvent, token_digest
from deployments.tokens import TokenRefused, create_token, free_token_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return User.objects.create_user("tok", password="tok-password-1")


def test_a_token_is_kept_hashed_named_and_audited(user) -> None:
    key, token = create_token(user, "ci", None)
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.digest == token_digest(key) and key not in str(stored.__dict__)
    assert stored.prefix == key[:8]
    event = AuditEvent.objects.get()
    assert (event.action, event.target, event.actor_name) == ("token.create", "token ci", "tok")


def test_names_are_unique_per_user_and_bounded(user) -> None:
    create_token(user, "ci", None)
    with pytest.raises(TokenRefused, match="already have a token named 'ci'"):
        create_token(user, "ci", None)
    with pytest.raises(TokenRefused, match="Give the token a name"):
        create_token(user, "  ", None)
    with pytest.raises(TokenRefused, match="in the future"):
        create_token(user, "late", timezone.now() - datetime.timedelta(seconds=1))
    assert free_token_name(user, "ci") == "ci-2"
    for i in range(st.MAX_TOKENS_PER_USER - 1):
        create_token(user, f"t{i}", None)
    with pytest.raises(TokenRefused, match="revoke one"):
        create_token(user, "one-more", None)


def test_personal_token_replaces_only_itself(user) -> None:
    _, named = create_token(user, "ci", None)
    first = ApiToken.issue(user)
    second = ApiToken.issue(user)
    assert ApiToken.find(first) is None and ApiToken.find(second) is not None
    assert ApiToken.objects.filter(pk=named.pk).exists()


def _api(key: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def test_api_creates_lists_without_keys_and_revokes(user) -> None:
    client = Client()
    client.force_login(user)
    soon = (timezone.now() + datetime.timedelta(days=1)).isoformat()
    made = client.post(
        "/api/tokens/", {"name": "nightly", "expires_at": soon}, content_type="application/json"
    )
    assert made.status_code == 201, made.content
    key = made.json()["token"]
    listed = client.get("/api/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["nightly"] and "token" not in listed[0]
    assert key not in client.get("/api/tokens/").content.decode()
    assert _api(key).get("/api/deployments/").status_code == 200
    dup = client.post("/api/tokens/", {"name": "nightly"}, content_type="application/json")
    assert dup.status_code == 400 and "already have a token" in dup.json()["name"][0]
    assert client.delete(f"/api/tokens/{made.json()['id']}/").status_code == 204
    assert _api(key).get("/api/deployments/").status_code == 401
    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["token.create", "token.revoke"]


def test_someone_elses_token_cannot_be_seen_or_revoked(user) -> None:
    _, theirs = create_token(User.objects.create_user("other"), "ci", None)
    client = Client()
    client.force_login(user)
    assert client.get("/api/tokens/").json()["results"] == []
    assert client.delete(f"/api/tokens/{theirs.pk}/").status_code == 404
    assert client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()


def test_an_expired_token_is_refused_in_plain_words(user) -> None:
    key, token = create_token(user, "old", timezone.now() + datetime.timedelta(days=1))
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC)
    )
    answer = _api(key).get("/api/deployments/")
    assert answer.status_code == 401
    assert answer.json()["detail"] == (
        "This token (old) expired on 2026-01-02 03:04 UTC; create a new one on the console's "
        "Tokens page."
    )
    assert ApiToken.user_for_header(f"Token {key}") is None  # the upload gate refuses it too


def test_tokens_page_shows_the_key_once(user) -> None:
    client = Client()
    client.force_login(user)
    made = client.post("/tokens/", {"name": "notebook", "lifetime": "30"})
    html = made.content.decode()
    token = ApiToken.objects.get(name="notebook")
    key_shown = html.split('<code id="token-key">')[1].split("</code>")[0]
    assert token.digest == token_digest(key_shown)
    assert "no-store" in made.headers["Cache-Control"]
    assert abs(
        (token.expires_at - timezone.now()) - datetime.timedelta(days=30)
    ) < datetime.timedelta(minutes=1)
    again = client.get("/tokens/").content.decode()
    assert key_shown not in again and key_shown[:8] in again
    bad = client.post("/tokens/", {"name": "", "lifetime": "forever"})
    assert bad.status_code == 400
    assert "Give the token a name" in bad.content.decode()
    assert "Pick one of the listed lifetimes." in bad.content.decode()


def test_deployment_page_button_picks_a_free_name(user) -> None:
    create_token(user, "iris-prod-client", None)
    client = Client()
    client.force_login(user)
    answer = client.post(
        "/tokens/",
        {"name": "iris-prod-client", "lifetime": "90", "pick_free_name": "yes"},
        HTTP_HX_REQUEST="true",
    )
    assert 'id="token-inline-key"' in answer.content.decode()
    assert ApiToken.objects.filter(name="iris-prod-client-2").exists()


def test_the_deployment_page_offers_a_token_of_the_default_lifetime(user, make_deployment) -> None:
    make_deployment(st.STOPPED)
    client = Client()
    client.force_login(user)
    html = client.get("/deployments/iris-prod/").content.decode()
    assert 'id="create-token-inline"' in html
    assert f'name="lifetime" value="{st.DEFAULT_TOKEN_LIFETIME}"' in html
