"""At close, the sealed answers are opened and written by the close transaction, in shuffled order."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings

from feedback.models import Decline, Response, SealedAnswer
from feedback.sealing import SealBroken
from feedback.services import response_decline, response_submit
from surveys.models import Cycle, Invitation
from surveys.services import cycle_close
from surveys.signals import CloseRefused, cycle_closed
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


def test_while_open_the_submit_transaction_pairs_an_invitation_with_ciphertext_only(default_questionnaire: Any) -> None:
    # This is the correlation sealing exists for: the submit writes both rows.
    cycle, invitations = answered_cycle()
    invitation_xmins = xmins("surveys_invitation", cycle)
    sealed_xmins = set(xmins("feedback_sealedanswer", cycle).values())
    assert {invitation_xmins[str(invitations[0].pk)], invitation_xmins[str(invitations[1].pk)]} <= sealed_xmins
    assert not Response.objects.exists()
    assert not Decline.objects.exists()


def test_the_close_writes_every_answer_in_its_own_transaction_and_deletes_the_sealed_rows(
    default_questionnaire: Any, manager: Any
) -> None:
    # given
    cycle, _ = answered_cycle()
    submit_era = set(xmins("surveys_invitation", cycle).values()) | set(xmins("feedback_sealedanswer", cycle).values())
    # when
    assert cycle_close(cycle=cycle, by=manager) is True
    # then: one transaction id for all answers and all invitations, none from the submits
    response_xmins = set(xmins("feedback_response", cycle).values()) | set(xmins("feedback_decline", cycle).values())
    invitation_xmins = set(xmins("surveys_invitation", cycle).values())
    assert len(response_xmins) == 1
    assert response_xmins == invitation_xmins
    assert not response_xmins & submit_era
    assert sorted(r["ratings"][next(iter(r["ratings"]))] for r in Response.objects.values("ratings")) == [2, 5]
    assert Decline.objects.get().reason == "away"
    assert not SealedAnswer.objects.filter(cycle=cycle).exists()


def test_other_cycles_stay_sealed(default_questionnaire: Any) -> None:
    cycle, _ = answered_cycle()
    other, _ = answered_cycle()
    with transaction.atomic():
        cycle_closed.send(sender=Cycle, cycle=cycle)
    assert SealedAnswer.objects.filter(cycle=other).count() == 3
    assert not Response.objects.filter(cycle=other).exists()


def physical_order(cycle: Cycle) -> list[int]:
    """The first rating of each response, in the order the rows sit in the table's pages."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ratings FROM feedback_response WHERE cycle_id = %s ORDER BY ctid", [cycle.pk])
        return [next(iter(json.loads(row[0]).values())) for row in cursor.fetchall()]


def test_the_answers_are_written_out_of_submission_order(default_questionnaire: Any, manager: Any) -> None:
    # given: twelve answers submitted in a known order (each recognisable by its value)
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    subject = SubjectFactory(cycle=cycle)
    submitted = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2]
    for value in submitted:
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN)
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=value))
    # when
    assert cycle_close(cycle=cycle, by=manager) is True
    # then: the same answers, in an order that is not the submission order. Two closes of
    # the same answers give different orders; the chance that three orders all equal the
    # submission order by accident is negligible.
    assert sorted(physical_order(cycle)) == sorted(submitted)
    assert physical_order(cycle) != submitted


