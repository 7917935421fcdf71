from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, models
from django.utils import timezone

from feedback.answers import COMMENT_MAX_LENGTH, COMMENT_NAMES, AnswersInvalid
from feedback.models import Decline, Response, SealedAnswer
from feedback.sealing import answer_seal, sealed_bytes
from feedback.services import (
    SurveyNotOpen,
    answers_unseal,
    invitation_open_mark,
    response_decline,
    response_submit,
)
from surveys.models import Cycle, Group, Invitation, Subject
from surveys.vocabulary import SMALL_GROUPS
from tests.factories import InvitationFactory, SubjectFactory
from tests.feedback.helpers import full_answers, item_codes, sealed_payloads


def test_submit_seals_the_answers_and_completes_the_invitation(invitation: Invitation) -> None:
    # given
    answers = full_answers(invitation.cycle, value=5, management="Plans well.", keep_doing="Weekly planning.")
    answers["ratings"][item_codes(invitation.cycle)[0]] = None
    # when
    response_submit(invitation_id=invitation.pk, answers=answers)
    # then
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED
    assert not Response.objects.exists()
    sealed = SealedAnswer.objects.get()
    assert sealed.cycle_id == invitation.cycle_id
    assert b"Plans well." not in bytes(sealed.ciphertext)
    [(payload, texts)] = sealed_payloads(invitation.cycle)
    assert payload == {
        "kind": "response",
        "subject": invitation.subject_id,
        "group": "peer",
        "ratings": answers["ratings"],
    }
    assert texts == {"management": "Plans well.", "leadership": "", "keep_doing": "Weekly planning.", "start_doing": ""}
    # when the cycle closes
    assert answers_unseal(cycle_id=invitation.cycle_id) == 1
    # then the answer is stored in the clear and the sealed row is gone; the one peer's
    # answer is stored as "smaller groups" (fewer than k peers answered)
    stored = Response.objects.get()
    assert (stored.cycle_id, stored.subject_id) == (invitation.cycle_id, invitation.subject_id)
    assert stored.group == SMALL_GROUPS
    assert stored.ratings == answers["ratings"]
    assert stored.comments == texts
    assert not SealedAnswer.objects.exists()


