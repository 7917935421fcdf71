"""Writes for the public survey: opening a link, submitting, declining, and unsealing at close.

How an answer is kept from its invitation (the product's core promise):

* While the cycle is open an answer exists only sealed (``feedback.sealing``): encrypted
  with a key that is not in the database, padded to one fixed size, stored beside its
  cycle id and nothing else. The submit transaction pairs it with the invitation it
  completes — in ``xmin``, in the order of rows and TOAST chunks, in the WAL — but what
  it pairs is ciphertext.
* When the cycle closes, ``answers_unseal`` opens every sealed answer of the cycle inside
  the close transaction, shuffles them, writes them as ``Response`` (and ``Decline``)
  rows in one batch and deletes the sealed rows. Each plaintext row is written by the
  close, in an order that follows nothing, next to every other answer of the cycle.
* A response row copies only cycle, subject and group — values every rater of that group
  shares. No foreign key to the invitation, its link or the rater's person; the primary
  key is a random UUID4; no timestamp. Ratings and comments are normalized (every item
  code and all four comment keys, in a fixed order), so nothing in a row's shape is
  particular to one rater.
* The rater's browser alone maps an opaque key to the invitation, in an encrypted cookie,
  until the answer is stored; the mapping is dropped in the same request (see
  ``feedback.browser``).
* Nothing here logs, and no id of a stored answer is ever returned to the rater.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import transaction
from django.utils import timezone

from config import links
from config.database import server_binding_cursor
from config.throttling import link_wait_sql
from feedback.answers import COMMENT_NAMES, answers_clean, reason_clean
from feedback.models import Decline, Response, SealedAnswer
from feedback.sealing import answer_group_final, answer_seal, answer_unseal
from feedback.selectors import answerable, invitation_answered, questionnaire_item_codes
from surveys.models import ANONYMOUS_GROUPS, Cycle, Group, Invitation, InvitationLink, nominated_outside
from surveys.vocabulary import NOMINATED_OUTSIDE, SMALL_GROUPS, STORED_ANONYMOUS_GROUPS

# The order must not be predictable from anything stored, hence the operating system's randomness.
_shuffle = random.SystemRandom().shuffle

# What a sealed answer holds: a rater's answers, or a decline's reason.
RESPONSE = "response"
DECLINE = "decline"

NOT_OPEN_MESSAGE = "This survey was already submitted or is no longer open."


class SurveyNotOpen(Exception):
    """The invitation cannot take an answer: already submitted or declined, expired, or the cycle closed."""

    def __init__(self) -> None:
        super().__init__(NOT_OPEN_MESSAGE)


class SurveyClaimLost(SurveyNotOpen):
    """The invitation was open when this submit read it, but another submit or decline of the
    same link claimed it first."""


def invitation_open_mark(*, invitation_id: int) -> bool:
    """Record the first opening of a link; later openings (and mail scanners) change nothing.

    Conditional on ``opened_at IS NULL`` so concurrent openings cannot move the mark.
    Returns whether this call set it.
    """
    return bool(Invitation.objects.filter(pk=invitation_id, opened_at__isnull=True).update(opened_at=timezone.now()))


@dataclass(frozen=True)
class OpenInvitation:
    """What a submit needs of its invitation: where the answer goes, and which items it must answer.

    None of it changes while the invitation is open, so the rater's browser keeps it from
    the emailed link on (``feedback.browser``) and a submit need not read it again; the
    claim checks it against the rows either way.
    """

    id: int
    cycle_id: int
    subject_id: int
    group: str
    questionnaire_id: int
    # Who chose the rater (``Invitation.Source``): an outside rater the subject nominated is
    # sealed apart from every other (``sealed_group``).
    source: str

    @classmethod
    def of(cls, invitation: Invitation) -> OpenInvitation:
        cycle = invitation.cycle
        return cls(
            invitation.pk, cycle.pk, invitation.subject_id, invitation.group, cycle.questionnaire_id, invitation.source
        )

    @property
    def sealed_group(self) -> str:
        """The group the answer is sealed under: "nominated outside" for an outside rater the
        subject nominated (whose address could be the subject's own, so the answer counts in no
        figure), the invitation's group for everyone else — outside raters the manager added
        for the same subject included."""
        if Invitation.counts_nowhere(group=self.group, source=self.source):
            return NOMINATED_OUTSIDE
        return self.group


_COLUMNS = 'i.id, i.cycle_id, i.subject_id, i."group", i.status, c.status, c.deadline, c.questionnaire_id, i.source'
_BY_ID = f"SELECT {_COLUMNS} FROM {{invitation}} i JOIN {{cycle}} c ON c.id = i.cycle_id WHERE i.id = %s"  # noqa: S608 — names
# One row whatever the token: the caller's lock-out, and the link's invitation if there is one.
_BY_LINK = (
    f"SELECT {{lockout}}, {_COLUMNS} FROM (SELECT) AS one "  # noqa: S608 — column and table names
    "LEFT JOIN ({invitation} i JOIN {cycle} c ON c.id = i.cycle_id) "
    "ON i.id = (SELECT invitation_id FROM {link} WHERE token_hash = %s)"
)


@lru_cache(maxsize=2)
def _statement(template: str) -> str:
    return template.format(
        invitation=Invitation._meta.db_table,
        cycle=Cycle._meta.db_table,
        link=InvitationLink._meta.db_table,
        lockout=link_wait_sql(),
    )


def _open_invitation(row: tuple[Any, ...]) -> OpenInvitation | None:
    """What a submit needs of the invitation if it can take an answer now; ``None`` for any other."""
    invitation_id, cycle_id, subject_id, group, status, cycle_status, deadline, questionnaire_id, source = row
    if invitation_id is None or not answerable(status=status, cycle_status=cycle_status, deadline=deadline):
        return None
    return OpenInvitation(invitation_id, cycle_id, subject_id, group, questionnaire_id, source)


def _invitation_read(*, invitation_id: int) -> OpenInvitation:
    """The invitation if it can take an answer now, or ``SurveyNotOpen``: one read, joined to its
    cycle, without a lock — the claim (``_invitation_claim``) checks all of it again."""
    with server_binding_cursor() as cursor:
        cursor.execute(_statement(_BY_ID), [invitation_id])
        row = cursor.fetchone()
    invitation = None if row is None else _open_invitation(row)
    if invitation is None:
        raise SurveyNotOpen
    return invitation


@dataclass(frozen=True)
class LinkRead:
    """What the API's submit reads in one statement: the caller's lock-out, and the link's invitation."""

    # Seconds left on the caller's address being locked out of every secret link, or None.
    locked_for: int | None
    # The invitation if it can take an answer now; None for every other link, unknown ones included.
    invitation: OpenInvitation | None