def toast_chunk_ids(cycle: Cycle) -> dict[str, int | None]:
    """{response id: the TOAST chunk id of its comments, or None when stored inline}."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT comments->>'keep_doing', pg_column_toast_chunk_id(comments)::bigint "
            "FROM feedback_response WHERE cycle_id = %s",
            [cycle.pk],
        )
        return dict(cursor.fetchall())


def test_long_comments_get_their_toast_chunks_at_close_in_shuffled_order(
    default_questionnaire: Any, manager: Any
) -> None:
    # given: long comments (random text, so that compression cannot bring them back inline)
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    subject = SubjectFactory(cycle=cycle)
    alphabet = string.ascii_letters + string.digits
    texts = ["".join(secrets.choice(alphabet) for _ in range(3000)) for _ in range(8)]
    for text in texts:
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN)
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=3, keep_doing=text))
    # when
    assert cycle_close(cycle=cycle, by=manager) is True
    # then: every comment is stored out of line, and the chunk ids (handed out from a
    # counter as the close inserted them) do not follow the submission order
    chunks = toast_chunk_ids(cycle)
    assert set(chunks) == set(texts)
    assert None not in chunks.values()
    by_chunk = sorted(texts, key=lambda text: chunks[text] or 0)
    assert by_chunk != texts


@pytest.mark.parametrize(("sealed", "changed"), [(b"\x03", b"\x02"), (b"\x02", b"\x03")])
def test_a_sealed_answer_whose_format_byte_was_changed_on_disk_keeps_the_cycle_open(
    default_questionnaire: Any, manager: Any, monkeypatch: pytest.MonkeyPatch, sealed: bytes, changed: bytes
) -> None:
    # given: the format byte says whether an outside answer's group is final; someone with the
    # database turns it, to have a nominated outside rater's answer counted, or the other way
    from feedback import sealing

    with monkeypatch.context() as sealing_as:
        sealing_as.setattr(sealing, "FORMAT", sealed)
        cycle, _ = answered_cycle()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE feedback_sealedanswer SET ciphertext = %s || substring(ciphertext from 2) WHERE cycle_id = %s",
            [changed, cycle.pk],
        )
    # when
    with pytest.raises(CloseRefused) as refused:
        cycle_close(cycle=cycle, by=manager)
    # then: the blobs do not open; nothing is lost, the close rolled back
    assert isinstance(refused.value, SealBroken)
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN
    assert not Response.objects.exists()


def test_a_sealed_answer_no_configured_key_opens_keeps_the_cycle_open(default_questionnaire: Any, manager: Any) -> None:
    # given: answers sealed with a key that has since been removed from the settings
    cycle, _ = answered_cycle()
    # when
    with override_settings(RESPONSE_SEAL_KEYS=[secrets.token_bytes(32)]), pytest.raises(CloseRefused) as refused:
        cycle_close(cycle=cycle, by=manager)
    # then: nothing is lost, the close rolled back
    assert isinstance(refused.value, SealBroken)
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN
    assert SealedAnswer.objects.filter(cycle=cycle).count() == 3
    assert not Response.objects.exists()
    # and with the key back, the close works
    assert cycle_close(cycle=cycle, by=manager) is True
    assert Response.objects.filter(cycle=cycle).count() == 2


def test_a_rotated_key_still_opens_answers_sealed_with_the_old_one(default_questionnaire: Any, manager: Any) -> None:
    # given: answers sealed with the current key, then a new key put first
    from django.conf import settings

    cycle, _ = answered_cycle()
    with override_settings(RESPONSE_SEAL_KEYS=[secrets.token_bytes(32), *settings.RESPONSE_SEAL_KEYS]):
        invitation = InvitationFactory(subject=cycle.subjects.get(), status=Invitation.Status.OPEN)
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=1))
        # when
        assert cycle_close(cycle=cycle, by=manager) is True
    # then: both generations of answers are there
    assert Response.objects.filter(cycle=cycle).count() == 3


def test_the_api_answers_a_close_it_cannot_do_with_a_503_that_keeps_the_cycle_open(
    default_questionnaire: Any, manager: Any
) -> None:
    from rest_framework.test import APIClient

    # given: answers sealed with a key that is no longer configured
    cycle, _ = answered_cycle()
    api = APIClient()
    api.force_authenticate(cycle.team.manager)
    # when
    with override_settings(RESPONSE_SEAL_KEYS=[secrets.token_bytes(32)]):
        response = api.post(f"/api/cycles/{cycle.pk}/close/")
    # then: a JSON 503 saying so, and nothing was closed or lost
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The cycle is still open:")
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN
    assert SealedAnswer.objects.filter(cycle=cycle).count() == 3


@pytest.mark.parametrize(("nominated", "stored"), [(2, 0), (3, 3)])
def test_outside_raters_a_subject_nominated_are_stored_apart_and_fewer_than_k_not_at_all(
    default_questionnaire: Any, manager: Any, nominated: int, stored: int
) -> None:
    # given: k = 3; a lone direct report, and outside raters the subject nominated (which
    # could be addresses of the subject's own)
    from surveys.models import Group
    from surveys.vocabulary import NOMINATED_OUTSIDE, SMALL_GROUPS

    cycle = CycleFactory(status=Cycle.Status.OPEN, team__manager=manager, anonymity_min=3)
    subject = SubjectFactory(cycle=cycle)
    outside = [
        InvitationFactory(
            subject=subject, group=Group.OUTSIDE, source=Invitation.Source.NOMINATED, status=Invitation.Status.OPEN
        )
        for _ in range(nominated)
    ]
    direct_report = InvitationFactory(subject=subject, group=Group.DIRECT_REPORT, status=Invitation.Status.OPEN)
    for invitation in [*outside, direct_report]:
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=4))
    # when
    assert cycle_close(cycle=cycle, by=manager)
    # then: never stored where they could be combined with the direct report's answer
    groups = sorted(Response.objects.filter(subject=subject).values_list("group", flat=True))
    assert groups == sorted([SMALL_GROUPS] + [NOMINATED_OUTSIDE] * stored)


def _outside_rater(subject: Any, source: str) -> tuple[Invitation, str]:
    from surveys.models import Group
    from surveys.services import invitation_link_create

    invitation = InvitationFactory(subject=subject, group=Group.OUTSIDE, source=source, status=Invitation.Status.OPEN)
    return invitation, invitation_link_create(invitation=invitation)


def _answer_through_every_path(cycle: Cycle, links: list[tuple[Invitation, str]], values: list[int]) -> None:
    """Each link answered with its value: the first with the survey form (and its survey
    cookie), the second with the API, the rest with the service — each path that seals."""
    from django.test import Client

    from tests.feedback.helpers import form_data

    (_, first_token), (_, second_token), *rest = links
    browser = Client()
    page = str(browser.get(f"/s/{first_token}/")["Location"])
    assert browser.post(page, form_data(cycle, value=str(values[0]))).status_code == 303
    answered = Client().post(
        f"/api/survey/{second_token}/responses/", full_answers(cycle, value=values[1]), content_type="application/json"
    )
    assert answered.status_code == 201
    for (invitation, _), value in zip(rest, values[2:], strict=True):
        response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=value))


def _nominating_subject_report(manager: Any, *, real_answer: int | None) -> tuple[Any, dict[str, Any]]:
    """k = 3. The subject nominated three outside raters: two addresses of their own (answering
    3) and one real person (answering ``real_answer``, or declining for ``None``); the manager
    added three outside raters (answering 5, 4, 5); one more the subject nominated declines.
    Returns the subject and the report's data once the cycle has closed."""
    from reports import services as reports
    from reports.models import Report

    cycle = CycleFactory(status=Cycle.Status.OPEN, team__manager=manager, anonymity_min=3)
    subject = SubjectFactory(cycle=cycle)
    nominated = [_outside_rater(subject, Invitation.Source.NOMINATED) for _ in range(4)]
    added = [_outside_rater(subject, Invitation.Source.MANAGER) for _ in range(3)]
    if real_answer is None:
        _answer_through_every_path(cycle, [*nominated[:2], added[0]], [3, 3, 5])
        _answer_through_every_path(cycle, [added[1], added[2]], [4, 5])
        response_decline(invitation_id=nominated[2][0].pk, reason="")
    else:
        _answer_through_every_path(cycle, nominated[:3], [3, 3, real_answer])
        _answer_through_every_path(cycle, added, [5, 4, 5])
    response_decline(invitation_id=nominated[3][0].pk, reason="I do not know them well enough")
    assert cycle_close(cycle=cycle, by=manager)
    report = Report.objects.get(subject=subject)
    reports.report_build(report_id=report.pk)
    report.refresh_from_db()
    return subject, report.data


