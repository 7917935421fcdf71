"""Reads for the public survey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from config.database import server_binding_cursor
from surveys.models import IDENTIFIED_GROUPS, Cycle, Dimension, Group, Invitation, Item, Person, Subject
from surveys.selectors import invitation_get_by_token
from surveys.vocabulary import SURVEY_ROLES


def answerable(*, status: str, cycle_status: str, deadline: datetime) -> bool:
    """Open invitation, open cycle, deadline not passed: the only state in which a survey is
    shown or takes an answer (the submit checks it on the row it locks)."""
    return status == Invitation.Status.OPEN and cycle_status == Cycle.Status.OPEN and deadline > timezone.now()


def invitation_is_answerable(invitation: Invitation) -> bool:
    return answerable(
        status=invitation.status, cycle_status=invitation.cycle.status, deadline=invitation.cycle.deadline
    )


def invitation_get_answerable_by_token(*, token: str) -> Invitation | None:
    """The invitation behind a link if it can be answered now; ``None`` for every other case.

    Unknown, expired, answered, declined and closed-cycle links all come back as ``None``
    so that callers cannot help but treat them alike (no oracle telling them apart).
    """
    invitation = invitation_get_by_token(token=token)
    if invitation is None or not invitation_is_answerable(invitation):
        return None
    return invitation


def invitation_is_answered(invitation: Invitation | None) -> bool:
    """Answered or declined while its cycle is still open: a repeated submit (the first one
    was stored, its answer never reached the rater) is told "already received"."""
    # Only while the link could still be answered: after the deadline an answered link and
    # an unanswered one must look alike (both closed), as they did before.
    return (
        invitation is not None
        and invitation.status in (Invitation.Status.COMPLETED, Invitation.Status.DECLINED)
        and invitation.cycle.status == Cycle.Status.OPEN
        and invitation.cycle.deadline > timezone.now()
    )


def invitation_answered_by_token(*, token: str) -> bool:
    return invitation_is_answered(invitation_get_by_token(token=token))


def _invitation(invitation_id: int, *related: str) -> Invitation | None:
    # Without the model's default ordering, which goes through the cycle and the subject:
    # compiling it cost more than the query itself, which reads one row by its key.
    return Invitation.objects.select_related(*related).filter(pk=invitation_id).order_by().first()


def invitation_answered(*, invitation_id: int) -> bool:
    return invitation_is_answered(_invitation(invitation_id, "cycle"))


@dataclass(frozen=True, slots=True)
class SurveyInvitation:
    """An invitation that can be answered now, as its survey page shows it: everything the
    page says of it and of its cycle and subject, read in one query, nothing loaded later."""

    id: int
    cycle_id: int
    subject_id: int
    group: str
    questionnaire_id: int
    deadline: datetime
    anonymity_min: int
    comment_threshold: int
    subject_name: str
    source: str


_PAGE_SQL = (
    # The only values built into it are the models' table names: no input.
    'SELECT i.id, i.cycle_id, i.subject_id, i."group", i.status, c.status, c.deadline, c.questionnaire_id,'  # noqa: S608
    # Cycle.comment_threshold: comment_min is null or at least k (a constraint), never 0.
    " c.anonymity_min, COALESCE(c.comment_min, c.anonymity_min), p.name, i.source"
    f" FROM {Invitation._meta.db_table} i JOIN {Cycle._meta.db_table} c ON c.id = i.cycle_id"
    f" JOIN {Subject._meta.db_table} s ON s.id = i.subject_id JOIN {Person._meta.db_table} p ON p.id = s.person_id"
    " WHERE i.id = %s"
)


def invitation_get_answerable(*, invitation_id: int) -> SurveyInvitation | None:
    """The invitation as its survey page shows it, if it can be answered now.

    Read on every survey page, with one hand-written query: the ORM took four times as long
    to compile this join as PostgreSQL took to answer it, and building four model instances
    from its row cost the page more than the row's own values. Bound on the server, so
    prepared: planning the join cost PostgreSQL twice what running it does.
    """
    with server_binding_cursor() as cursor:
        cursor.execute(_PAGE_SQL, [invitation_id])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, cycle_id, subject_id, group, status, cycle_status, deadline, *shown = row
    if not answerable(status=status, cycle_status=cycle_status, deadline=deadline):
        return None
    questionnaire_id, anonymity_min, comment_threshold, subject_name, source = shown
    return SurveyInvitation(
        pk,
        cycle_id,
        subject_id,
        group,
        questionnaire_id,
        deadline,
        anonymity_min,
        comment_threshold,
        subject_name,
        source,
    )


# A questionnaire version is frozen once a launched cycle uses it (surveys/admin.py refuses
# any change to it, its dimensions and its items: the next version is a copy), and a survey
# is only served for a launched, open cycle. So what a version asks is read once per process
# and kept, keyed by the version's id, instead of on every page and every submit. A version
# changed by other means (a fixture loaded over one in use) is seen after a restart.
@lru_cache(maxsize=64)
def _questionnaire_asked(questionnaire_id: int) -> tuple[tuple[Dimension, ...], tuple[str, ...]]:
    dimensions = tuple(
        Dimension.objects.filter(questionnaire_id=questionnaire_id)
        .order_by("position")
        .prefetch_related(Prefetch("items", queryset=Item.objects.order_by("position")))
    )
    codes = tuple(item.code for dimension in dimensions for item in dimension.items.all())
    return dimensions, codes


def questionnaire_dimensions(*, questionnaire_id: int) -> tuple[Dimension, ...]:
    """The dimensions of a questionnaire in use, in order, each with its items prefetched.

    Two queries the first time in a process, none after (see ``_questionnaire_asked``);
    the instances are shared, so callers only read them.
    """
    return _questionnaire_asked(questionnaire_id)[0]


def questionnaire_item_codes(*, questionnaire_id: int) -> tuple[str, ...]:
    """Every item code of a questionnaire in use, in the order it asks them (kept like its dimensions)."""
    return _questionnaire_asked(questionnaire_id)[1]


def survey_role(*, group: str, subject_name: str) -> str:
    """The one sentence that tells a rater whom they rate and in which role."""
    return SURVEY_ROLES[group].format(name=subject_name)


def anonymity_promise(
    *, group: str, subject_name: str, anonymity_min: int, comment_threshold: int, source: str = ""
) -> dict[str, Any]:
    """What happens to this rater's answers, stated honestly for their group (PRODUCT.md,
    anonymity rules), with the cycle's k and the raters a comment needs; ``source`` is who
    chose the rater (``Invitation.Source``): the answers of an outside rater the person
    reviewed nominated count in no figure (``feedback.services``), and the rater is told so."""
    k = anonymity_min
    name = subject_name
    identified = group in IDENTIFIED_GROUPS
    sealed = (
        "Your answers are sealed (encrypted) the moment you submit them, and opened only when the review "
        "closes, together with everyone else's and in shuffled order."
    )
    if group == Group.SELF:
        statement = (
            "Your answers are identified: they are your self-assessment, and your coach sees them as yours, "
            f"next to how others see you. {sealed}"
        )
    elif group == Group.MANAGER:
        statement = (
            f"Your answers are identified: {name}'s coach sees them as the manager's own view. They are also "
            "part of the report's combined “Others” figures, together with the answers of peers, direct "
            f"reports and outside raters (never {name}'s self-assessment), whenever the report shows those. "
            f"{sealed}"
        )
    elif Invitation.counts_nowhere(group=group, source=source):
        statement = (
            f"Your answers are anonymous. {sealed} After that they are stored with nothing that leads back to "
            f"you. {name} named you as a rater, and an address given by the person reviewed could be one of "
            "their own: so the answers of the outside raters they named count in no score of the report, and "
            "their comments are not quoted. You may still answer, or decline."
        )
    else:
        group_name = Group(group).label.lower()
        statement = (
            f"Your answers are anonymous. {sealed} After that they are stored with nothing that leads back to "
            f"you. On each question, answers from {group_name} count only when at least {k} of them answered "
            f"it; a smaller group is combined with other small anonymous groups once together they reach {k}, "
            "and otherwise counts in no score at all. Reports show averages only — never a spread, a lowest or "
            "a highest answer — and the manager who chose the raters never sees any score. Comments are quoted "
            f"word for word without names, only when at least {comment_threshold} anonymous raters have "
            "answered — leave out details that would identify you."
        )
    return {
        "identified": identified,
        "minimum_group_size": None if identified else k,
        "statement": statement,
    }
