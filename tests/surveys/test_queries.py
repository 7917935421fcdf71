"""Dashboards, lists and APIs run a number of queries that does not grow with the data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from surveys import services
from surveys.models import Cycle, Group, Invitation, OutboundEmail, Reminder
from tests.surveys.helpers import team_build

pytestmark = pytest.mark.django_db

PAGE_BOUND = 16
API_BOUND = 10


def _world(manager: Any, size: int) -> Cycle:
    """A launched cycle of ``size`` subjects with answers, a reminder and a failed email, plus a draft."""
    team = team_build(manager, size=size, name=f"Team of {size}")
    cycle = services.cycle_create(
        team=team, by=manager, name="Open", deadline=timezone.now() + timedelta(days=5), people=list(team.people.all())
    )
    services.cycle_launch(cycle=cycle, by=manager)
    peers = list(cycle.invitations.filter(group=Group.PEER).values_list("pk", flat=True))
    Invitation.objects.filter(pk__in=peers[::2]).update(status=Invitation.Status.COMPLETED)
    Invitation.objects.filter(pk__in=peers[1::5]).update(status=Invitation.Status.DECLINED)
    services.reminder_send(cycle=cycle, kind=Reminder.Kind.MANUAL)
    OutboundEmail.objects.filter(pk__in=OutboundEmail.objects.filter(kind="invitation").values("pk")[:1]).update(
        status="failed", last_error="SMTPDataError: 451"
    )
    services.cycle_create(
        team=team, by=manager, name="Draft", deadline=timezone.now() + timedelta(days=5), people=list(team.people.all())
    )
    return cycle


@pytest.mark.parametrize("size", [2, 20])
def test_pages_run_a_constant_number_of_queries(
    size: int, manager: Any, client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    cycle = _world(manager, size)
    client.force_login(manager)
    for url in [
        "/teams/",
        f"/teams/{cycle.team_id}/",
        "/cycles/",
        f"/cycles/{cycle.pk}/",
        f"/cycles/{cycle.pk}/raters/",
        f"/cycles/{cycle.pk}/edit/",
    ]:
        with django_assert_max_num_queries(PAGE_BOUND):
            response = client.get(url)
        assert response.status_code == 200, url
    html = client.get(f"/cycles/{cycle.pk}/").content.decode()
    assert html.count(" answered\n") + html.count("so not counted") == size


@pytest.mark.parametrize("size", [2, 20])
def test_apis_run_a_constant_number_of_queries(
    size: int, manager: Any, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    cycle = _world(manager, size)
    api = APIClient()
    api.force_authenticate(manager)
    for url in [
        "/api/teams/",
        f"/api/teams/{cycle.team_id}/people/",
        "/api/cycles/",
        f"/api/cycles/{cycle.pk}/",
        f"/api/cycles/{cycle.pk}/raters/",
        f"/api/cycles/{cycle.pk}/progress/",
    ]:
        with django_assert_max_num_queries(API_BOUND):
            response = api.get(url)
        assert response.status_code == 200, url
    progress = api.get(f"/api/cycles/{cycle.pk}/progress/").json()
    assert len(progress["results"]) == size
    counted = [s["subject"] for s in progress["results"] if s["anonymous"]["answered"] is not None]
    answered = cycle.invitations.filter(status="completed", subject_id__in=counted, group=Group.PEER).count()
    assert sum(s["anonymous"]["answered"] or 0 for s in progress["results"]) == answered


@pytest.mark.parametrize("size", [2, 20])
def test_sending_a_batch_runs_queries_per_email_not_per_subject(
    size: int, manager: Any, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    cycle = _world(manager, size)
    ids = list(OutboundEmail.objects.filter(cycle=cycle, status="queued").values_list("id", flat=True))
    # claim, load, links, skip, give back + per email sent: its hand-over (the fence) and the
    # status of the one before, in one transaction (a savepoint inside this test's)
    with django_assert_max_num_queries(14 + 4 * len(ids)):
        services.outbound_emails_send(email_ids=ids)


@pytest.mark.parametrize("size", [2, 20])
def test_nomination_pages_run_a_constant_number_of_queries(
    size: int, manager: Any, client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    team = team_build(manager, size=size, name=f"Nominating {size}")
    cycle = services.cycle_create(
        team=team,
        by=manager,
        name="Nominating",
        deadline=timezone.now() + timedelta(days=5),
        people=list(team.people.all()),
        nomination_mode="subjects",
    )
    services.cycle_nominations_open(cycle=cycle, by=manager)
    first = cycle.subjects.order_by("person__name").first()
    assert first is not None
    services.nomination_approve(cycle=cycle, subject=first, by=manager)
    client.force_login(manager)
    for url in ["/cycles/", f"/cycles/{cycle.pk}/", f"/cycles/{cycle.pk}/raters/"]:
        with django_assert_max_num_queries(PAGE_BOUND):
            assert client.get(url).status_code == 200, url
    html = client.get(f"/cycles/{cycle.pk}/raters/").content.decode()
    assert html.count(">approved</span>") == 1 and html.count(">no list yet</span>") == size - 1


@pytest.mark.parametrize("size", [2, 20])
def test_the_polled_progress_runs_a_constant_number_of_queries_and_stays_pooled(
    size: int, manager: Any, client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    cycle = _world(manager, size)
    client.force_login(manager)
    with django_assert_max_num_queries(PAGE_BOUND):
        response = client.get(f"/cycles/{cycle.pk}/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith("{#") is False
    assert 'hx-trigger="every 5s"' in html
    assert html.count('<th scope="row">') == size
    # the same pooled figures as the page: never a group, a decline or a time
    for word in ("Peers", "Direct reports", "declined", "Declined"):
        assert word not in html