def _read_by_the_subject(data: dict[str, Any]) -> str:
    """Everything the report says, but for which review and person it is about."""
    shown = json.dumps({name: value for name, value in data.items() if name not in ("subject", "cycle")})
    return shown.replace(data["subject"]["name"], "<the subject>")


@pytest.mark.parametrize("rule", ["kept", "broken"])
def test_outside_raters_the_manager_added_count_and_those_the_subject_nominated_change_nothing(
    default_questionnaire: Any, manager: Any, monkeypatch: pytest.MonkeyPatch, rule: str
) -> None:
    from feedback.services import OpenInvitation
    from surveys.vocabulary import NOMINATED_OUTSIDE, OUTSIDE, SMALL_GROUPS

    if rule == "broken":
        # Every answer sealed under its invitation's group: the subject's nominated raters
        # then join the manager's, and the one real rater's answer shows through.
        monkeypatch.setattr(OpenInvitation, "sealed_group", property(lambda invitation: invitation.group))
    # given / when: the same review three times, the real nominated rater answering 1, then 5,
    # then declining (their answers are stored only when k of them answered)
    subject, low = _nominating_subject_report(manager, real_answer=1)
    _, high = _nominating_subject_report(manager, real_answer=5)
    _, declined = _nominating_subject_report(manager, real_answer=None)
    # then: what the subject reads does not move with the real nominated rater's answer,
    # nor with whether they answered at all
    if rule == "broken":
        assert _read_by_the_subject(low) != _read_by_the_subject(high)
        return
    assert _read_by_the_subject(low) == _read_by_the_subject(high) == _read_by_the_subject(declined)
    # and the manager's three count as outside raters, the subject's three are set apart
    stored = sorted(
        (group, *set(ratings.values()))
        for group, ratings in Response.objects.filter(subject=subject).values_list("group", "ratings")
    )
    assert stored == [
        (NOMINATED_OUTSIDE, 1),
        (NOMINATED_OUTSIDE, 3),
        (NOMINATED_OUTSIDE, 3),
        (OUTSIDE, 4),
        (OUTSIDE, 5),
        (OUTSIDE, 5),
    ]
    assert list(Decline.objects.filter(subject=subject).values_list("group", flat=True)) == [SMALL_GROUPS]
    outside = [group for dimension in low["dimensions"] for group in dimension["groups"]]
    assert outside
    assert all(group == {"group": OUTSIDE, "label": "Outside raters", "score": 4.7, "n": 3} for group in outside)
    assert any("Outside raters this person nominated count in no score" in notice for notice in low["notices"])
    assert not any("fewer than 3 people of a group" in notice for notice in low["notices"])


