"""The status table in constants.py, the named sets derived from it, and the model methods that
enforce it (`Deployment.move_to`, `Deployment.update_while`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from deployments import constants as st
from deployments.models import Deployment, DeploymentEvent

PAIRS = list(itertools.product(st.STATUSES, st.STATUSES))


@pytest.mark.django_db
@pytest.mark.parametrize(("frm", "to"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_move_to_succeeds_exactly_when_the_table_allows_it(
    make_deployment: Callable[..., Deployment], frm: str, to: str
) -> None:
    deployment = make_deployment(frm)
    allowed = to in st.TRANSITIONS[frm]

    moved = deployment.move_to(to, "because", action="test")

    assert moved is allowed
    assert deployment.status == (to if allowed else frm)
    assert Deployment.objects.get(pk=deployment.pk).status == (to if allowed else frm)
    events = list(DeploymentEvent.objects.filter(deployment=deployment))
    if allowed:
        assert [(e.action, e.status, e.message) for e in events] == [("test", to, "because")]
        assert deployment.status_reason == "because"
    else:
        assert events == []


@pytest.mark.django_db
def test_move_to_writes_the_extra_fields_only_when_it_moves(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.STOPPED, endpoint="http://old")
    assert not deployment.move_to(st.RUNNING, endpoint="http://new", replicas_ready=3)
    assert (deployment.endpoint, deployment.replicas_ready) == ("http://old", 0)
    assert deployment.move_to(st.PENDING, endpoint="http://new", replicas_ready=3)
    assert (deployment.endpoint, deployment.replicas_ready) == ("http://new", 3)


@pytest.mark.django_db
def test_only_from_narrows_the_allowed_sources(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(st.RUNNING)
    # running -> pending is in the table, but this caller only accepts stopped.
    assert not deployment.move_to(st.PENDING, only_from={st.STOPPED})
    assert deployment.status == st.RUNNING
    assert not DeploymentEvent.objects.filter(deployment=deployment).exists()
    assert deployment.move_to(st.PENDING, only_from={st.RUNNING, st.STOPPED})
    assert deployment.status == st.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("to", "widened"),
    [(st.PENDING, st.STOPPING), (st.STOPPED, st.RUNNING), (st.DEPLOYING, st.STOPPED)],
)
def test_only_from_cannot_widen_the_table(
    make_deployment: Callable[..., Deployment], to: str, widened: str
) -> None:
    deployment = make_deployment(widened)
    with pytest.raises(ValueError, match=f"no move to {to} from {widened}"):
        deployment.move_to(to, only_from={widened})
    assert Deployment.objects.get(pk=deployment.pk).status == widened
    assert not DeploymentEvent.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_a_guard_on_another_column_refuses_a_stale_move(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.RUNNING, replicas=2)
    assert not deployment.move_to(st.PENDING, guard={"replicas": 1})
    assert deployment.status == st.RUNNING
    assert deployment.move_to(st.PENDING, guard={"replicas": 2})


@pytest.mark.django_db
def test_of_two_stale_copies_only_one_move_wins(make_deployment: Callable[..., Deployment]) -> None:
    first = make_deployment(st.RUNNING)
    second = Deployment.objects.get(pk=first.pk)
    assert first.move_to(st.STOPPING)
    # `second` still believes it is running; the conditional UPDATE finds it is not.
    assert not second.move_to(st.DEGRADED)
    assert second.status == st.STOPPING
    assert DeploymentEvent.objects.filter(deployment=first).count() == 1


@pytest.mark.django_db
def test_update_while_refuses_a_status_field(make_deployment: Callable[..., Deployment]) -> None:
    deployment = make_deployment(st.RUNNING)
    # `status` is the guard's own parameter, so a status field cannot slip into the update.
    with pytest.raises((TypeError, ValueError)):
        deployment.update_while(st.RUNNING, status=st.FAILED)  # type: ignore[misc]
    assert Deployment.objects.get(pk=deployment.pk).status == st.RUNNING


@pytest.mark.django_db
def test_update_while_writes_only_while_the_status_holds(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.DEPLOYING)
    assert deployment.update_while(st.DEPLOYING, endpoint="http://a")
    assert deployment.endpoint == "http://a"
    assert not deployment.update_while(st.RUNNING, endpoint="http://b")
    assert Deployment.objects.get(pk=deployment.pk).endpoint == "http://a"
    assert not deployment.update_while(st.DEPLOYING, guard={"replicas": 7}, endpoint="http://c")
    assert deployment.endpoint == "http://a"
    assert not DeploymentEvent.objects.filter(deployment=deployment).exists()


@pytest.mark.django_db
def test_record_adds_an_event_in_the_current_status(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(st.DEGRADED)
    deployment.record("runtime", "pod restarted")
    event = DeploymentEvent.objects.get(deployment=deployment)
    assert (event.action, event.status, event.message, event.via) == (
        "runtime",
        st.DEGRADED,
        "pod restarted",
        "worker",
    )
    event.message = "edited"
    with pytest.raises(PermissionError):
        event.save()


# The table itself -----------------------------------------------------------------------------


def test_the_table_names_every_status_and_only_statuses() -> None:
    assert set(st.TRANSITIONS) == set(st.STATUSES)
    for frm, targets in st.TRANSITIONS.items():
        assert targets <= set(st.STATUSES), frm
        assert frm not in targets, f"{frm} -> {frm} would record a move that changes nothing"


def _reachable(start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in st.TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("status", st.STATUSES)
def test_every_status_can_reach_stopped_and_every_status_is_reachable(status: str) -> None:
    assert st.STOPPED in _reachable(status) or status == st.STOPPED
    assert status in _reachable(st.PENDING) or status == st.PENDING


def test_can_move_and_sources_of_read_the_table() -> None:
    for frm, to in PAIRS:
        assert st.can_move(frm, to) is (to in st.TRANSITIONS[frm])
        assert (frm in st.sources_of(to)) is (to in st.TRANSITIONS[frm])
    assert not st.can_move("unknown", st.PENDING)


def test_named_sets_agree_with_the_table() -> None:
    statuses = set(st.STATUSES)
    for name in ("FINAL", "ACTIVE", "SERVING", "IN_FLIGHT"):
        assert getattr(st, name) <= statuses, name
    # Final: nothing happens any more until a user deploys again.
    for status in st.FINAL:
        assert st.TRANSITIONS[status] == {st.PENDING}
    # Active: meant to be serving, watched by the reconcile; never final or being stopped.
    assert statuses - st.FINAL - {st.STOPPING} == st.ACTIVE
    assert st.SERVING <= st.ACTIVE
    assert not st.IN_FLIGHT & st.FINAL
    for status in st.DEPLOYABLE:
        assert st.can_move(status, st.PENDING), status
    for status in st.UNDEPLOYABLE:
        assert st.can_move(status, st.STOPPING), status
    for status in st.CHANGEABLE:
        assert st.can_move(status, st.PENDING) and status not in st.FINAL, status
    # A change waits for work in flight; a change never starts from a work-in-flight status.
    assert not st.CHANGEABLE & st.IN_FLIGHT
    for status in st.RESUMABLE:
        assert st.can_move(status, st.PENDING) and status not in (st.FINAL | {st.FAILED})
    assert st.RESUMABLE <= st.ACTIVE


def test_named_sets_are_what_their_comments_promise() -> None:
    """Pinned: a change to the table that changes who may deploy or undeploy is noticed here."""
    assert {st.STOPPED} == st.FINAL
    assert {st.PENDING, st.DEPLOYING, st.RUNNING, st.DEGRADED, st.FAILED} == st.ACTIVE
    assert {st.RUNNING, st.DEGRADED} == st.SERVING
    assert {st.PENDING, st.STOPPING} == st.IN_FLIGHT
    assert {st.STOPPED, st.FAILED, st.RUNNING, st.DEGRADED} == st.DEPLOYABLE
    assert {st.PENDING, st.DEPLOYING, st.RUNNING, st.DEGRADED, st.FAILED} == st.UNDEPLOYABLE
    assert {st.RUNNING, st.DEGRADED, st.FAILED, st.DEPLOYING} == st.CHANGEABLE
    assert {st.RUNNING, st.DEGRADED, st.DEPLOYING} == st.RESUMABLE