def test_every_sealed_answer_has_the_same_length_whatever_was_typed(make_link: Any) -> None:
    short, _ = make_link(name="Short")
    long, _ = make_link(name="Long", group=Group.DIRECT_REPORT)
    response_submit(invitation_id=short.pk, answers=full_answers(short.cycle))
    # the longest answer there is: every rating "Can't say" (null), the longest group, and
    # every text at its most bytes (each character a pair of UTF-16 code units)
    texts = {name: "🙂" * (COMMENT_MAX_LENGTH // 2) for name in COMMENT_NAMES}
    response_submit(invitation_id=long.pk, answers=full_answers(long.cycle, value=None, **texts))
    decline, _ = make_link(name="Decline")
    response_decline(invitation_id=decline.pk, reason="Not this year.")
    lengths = {len(bytes(blob)) for blob in SealedAnswer.objects.values_list("ciphertext", flat=True)}
    # one length, set by the questionnaire alone: its longest header and four longest texts
    assert lengths == {sealed_bytes(tuple(item_codes(short.cycle)))}
    assert max(lengths) < 4 * (4 + 8000) + 4096


def test_the_sealed_size_follows_the_questionnaire_only() -> None:
    few, many = ("a",), tuple(f"item-{n}" for n in range(40))
    assert sealed_bytes(few) < sealed_bytes(many) < sealed_bytes(None)
    # what an answer to the larger one can hold at its longest still fits
    blob = answer_seal(
        cycle_id=1,
        payload={"kind": "response", "ratings": dict.fromkeys(many), "subject": -(2**63), "group": "x" * 20},
        texts={name: "🙂" * (COMMENT_MAX_LENGTH // 2) for name in COMMENT_NAMES},
        item_codes=many,
    )
    assert len(blob) == sealed_bytes(many)


def test_an_answer_sealed_in_the_first_format_still_opens(invitation: Invitation) -> None:
    # given: a blob as format 1 sealed it before the texts were stored as UTF-16 (UTF-8 texts)
    import json
    import os
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from django.conf import settings

    from feedback import sealing

    header = json.dumps({"kind": "response", "ratings": {}, "subject": 7, "group": "peer", "texts": ["keep_doing"]})
    text = "Größer denken 🙂".encode()
    plaintext = struct.pack(">I", len(header)) + header.encode() + struct.pack(">I", len(text)) + text
    plaintext += bytes(4 + 16 * 1024 + 4 * (4 + 16000) - len(plaintext))
    key = settings.RESPONSE_SEAL_KEYS[0]
    nonce = os.urandom(12)
    aad = f"balance360 sealed answer, cycle {invitation.cycle_id}".encode()
    blob = b"\x01" + sealing._key_id(key) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    # when / then
    payload, texts = sealing.answer_unseal(cycle_id=invitation.cycle_id, blob=blob)
    assert texts == {"keep_doing": "Größer denken 🙂"}
    assert payload == {"kind": "response", "ratings": {}, "subject": 7, "group": "peer"}


def test_second_submit_is_rejected_and_stores_nothing(invitation: Invitation) -> None:
    response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    with pytest.raises(SurveyNotOpen, match="already submitted"):
        response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle, value=1))
    [(payload, _)] = sealed_payloads(invitation.cycle)
    assert payload["ratings"] == full_answers(invitation.cycle)["ratings"]


def test_invalid_answers_store_nothing_and_keep_the_invitation_open(invitation: Invitation) -> None:
    answers = full_answers(invitation.cycle)
    del answers["ratings"][item_codes(invitation.cycle)[3]]
    with pytest.raises(AnswersInvalid) as raised:
        response_submit(invitation_id=invitation.pk, answers=answers)
    assert list(raised.value.errors["ratings"]) == [item_codes(invitation.cycle)[3]]
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN
    assert not SealedAnswer.objects.exists()


@pytest.mark.parametrize(
    "status",
    [Invitation.Status.DRAFT, Invitation.Status.DECLINED, Invitation.Status.EXPIRED, Invitation.Status.COMPLETED],
)
def test_submit_to_an_invitation_that_is_not_open_is_rejected(invitation: Invitation, status: str) -> None:
    Invitation.objects.filter(pk=invitation.pk).update(status=status)
    with pytest.raises(SurveyNotOpen):
        response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    assert not SealedAnswer.objects.exists()


def test_submit_after_the_cycle_closed_is_rejected(invitation: Invitation) -> None:
    Cycle.objects.filter(pk=invitation.cycle_id).update(status=Cycle.Status.CLOSED)
    with pytest.raises(SurveyNotOpen):
        response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN
    assert not SealedAnswer.objects.exists()


def test_submit_after_the_deadline_is_rejected(invitation: Invitation) -> None:
    Cycle.objects.filter(pk=invitation.cycle_id).update(deadline=timezone.now() - timedelta(minutes=1))
    with pytest.raises(SurveyNotOpen):
        response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    assert not SealedAnswer.objects.exists()


def test_submit_for_an_unknown_invitation_is_rejected(db: None) -> None:
    with pytest.raises(SurveyNotOpen):
        response_submit(invitation_id=987654, answers={})


def test_decline_seals_the_reason_and_declines_the_invitation(invitation: Invitation) -> None:
    response_decline(invitation_id=invitation.pk, reason="  I have not worked with Jonas this year. ")
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert not Decline.objects.exists()
    [(payload, texts)] = sealed_payloads(invitation.cycle)
    assert payload == {"kind": "decline", "subject": invitation.subject_id, "group": "peer"}
    assert texts == {"reason": "I have not worked with Jonas this year."}
    with pytest.raises(SurveyNotOpen):
        response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    with pytest.raises(SurveyNotOpen):
        response_decline(invitation_id=invitation.pk)
    answers_unseal(cycle_id=invitation.cycle_id)
    decline = Decline.objects.get()
    # an anonymous decline never keeps its group
    assert (decline.cycle_id, decline.subject_id, decline.group) == (
        invitation.cycle_id,
        invitation.subject_id,
        SMALL_GROUPS,
    )
    assert decline.reason == "I have not worked with Jonas this year."


def test_decline_reason_too_long_is_refused_and_nothing_changes(invitation: Invitation) -> None:
    with pytest.raises(AnswersInvalid) as raised:
        response_decline(invitation_id=invitation.pk, reason="r" * 2001)
    assert "reason" in raised.value.errors
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN
    assert not SealedAnswer.objects.exists()


def test_a_decline_without_a_reason_stores_nothing_but_the_invitation_status(invitation: Invitation) -> None:
    response_decline(invitation_id=invitation.pk)
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert not SealedAnswer.objects.exists()
    answers_unseal(cycle_id=invitation.cycle_id)
    assert not Decline.objects.exists()


def test_the_opened_mark_is_set_once(invitation: Invitation) -> None:
    assert invitation_open_mark(invitation_id=invitation.pk) is True
    invitation.refresh_from_db()
    first = invitation.opened_at
    assert first is not None
    assert invitation_open_mark(invitation_id=invitation.pk) is False
    invitation.refresh_from_db()
    assert invitation.opened_at == first
    assert invitation.status == Invitation.Status.OPEN


@pytest.mark.parametrize("model", [Response, Decline])
def test_stored_rows_have_no_key_time_or_sequence_leading_back_to_the_rater(model: type[models.Model]) -> None:
    fields = {field.name: field for field in model._meta.concrete_fields}
    assert set(fields) == {"id", "cycle", "subject", "group", "ratings" if model is Response else "reason"} | (
        {"comments"} if model is Response else set()
    )
    assert {field.related_model for field in fields.values() if field.is_relation} == {Cycle, Subject}
    assert not [field for field in fields.values() if isinstance(field, models.DateField | models.DateTimeField)]
    pk = model._meta.pk
    assert isinstance(pk, models.UUIDField)
    assert pk.default is uuid.uuid4


def test_a_sealed_answer_holds_its_cycle_and_ciphertext_only() -> None:
    fields = {field.name: field for field in SealedAnswer._meta.concrete_fields}
    assert set(fields) == {"id", "cycle", "ciphertext"}
    pk = SealedAnswer._meta.pk
    assert isinstance(pk, models.UUIDField)
    assert pk.default is uuid.uuid4


@pytest.mark.parametrize("group", [Group.SELF, Group.MANAGER])
def test_an_identified_group_is_copied_from_the_invitation(make_link: Any, group: str) -> None:
    invitation, _ = make_link(group=group)
    response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    answers_unseal(cycle_id=invitation.cycle_id)
    assert Response.objects.get().group == group


@pytest.mark.parametrize("group", [Group.PEER, Group.DIRECT_REPORT, Group.OUTSIDE])
def test_an_anonymous_group_is_stored_only_from_k_answers(cycle: Cycle, group: str) -> None:
    # given: k = 4; four raters of the group answer about one subject, three about another
    full, small = SubjectFactory(cycle=cycle), SubjectFactory(cycle=cycle)
    for subject, count in ((full, 4), (small, 3)):
        for _ in range(count):
            invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN, group=group)
            response_submit(invitation_id=invitation.pk, answers=full_answers(cycle))
    # when
    answers_unseal(cycle_id=cycle.pk)
    # then: the group of four keeps its name; the three answers are "smaller groups" — a
    # group shown nowhere on its own, whose name would narrow each answer to its members
    assert set(Response.objects.filter(subject=full).values_list("group", flat=True)) == {group}
    assert set(Response.objects.filter(subject=small).values_list("group", flat=True)) == {SMALL_GROUPS}


def test_the_claim_is_a_heap_only_update_that_writes_no_index_entry(invitation: Invitation) -> None:
    # No index of the invitations holds the status, and their pages keep room for new row
    # versions: the one change a submit makes to its invitation adds nothing to any index.
    def updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), "
                "pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
                [Invitation._meta.db_table] * 2,
            )
            updated, hot = cursor.fetchone()
        return int(updated), int(hot)

    before = updates()
    response_submit(invitation_id=invitation.pk, answers=full_answers(invitation.cycle))
    after = updates()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