def invitation_open_by_token(*, token: str, address: str) -> LinkRead:
    """For the API's submit, in one read: whether ``address`` (``config.throttling.link_address``)
    is locked out of secret links, and what a submit needs of the link's invitation if it can
    take an answer now. The lock-out is read whatever the token, so that it tells nothing of it."""
    token_hash = links.token_hash(token) if token and len(token) <= links.TOKEN_MAX_LENGTH else ""
    with server_binding_cursor() as cursor:
        cursor.execute(_statement(_BY_LINK), [address, token_hash])
        locked_for, *row = cursor.fetchone()
    return LinkRead(locked_for, _open_invitation(tuple(row)))


# One statement, so one implicit transaction and one round trip to PostgreSQL:
# - ``claimed`` moves the invitation from open to its new status, if its cycle is open, before
#   its deadline and asks the questionnaire the answer was checked against. The status
#   condition sits on the invitation row itself: when submits of one link race, PostgreSQL
#   re-checks it against the row version the winner wrote, so exactly one claims it.
#   Subject, group and source are those the answer was sealed with;
# - the sealed answer is stored only if the claim took (``%(sealed)b``: sent in binary).
# The invitation row is also what keeps a close from missing the answer: ``cycle_close``
# locks every open invitation of the cycle before it counts and opens the answers, so it
# waits for a claim under way (and then finds it), and a claim that comes later waits for
# the close and then finds the invitation closed. The cycle row is not locked: every
# submit of a cycle would queue on that one row (see cycle_close for the lock order).
_CLAIM = """
WITH claimed AS (
    UPDATE {invitation} SET status = %(new_status)s
    WHERE id = %(invitation)s AND status = %(invitation_open)s AND subject_id = %(subject)s AND "group" = %(group)s
      AND source = %(source)s
      AND cycle_id IN (
          SELECT id FROM {cycle}
          WHERE id = %(cycle)s AND status = %(cycle_open)s AND deadline > %(now)s
            AND questionnaire_id = %(questionnaire)s
      )
    RETURNING cycle_id
)
"""
_STORE = "INSERT INTO {sealed} (id, cycle_id, ciphertext) SELECT %(id)s, cycle_id, %(sealed)b FROM claimed"
_CLAIM_ONLY = "SELECT cycle_id FROM claimed"


