"""At close, responses get new row versions: the submit transaction's id no longer pairs them with invitations."""

from __future__ import annotations

import secrets
import string
from typing import Any

import pytest
from django.db import connection, transaction

from feedback.models import Decline, Response
from feedback.services import response_decline, response_submit
from surveys.models import Cycle, Invitation
from surveys.services import cycle_close
from surveys.signals import cycle_closed
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory
from tests.feedback.helpers import full_answers

pytestmark = pytest.mark.django_db(transaction=True)


def xmins(table: str, cycle: Cycle) -> dict[str, str]:
    """{row id: xmin} — the id of the transaction that wrote each row's current version."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id::text, xmin::text FROM {table} WHERE cycle_id = %s", [cycle.pk])  # noqa: S608 — table names are constants of this test
        return dict(cursor.fetchall())


def answered_cycle() -> tuple[Cycle, list[Invitation]]:
    """An open cycle where two raters answered and one declined, each in its own transaction."""
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    subject = SubjectFactory(cycle=cycle)
    invitations = [InvitationFactory(subject=subject, status=Invitation.Status.OPEN) for _ in range(4)]
    response_submit(invitation_id=invitations[0].pk, answers=full_answers(cycle, value=2))
    response_submit(invitation_id=invitations[1].pk, answers=full_answers(cycle, value=5))
    response_decline(invitation_id=invitations[2].pk, reason="away")
    return cycle, invitations


def test_before_close_a_response_shares_its_transaction_id_with_its_invitation(default_questionnaire: Any) -> None:
    # This is the correlation the close-time rewrite exists to remove.
    cycle, invitations = answered_cycle()
    invitation_xmins = xmins("surveys_invitation", cycle)
    response_xmins = set(xmins("feedback_response", cycle).values())
    submitted = {invitation_xmins[str(invitations[0].pk)], invitation_xmins[str(invitations[1].pk)]}
    assert response_xmins == submitted


def test_the_cycle_closed_signal_rewrites_every_response_and_decline(default_questionnaire: Any) -> None:
    # given
    cycle, _ = answered_cycle()
    before = xmins("feedback_response", cycle) | xmins("feedback_decline", cycle)
    invitation_xmins = set(xmins("surveys_invitation", cycle).values())
    ratings_before = sorted(str(r) for r in Response.objects.values_list("ratings", flat=True))
    # when: the signal the surveys app sends inside its close transaction
    with transaction.atomic():
        cycle_closed.send(sender=Cycle, cycle=cycle)
        with connection.cursor() as cursor:
            cursor.execute("SELECT (pg_current_xact_id()::text::bigint % 4294967296)::text")
            close_xid = cursor.fetchone()[0]
    # then
    after = xmins("feedback_response", cycle) | xmins("feedback_decline", cycle)
    assert set(after) == set(before) and len(after) == 3  # the same rows, no new ones
    assert set(after.values()) == {close_xid}
    assert not set(after.values()) & invitation_xmins
    assert not set(after.values()) & set(before.values())
    assert sorted(str(r) for r in Response.objects.values_list("ratings", flat=True)) == ratings_before
    assert Decline.objects.get().reason == "away"


def test_after_cycle_close_no_response_shares_a_transaction_id_with_any_invitation(
    default_questionnaire: Any, manager: Any
) -> None:
    cycle, _ = answered_cycle()
    submit_era = set(xmins("surveys_invitation", cycle).values()) | set(xmins("feedback_response", cycle).values())
    assert cycle_close(cycle=cycle, by=manager) is True
    response_xmins = set(xmins("feedback_response", cycle).values()) | set(xmins("feedback_decline", cycle).values())
    invitation_xmins = set(xmins("surveys_invitation", cycle).values())
    # Each table was rewritten as a whole by the close: one transaction id for all its rows,
    # and none left from the submits.
    assert len(response_xmins) == 1
    assert len(invitation_xmins) == 1
    assert not response_xmins & submit_era
    assert not invitation_xmins & submit_era
    assert Response.objects.filter(cycle=cycle).count() == 2


def test_other_cycles_are_left_alone(default_questionnaire: Any) -> None:
    cycle, _ = answered_cycle()
    other, _ = answered_cycle()
    before = xmins("feedback_response", other)
    cycle_closed.send(sender=Cycle, cycle=cycle)
    assert xmins("feedback_response", other) == before


def physical_order(cycle: Cycle) -> list[str]:
    """Response ids in the order their row versions sit in the table's pages."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id::text FROM feedback_response WHERE cycle_id = %s ORDER BY ctid", [cycle.pk])
        return [row[0] for row in cursor.fetchall()]


def test_the_rewrite_puts_responses_out_of_submission_order(default_questionnaire: Any) -> None:
    # given: twelve answers; the table holds them in submission order, which completed
    # invitations (rewritten by their status update) share
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    subject = SubjectFactory(cycle=cycle)
    submitted = []
    for value in [1, 2, 3, 4, 5] * 2 + [1, 2]:
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN)
        submitted.append(str(response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=value)).pk))
    assert physical_order(cycle) == submitted
    # when
    with transaction.atomic():
        cycle_closed.send(sender=Cycle, cycle=cycle)
    # then: the same rows, no longer in submission order (a 1 in 479 million chance otherwise)
    after = physical_order(cycle)
    assert sorted(after) == sorted(submitted)
    assert after != submitted


def toast_chunk_ids(cycle: Cycle) -> dict[str, int | None]:
    """{response id: the TOAST chunk id of its comments, or None when stored inline}."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, pg_column_toast_chunk_id(comments)::bigint FROM feedback_response WHERE cycle_id = %s",
            [cycle.pk],
        )
        return dict(cursor.fetchall())


def test_the_rewrite_stores_long_comments_anew(default_questionnaire: Any, manager: Any) -> None:
    # given: long comments, stored out of line under TOAST chunk ids handed out in
    # submission order; random text so that compression cannot bring them back inline
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    subject = SubjectFactory(cycle=cycle)
    alphabet = string.ascii_letters + string.digits
    texts = ["".join(secrets.choice(alphabet) for _ in range(3000)) for _ in range(3)]
    for text in texts:
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN)
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=3, keep_doing=text))
    before = toast_chunk_ids(cycle)
    assert len(before) == 3 and None not in before.values()
    # when
    assert cycle_close(cycle=cycle, by=manager) is True
    # then: every comment sits under a new chunk id; the words are the same
    after = toast_chunk_ids(cycle)
    assert set(after) == set(before)
    assert None not in after.values()
    assert not set(after.values()) & set(before.values())
    stored = sorted(comments["keep_doing"] for comments in Response.objects.values_list("comments", flat=True))
    assert stored == sorted(texts)


def test_the_rewrite_keeps_every_value(default_questionnaire: Any) -> None:
    cycle, _ = answered_cycle()
    response = Response.objects.filter(cycle=cycle).first()
    assert response is not None
    Response.objects.filter(pk=response.pk).update(comments={**response.comments, "management": "Clear plans."})
    values_before = sorted((str(r.pk), r.ratings, r.comments) for r in Response.objects.filter(cycle=cycle))
    with transaction.atomic():
        cycle_closed.send(sender=Cycle, cycle=cycle)
    values_after = sorted((str(r.pk), r.ratings, r.comments) for r in Response.objects.filter(cycle=cycle))
    assert values_after == values_before
    assert Decline.objects.get(cycle=cycle).reason == "away"