def test_an_outside_answer_sealed_before_outside_raters_were_sealed_by_who_chose_them_keeps_the_old_rule(
    default_questionnaire: Any, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: answers sealed in format 2, which says "outside" for every outside rater: one the
    # manager added for a subject who nominated outside raters cannot be told from one the
    # subject nominated, so every outside answer of that subject is set apart, as before
    from feedback import sealing
    from surveys.vocabulary import NOMINATED_OUTSIDE, OUTSIDE

    cycle = CycleFactory(status=Cycle.Status.OPEN, team__manager=manager, anonymity_min=3)
    nominating, other = SubjectFactory(cycle=cycle), SubjectFactory(cycle=cycle)
    from feedback.services import OpenInvitation

    with monkeypatch.context() as earlier:
        # As the code before sealed: format 2, every outside rater under "outside"
        earlier.setattr(sealing, "FORMAT", b"\x02")
        earlier.setattr(OpenInvitation, "sealed_group", property(lambda invitation: invitation.group))
        for subject, source in (
            (nominating, Invitation.Source.NOMINATED),
            (nominating, Invitation.Source.MANAGER),
            (other, Invitation.Source.MANAGER),
        ):
            for _ in range(3):
                invitation, _ = _outside_rater(subject, source)
                response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=4))
    blobs = SealedAnswer.objects.filter(cycle=cycle).values_list("ciphertext", flat=True)
    assert {bytes(blob[:1]) for blob in blobs} == {b"\x02"}
    # when
    assert cycle_close(cycle=cycle, by=manager)
    # then
    assert (
        sorted(Response.objects.filter(subject=nominating).values_list("group", flat=True)) == [NOMINATED_OUTSIDE] * 6
    )
    assert list(Response.objects.filter(subject=other).values_list("group", flat=True)) == [OUTSIDE] * 3