@lru_cache(maxsize=2)
def _claim_statement(*, store: bool) -> str:
    return (_CLAIM + (_STORE if store else _CLAIM_ONLY)).format(
        cycle=Cycle._meta.db_table, invitation=Invitation._meta.db_table, sealed=SealedAnswer._meta.db_table
    )


def _invitation_claim(invitation: OpenInvitation, *, new_status: str, sealed: bytes | None = None) -> None:
    """Move the invitation from open to ``new_status`` and store ``sealed`` with it, in one
    statement; ``SurveyNotOpen`` if the cycle closed meanwhile, ``SurveyClaimLost`` if
    another submit or decline of the link claimed it first."""
    parameters: dict[str, Any] = {
        "cycle": invitation.cycle_id,
        "cycle_open": Cycle.Status.OPEN,
        "now": timezone.now(),
        "questionnaire": invitation.questionnaire_id,
        "new_status": new_status,
        "invitation": invitation.id,
        "invitation_open": Invitation.Status.OPEN,
        "subject": invitation.subject_id,
        "group": invitation.group,
        "source": invitation.source,
    }
    if sealed is not None:
        parameters.update(id=uuid.uuid4(), sealed=sealed)
    with server_binding_cursor() as cursor:
        cursor.execute(_claim_statement(store=sealed is not None), parameters)
        claimed = cursor.rowcount
    if claimed != 1:
        # Read again only on this rare path, to say which: answered meanwhile, or closed.
        raise SurveyClaimLost if invitation_answered(invitation_id=invitation.id) else SurveyNotOpen


def response_submit(*, invitation_id: int, answers: Any, held: OpenInvitation | None = None) -> None:
    """Store a rater's answers, once and sealed: ``answers`` is ``{"ratings": {...}, "comments": {...}}``.

    Raises ``SurveyNotOpen`` or ``AnswersInvalid`` (with per-field errors). One statement,
    the claim with the sealed answer, after a read of the invitation unless the browser
    ``held`` what it needs (the questionnaire's item codes are kept per process).
    """
    if held is not None and held.id == invitation_id:
        invitation = held
    else:
        invitation = _invitation_read(invitation_id=invitation_id)
    item_codes = questionnaire_item_codes(questionnaire_id=invitation.questionnaire_id)
    clean = answers_clean(item_codes=item_codes, data=answers)
    # Only values shared by every rater of the group go with the answer; see the module docstring.
    sealed = _seal(invitation, item_codes, payload={"kind": RESPONSE, "ratings": clean.ratings}, texts=clean.comments)
    _invitation_claim(invitation, new_status=Invitation.Status.COMPLETED, sealed=sealed)


def response_decline(*, invitation_id: int, reason: Any = "") -> None:
    """Record that the rater will not answer; an optional reason is kept, sealed like an answer."""
    text = reason_clean(reason=reason)
    invitation = _invitation_read(invitation_id=invitation_id)
    if text:
        item_codes = questionnaire_item_codes(questionnaire_id=invitation.questionnaire_id)
        sealed = _seal(invitation, item_codes, payload={"kind": DECLINE}, texts={"reason": text})
    else:
        sealed = None
    _invitation_claim(invitation, new_status=Invitation.Status.DECLINED, sealed=sealed)


