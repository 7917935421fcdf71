from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from surveys import selectors, services
from surveys.models import Cycle, Invitation, InvitationLink, OutboundEmail, Team
from surveys.signals import cycle_closed
from tests.surveys.helpers import send_queued

pytestmark = pytest.mark.django_db


def test_close_kills_every_link_expires_open_invitations_and_signals_once(open_cycle: Cycle) -> None:
    send_queued()
    assert InvitationLink.objects.filter(invitation__cycle=open_cycle).exists()
    completed = open_cycle.invitations.filter(group="self").first()
    assert completed is not None
    Invitation.objects.filter(pk=completed.pk).update(status=Invitation.Status.COMPLETED, opened_at=timezone.now())
    received: list[Cycle] = []

    def listener(sender: Any, cycle: Cycle, **kwargs: Any) -> None:
        received.append(cycle)

    cycle_closed.connect(listener)
    try:
        # when
        assert services.cycle_close(cycle=open_cycle, by=open_cycle.team.manager) is True
        # then a second close is a no-op
        assert services.cycle_close(cycle=open_cycle, by=open_cycle.team.manager) is False
    finally:
        cycle_closed.disconnect(listener)
    assert [cycle.pk for cycle in received] == [open_cycle.pk]
    assert received[0].status == Cycle.Status.CLOSED
    open_cycle.refresh_from_db()
    assert open_cycle.status == Cycle.Status.CLOSED and open_cycle.closed_at is not None
    assert not InvitationLink.objects.filter(invitation__cycle=open_cycle).exists()
    # Every invitation says "closed", answered or not: which one was answered is forgotten,
    # and the manager's progress is kept as counts on the subject instead.
    assert set(open_cycle.invitations.values_list("status", flat=True)) == {Invitation.Status.CLOSED}
    assert not open_cycle.invitations.filter(opened_at__isnull=False).exists()
    subject = completed.subject
    subject.refresh_from_db()
    assert subject.final_progress is not None
    assert subject.final_progress["self"] == [1, 1]
    progress = {p.subject_id: p for p in selectors.cycle_progress(cycle=open_cycle)}
    assert progress[subject.pk].self_rater.answered is True
    assert [p.self_rater.answered for p in progress.values()].count(True) == 1


@pytest.mark.django_db(transaction=True)
def test_close_rewrites_every_invitation_in_one_transaction(open_cycle: Cycle) -> None:
    # Transactional: each step below commits on its own, as in production.
    from django.db import connection

    done = open_cycle.invitations.first()
    assert done is not None
    Invitation.objects.filter(pk=done.pk).update(status=Invitation.Status.COMPLETED)
    services.cycle_close(cycle=open_cycle, by=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT xmin::text FROM surveys_invitation WHERE cycle_id = %s", [open_cycle.pk])
        # one writing transaction for all rows: the completed one is indistinguishable
        assert len(cursor.fetchall()) == 1


def test_a_closed_link_finds_no_open_invitation(open_cycle: Cycle) -> None:
    tokens = services.invitation_links_create(invitations=list(open_cycle.invitations.all()[:1]))
    (token,) = tokens.values()
    assert selectors.invitation_get_by_token(token=token) is not None
    services.cycle_close(cycle=open_cycle, by=None)
    assert selectors.invitation_get_by_token(token=token) is None


def test_queued_emails_are_not_sent_after_close(open_cycle: Cycle) -> None:
    services.cycle_close(cycle=open_cycle, by=None)
    send_queued()
    assert mail.outbox == []
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {OutboundEmail.Status.SKIPPED}


def test_cycles_close_at_their_deadline(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    past = cycle_build(team, launch=True, name="Past")
    future = cycle_build(team, launch=True, name="Future")
    draft = cycle_build(team, name="Draft")
    Cycle.objects.filter(pk__in=[past.pk, draft.pk]).update(deadline=timezone.now() - timedelta(minutes=1))
    assert services.cycles_close_due() == [past.pk]
    assert services.cycles_close_due() == []
    statuses = dict(Cycle.objects.values_list("name", "status"))
    assert statuses == {"Past": "closed", "Future": "open", "Draft": "draft"}
    assert future.status == Cycle.Status.OPEN


def test_close_due_task_is_in_the_beat_schedule() -> None:
    from config.celery import app

    tasks = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert tasks["surveys.cycles_close_due"] <= 300
    assert "surveys.reminders_send_due" in tasks
    # What a worker does as it starts: import every app's tasks (autodiscovery is lazy).
    app.loader.import_default_modules()
    assert {"surveys.cycles_close_due", "surveys.reminders_send_due", "surveys.emails_send"} <= set(app.tasks)


def test_close_deletes_the_reminder_emails_and_keeps_the_rest(open_cycle: Cycle, team: Team) -> None:
    # given: a reminder round, which went only to raters who had not answered then
    send_queued()
    open_cycle.invitations.filter(group="self").update(status=Invitation.Status.COMPLETED)
    reminder = services.reminder_send(cycle=open_cycle, kind="manual", by=team.manager)
    assert reminder is not None
    send_queued()
    invitation_emails = set(
        OutboundEmail.objects.filter(cycle=open_cycle, kind=OutboundEmail.Kind.INVITATION).values_list("id", flat=True)
    )
    assert OutboundEmail.objects.filter(cycle=open_cycle, kind=OutboundEmail.Kind.REMINDER).exists()
    # when
    services.cycle_close(cycle=open_cycle, by=team.manager)
    # then: nothing records who was reminded; the round itself (when it happened) stays
    assert not OutboundEmail.objects.filter(cycle=open_cycle, kind=OutboundEmail.Kind.REMINDER).exists()
    assert set(OutboundEmail.objects.filter(cycle=open_cycle).values_list("id", flat=True)) == invitation_emails
    assert list(open_cycle.reminders.values_list("id", flat=True)) == [reminder.pk]


@pytest.mark.parametrize("mode", ["draft", "nominating"])
def test_close_itself_refuses_a_cycle_never_launched(
    team: Team, cycle_build: Callable[..., Cycle], mode: str, client: Any
) -> None:
    from django.core.exceptions import ValidationError

    cycle = cycle_build(team, nomination_mode="subjects")
    if mode == "nominating":
        services.cycle_nominations_open(cycle=cycle, by=team.manager)
    received: list[Any] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    cycle_closed.connect(receiver, dispatch_uid="close-refusal-test")
    try:
        with pytest.raises(ValidationError) as error:
            services.cycle_close(cycle=cycle, by=team.manager)
    finally:
        cycle_closed.disconnect(dispatch_uid="close-refusal-test")
    assert "Launch the cycle before closing it" in error.value.message_dict["status"][0]
    assert Cycle.objects.get(pk=cycle.pk).status == mode and not received
    # the page turns it into a message, not an error page
    client.force_login(team.manager)
    page = client.post(f"/cycles/{cycle.pk}/close/", follow=True)
    assert page.status_code == 200 and "Launch the cycle before closing it" in page.content.decode()
    assert Cycle.objects.get(pk=cycle.pk).status == mode
