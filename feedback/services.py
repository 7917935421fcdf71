"""Writes for the public survey: opening a link, submitting, declining, and the close-time rewrite.

How a response is kept from its invitation (the product's core promise):

* The response row copies only cycle, subject and group from the invitation — values
  every rater of that group shares. No foreign key to the invitation, its link or the
  rater's person; the primary key is a random UUID4 (not a sequence that would follow
  submission order, and not derived from anything on the invitation); no timestamp.
* Ratings and comments are normalized (every item code and all four comment keys,
  in a fixed order) so same-group raters who gave the same answers produce identical
  rows — nothing in the row's shape is particular to one rater.
* The session only maps an opaque per-browser key to the invitation until the answer
  is stored; the mapping is dropped in the same request (see ``feedback.views``).
* PostgreSQL stamps each row version with the id of the transaction that wrote it
  (``xmin``), which the completed invitation and its response share, and keeps rows in
  the order they were written, and long comments get TOAST chunk ids in submission
  order. ``responses_rewrite`` runs when a cycle closes and rewrites the responses and
  their stored values in random order, after which none of these traces is left.
* Rows are read in the order of their random ids (``Meta.ordering``), never in the
  physical order that follows submission.
* Nothing here logs, and no response id is ever returned to the rater.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from feedback.answers import answers_clean, reason_clean
from feedback.models import Decline, Response
from feedback.selectors import questionnaire_item_codes
from surveys.models import Cycle, Invitation

# The order must not be predictable from anything stored, hence the operating system's randomness.
_shuffle = random.SystemRandom().shuffle

NOT_OPEN_MESSAGE = "This survey was already submitted or is no longer open."


class SurveyNotOpen(Exception):
    """The invitation cannot take an answer: already submitted or declined, expired, or the cycle closed."""

    def __init__(self) -> None:
        super().__init__(NOT_OPEN_MESSAGE)


def invitation_open_mark(*, invitation_id: int) -> bool:
    """Record the first opening of a link; later openings (and mail scanners) change nothing.

    Conditional on ``opened_at IS NULL`` so concurrent openings cannot move the mark.
    Returns whether this call set it.
    """
    return bool(Invitation.objects.filter(pk=invitation_id, opened_at__isnull=True).update(opened_at=timezone.now()))


def _invitation_claim(*, invitation_id: int, new_status: str) -> Invitation:
    """Inside the caller's transaction: move an open invitation to ``new_status`` or raise ``SurveyNotOpen``.

    The cycle row is read ``FOR SHARE``: submits do not block each other, but a
    concurrent close (which updates the cycle row) waits for this transaction, and this
    one waits for a close in progress and then sees the cycle closed — an answer is
    never stored into a cycle whose reports are already being built.
    """
    invitation = Invitation.objects.filter(pk=invitation_id).only("cycle_id", "subject_id", "group").first()
    if invitation is None:
        raise SurveyNotOpen
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, deadline FROM surveys_cycle WHERE id = %s FOR SHARE",
            [invitation.cycle_id],
        )
        row = cursor.fetchone()
    if row is None or row[0] != Cycle.Status.OPEN or row[1] <= timezone.now():
        raise SurveyNotOpen
    # The status condition must sit on the invitation row itself, with no join: when
    # ten submits of one link race, PostgreSQL re-checks this WHERE clause against the
    # row version the winner wrote, so exactly one UPDATE matches. A filter through a
    # join (``cycle__status=...``) becomes ``id IN (subquery)``, and the subquery would
    # not be re-checked — two submits could both succeed.
    claimed = Invitation.objects.filter(pk=invitation_id, status=Invitation.Status.OPEN).update(status=new_status)
    if claimed != 1:
        raise SurveyNotOpen
    return invitation


def response_submit(*, invitation_id: int, answers: Any) -> Response:
    """Store a rater's answers, once: ``answers`` is ``{"ratings": {...}, "comments": {...}}``.

    Raises ``AnswersInvalid`` (with per-field errors) or ``SurveyNotOpen``.
    """
    invitation = Invitation.objects.select_related("cycle").filter(pk=invitation_id).first()
    if invitation is None:
        raise SurveyNotOpen
    clean = answers_clean(
        item_codes=questionnaire_item_codes(questionnaire_id=invitation.cycle.questionnaire_id),
        data=answers,
    )
    with transaction.atomic():
        claimed = _invitation_claim(invitation_id=invitation_id, new_status=Invitation.Status.COMPLETED)
        # Only values shared by every rater of the group are copied; see the module docstring.
        return Response.objects.create(
            cycle_id=claimed.cycle_id,
            subject_id=claimed.subject_id,
            group=claimed.group,
            ratings=clean.ratings,
            comments=clean.comments,
        )


def response_decline(*, invitation_id: int, reason: Any = "") -> Decline:
    """Record that the rater will not answer, with an optional reason, as anonymously as a response."""
    text = reason_clean(reason=reason)
    with transaction.atomic():
        claimed = _invitation_claim(invitation_id=invitation_id, new_status=Invitation.Status.DECLINED)
        return Decline.objects.create(
            cycle_id=claimed.cycle_id, subject_id=claimed.subject_id, group=claimed.group, reason=text
        )


def responses_rewrite(*, cycle_id: int) -> int:
    """Give every response and decline of a cycle a fresh row version, in random order; returns the count.

    Two traces of the submit survive in a row otherwise, visible to anyone with SQL access:

    * PostgreSQL stamps each row version with the id of its writing transaction (``xmin``),
      and a completed invitation and its response share that id from the submit
      transaction. When a cycle closes the surveys app rewrites the cycle's invitations,
      and this rewrites the responses and declines in the same (close) transaction, so
      that pairing is gone before any report is built.
    * Rows sit in the table's pages in the order they were written (``ctid``): responses
      in submission order, and completed invitations — whose status update also writes a
      new row version — in completion order too. Rewriting the rows one by one in a
      random order puts the new versions in that random order, so matching the k-th
      response with the k-th completed invitation leads nowhere.

    * A long comment (or decline reason) is stored out of line, in the table's TOAST
      relation, under a chunk id that PostgreSQL hands out from a counter: chunk ids
      follow submission order. An UPDATE that leaves a column's value untouched (such as
      ``group = group``) keeps the old TOAST pointer, so the chunk ids would survive the
      rewrite. Each stored text column is therefore set to an expression that yields a
      freshly built value (``comments || '{}'``, ``ratings || '{}'``, ``reason || ''``) —
      equal in content, but a new datum that PostgreSQL stores anew, with a chunk id
      taken in the shuffled order.

    The values do not change; only where and in which order they are stored.
    """
    statements: list[tuple[type[Response] | type[Decline], str]] = [
        (Response, "comments = comments || '{}'::jsonb, ratings = ratings || '{}'::jsonb"),
        (Decline, "reason = reason || ''"),
    ]
    rewritten = 0
    # No savepoint: inside the close transaction the rows take its id, not a subtransaction's.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        for model, assignments in statements:
            ids = list(model.objects.filter(cycle_id=cycle_id).values_list("id", flat=True))
            _shuffle(ids)
            table = connection.ops.quote_name(model._meta.db_table)
            # One statement per row, in the shuffled order (psycopg pipelines them): a single
            # UPDATE would write the new versions in the old, physical order.
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", [(pk,) for pk in ids])  # noqa: S608 — the table name comes from the model and the assignments are constants, not input
            rewritten += len(ids)
    return rewritten