def _seal(
    invitation: OpenInvitation, item_codes: tuple[str, ...], *, payload: dict[str, Any], texts: dict[str, str]
) -> bytes:
    """The answer sealed to the size of every answer to its questionnaire, a decline's too."""
    return answer_seal(
        cycle_id=invitation.cycle_id,
        payload={**payload, "subject": invitation.subject_id, "group": invitation.sealed_group},
        texts=texts,
        item_codes=item_codes,
    )


def _small_groups_merge(responses: list[Response], declines: list[Decline], *, k: int) -> list[Response]:
    """Store the answers of an anonymous group with fewer than k of them as "smaller groups";
    returns the responses to store.

    Such a group is shown nowhere on its own (it is small on every question), and a stored
    group of one would name its member to anyone reading the database beside the list of
    who was invited: the one direct-report response is the one direct report's. A
    decline's reason is never shown in a group, so every anonymous decline is stored so.

    The answers of outside raters the subject nominated ("nominated outside") are never
    combined with anyone's: the subject could have given addresses of their own. Fewer
    than k of them count in no figure at all, and are not stored.
    """
    sizes: dict[tuple[int, str], int] = {}
    for response in responses:
        sizes[(response.subject_id, response.group)] = sizes.get((response.subject_id, response.group), 0) + 1
    kept = [
        response
        for response in responses
        if response.group != NOMINATED_OUTSIDE or sizes[(response.subject_id, response.group)] >= k
    ]
    for response in kept:
        if response.group in ANONYMOUS_GROUPS and sizes[(response.subject_id, response.group)] < k:
            response.group = SMALL_GROUPS
    for decline in declines:
        if decline.group in STORED_ANONYMOUS_GROUPS:
            decline.group = SMALL_GROUPS
    return kept


def _subjects_who_nominated_outside_raters(cycle_id: int) -> set[int]:
    return set(Invitation.objects.filter(nominated_outside(), cycle_id=cycle_id).values_list("subject_id", flat=True))


def answers_unseal(*, cycle_id: int) -> int:
    """Open every sealed answer of a closing cycle and write it in the clear; returns how many.

    Runs inside the close transaction (``cycle_closed``), which has locked the cycle's open
    invitations: every submit either committed before the close took its invitation's row
    or will find the invitation closed. The answers are shuffled with the operating system's randomness and
    inserted in one statement, so the rows, their TOAST chunks and their WAL records come
    in an order that follows nothing; then the sealed rows are deleted.

    A blob no configured key opens stops the close (``SealBroken``): dropping it would
    lose an answer silently, and the cycle stays open until the key is configured again.
    """
    responses: list[Response] = []
    declines: list[Decline] = []
    nominating: set[int] | None = None
    sealed = SealedAnswer.objects.filter(cycle_id=cycle_id).values_list("ciphertext", flat=True)
    for blob in sealed.iterator(chunk_size=200):
        payload, texts = answer_unseal(cycle_id=cycle_id, blob=blob)
        group = payload["group"]
        if group == Group.OUTSIDE and not answer_group_final(blob):
            # Sealed before outside raters were sealed by who chose them: every outside answer
            # of a subject who nominated outside raters is set apart, as it was then.
            if nominating is None:
                nominating = _subjects_who_nominated_outside_raters(cycle_id)
            if payload["subject"] in nominating:
                group = NOMINATED_OUTSIDE
        if payload["kind"] == RESPONSE:
            responses.append(
                Response(
                    cycle_id=cycle_id,
                    subject_id=payload["subject"],
                    group=group,
                    ratings=payload["ratings"],
                    comments={name: texts.get(name, "") for name in COMMENT_NAMES},
                )
            )
        else:
            declines.append(
                Decline(cycle_id=cycle_id, subject_id=payload["subject"], group=group, reason=texts["reason"])
            )
    responses = _small_groups_merge(
        responses,
        declines,
        k=Cycle.objects.values_list("anonymity_min", flat=True).get(pk=cycle_id),
    )
    _shuffle(responses)
    _shuffle(declines)
    # No savepoint: inside the close transaction the rows take its id, not a subtransaction's.
    with transaction.atomic(savepoint=False):
        Response.objects.bulk_create(responses)
        Decline.objects.bulk_create(declines)
        SealedAnswer.objects.filter(cycle_id=cycle_id).delete()
    return len(responses) + len(declines)
