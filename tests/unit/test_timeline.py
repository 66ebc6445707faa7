"""The deployment timeline (deployments/web/presenters.py `group_events`, the history pages):
one entry per action a person took, with the worker's steps after it, paged."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from deployments import audit
from deployments import constants as st
from deployments.models import Deployment, DeploymentEvent
from deployments.web.presenters import group_events

pytestmark = pytest.mark.django_db


def _act(deployment: Deployment, action: str, status: str, via: str) -> None:
    token = audit._current.set(audit.Source(ip="127.0.0.1" if via != "worker" else None, via=via))
    try:
        DeploymentEvent.add(deployment.pk, action, status, "", None)
    finally:
        audit._current.reset(token)


def test_each_action_is_one_entry_with_its_steps(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(status=st.RUNNING)
    _act(deployment, "create", st.PENDING, "ui")
    _act(deployment, "status", st.DEPLOYING, "worker")
    _act(deployment, "status", st.RUNNING, "worker")
    _act(deployment, "undeploy", st.STOPPING, "api")
    _act(deployment, "status", st.STOPPED, "worker")
    groups = group_events(list(deployment.events.all()))
    assert [(g["head"].action, g["last"].status, len(g["steps"])) for g in groups] == [
        ("undeploy", st.STOPPED, 2),
        ("create", st.RUNNING, 3),
    ]
    assert [e.status for e in groups[1]["steps"]] == [st.PENDING, st.DEPLOYING, st.RUNNING]


def test_the_history_pages_through_the_actions(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(status=st.RUNNING)
    for _ in range(st.TIMELINE_ACTIONS_PER_PAGE + 3):
        _act(deployment, "scale", st.PENDING, "ui")
        _act(deployment, "status", st.RUNNING, "worker")
    client = Client()
    client.force_login(User.objects.create(username="viewer"))
    page = client.get(f"/deployments/{deployment.name}/").content.decode()
    assert page.count('class="event-group"') == st.TIMELINE_ACTIONS_PER_PAGE
    assert 'id="older-events"' in page
    second = client.get(f"/deployments/{deployment.name}/history/?page=2").content.decode()
    assert second.count('class="event-group"') == 3
    assert "Page 2 of 2" in second and 'id="newer-page"' in second
