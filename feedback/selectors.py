"""Reads for the public survey."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Model, Prefetch
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


def _in_model_order(model: type[Model], *names: str) -> tuple[type[Model], tuple[str, ...], tuple[str, ...]]:
    """(model, attribute names, columns), in the model's field order, which Model.from_db takes values in."""
    fields = [field for field in model._meta.concrete_fields if field.attname in names]
    return model, tuple(field.attname for field in fields), tuple(str(field.column) for field in fields)


# What the survey page shows and checks of its invitation, cycle, subject and person.
_PAGE_FIELDS = (
    _in_model_order(Invitation, "id", "cycle_id", "subject_id", "group", "status"),
    _in_model_order(Cycle, "id", "status", "deadline", "anonymity_min", "comment_min", "questionnaire_id"),
    _in_model_order(Subject, "id", "person_id"),
    _in_model_order(Person, "id", "name"),
)
_PAGE_SQL = (
    "SELECT "  # noqa: S608 — column names from the models, no input
    + ", ".join(
        f'{alias}."{column}"' for alias, (_, _, columns) in zip("icsp", _PAGE_FIELDS, strict=True) for column in columns
    )
    + f" FROM {Invitation._meta.db_table} i JOIN {Cycle._meta.db_table} c ON c.id = i.cycle_id"
    f" JOIN {Subject._meta.db_table} s ON s.id = i.subject_id JOIN {Person._meta.db_table} p ON p.id = s.person_id"
    " WHERE i.id = %s"
)


def invitation_get_answerable(*, invitation_id: int) -> Invitation | None:
    """The invitation with its cycle and its subject's person, if it can be answered now.

    Read on every survey page, with one hand-written query: the ORM took four times as long
    to compile this join as PostgreSQL took to answer it. Bound on the server, so prepared:
    planning the join cost PostgreSQL twice what running it does. The instances hold the fields the
    survey uses; any other is loaded on first access, as for a deferred field.
    """
    with server_binding_cursor() as cursor:
        cursor.execute(_PAGE_SQL, [invitation_id])
        row = cursor.fetchone()
    if row is None:
        return None
    instances = []
    offset = 0
    for model, names, _ in _PAGE_FIELDS:
        instances.append(model.from_db(connection.alias, list(names), row[offset : offset + len(names)]))
        offset += len(names)
    invitation, cycle, subject, person = instances
    assert isinstance(invitation, Invitation) and isinstance(subject, Subject)
    assert isinstance(cycle, Cycle) and isinstance(person, Person)
    subject.person = person
    invitation.cycle = cycle
    invitation.subject = subject
    if not invitation_is_answerable(invitation):
        return None
    return invitation


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


def survey_role(*, invitation: Invitation) -> str:
    """The one sentence that tells a rater whom they rate and in which role."""
    return SURVEY_ROLES[invitation.group].format(name=invitation.subject.person.name)


def anonymity_promise(*, invitation: Invitation) -> dict[str, Any]:
    """What happens to this rater's answers, stated honestly for their group (PRODUCT.md, anonymity rules)."""
    cycle = invitation.cycle
    k = cycle.anonymity_min
    name = invitation.subject.person.name
    identified = invitation.group in IDENTIFIED_GROUPS
    sealed = (
        "Your answers are sealed (encrypted) the moment you submit them, and opened only when the review "
        "closes, together with everyone else's and in shuffled order."
    )
    if invitation.group == Group.SELF:
        statement = (
            "Your answers are identified: they are your self-assessment, and your coach sees them as yours, "
            f"next to how others see you. {sealed}"
        )
    elif invitation.group == Group.MANAGER:
        statement = (
            f"Your answers are identified: {name}'s coach sees them as the manager's own view. They are also "
            "part of the report's combined “Others” figures, together with the answers of peers, direct "
            f"reports and outside raters (never {name}'s self-assessment), whenever the report shows those. "
            f"{sealed}"
        )
    else:
        group_name = Group(invitation.group).label.lower()
        statement = (
            f"Your answers are anonymous. {sealed} After that they are stored with nothing that leads back to "
            f"you. On each question, answers from {group_name} count only when at least {k} of them answered "
            f"it; a smaller group is combined with other small anonymous groups once together they reach {k}, "
            "and otherwise counts in no score at all. Reports show averages only — never a spread, a lowest or "
            "a highest answer — and the manager who chose the raters never sees any score. Comments are quoted "
            f"word for word without names, only when at least {cycle.comment_threshold} anonymous raters have "
            "answered — leave out details that would identify you."
        )
    return {
        "identified": identified,
        "minimum_group_size": None if identified else k,
        "statement": statement,
    }
