"""Review cycles: settings, subjects, launch and close."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from surveys.models import (
    Cycle,
    Invitation,
    InvitationLink,
    Nomination,
    OutboundEmail,
    Person,
    Questionnaire,
    Subject,
    Team,
)
from surveys.selectors import ANONYMOUS, answer_counts
from surveys.services.outbox import emails_ring_on_commit
from surveys.services.people import name_problem
from surveys.services.questionnaires import questionnaire_default
from surveys.services.raters import raters_default_assign
from surveys.signals import CloseRefused, cycle_closed

logger = logging.getLogger(__name__)

MIN_ANONYMITY = 2
# Upper bounds for a cycle's settings. The columns are small integers (a larger value
# would not even fit), and no real team reaches these sizes: a k or a nomination range
# above them is a typing mistake that would hide every figure or block every nomination.
MAX_ANONYMITY = 100
MAX_NOMINATIONS = 50
MAX_REMINDER_DAYS = 60


def _cycle_settings_validate(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if "name" in values and not str(values["name"]).strip():
        errors["name"] = "Give the cycle a name."
    elif "name" in values and (problem := name_problem(str(values["name"]).strip())):
        errors["name"] = problem
    deadline = values.get("deadline")
    if "deadline" in values and (deadline is None or deadline <= timezone.now()):
        errors["deadline"] = "The deadline must be in the future."
    k = values.get("anonymity_min")
    if k is not None and k < MIN_ANONYMITY:
        errors["anonymity_min"] = f"The anonymity minimum can never be below {MIN_ANONYMITY}."
    elif k is not None and k > MAX_ANONYMITY:
        errors["anonymity_min"] = f"The anonymity minimum can be at most {MAX_ANONYMITY}."
    comment_min = values.get("comment_min")
    if comment_min is not None and comment_min > MAX_ANONYMITY:
        errors["comment_min"] = f"The minimum for comments can be at most {MAX_ANONYMITY}."
    elif comment_min is not None and k is not None and comment_min < k:
        errors["comment_min"] = "The minimum for comments cannot be below the anonymity minimum."
    low, high = values.get("nomination_min"), values.get("nomination_max")
    if low is not None and not 0 <= low <= MAX_NOMINATIONS:
        errors["nomination_min"] = f"Choose between 0 and {MAX_NOMINATIONS} raters per group."
    if high is not None and not 1 <= high <= MAX_NOMINATIONS:
        errors["nomination_max"] = f"Choose between 1 and {MAX_NOMINATIONS} raters per group."
    elif low is not None and high is not None and low > high:
        errors["nomination_max"] = "The maximum per group cannot be below the minimum."
    days = values.get("reminder_days_before")
    if days is not None and not 0 <= days <= MAX_REMINDER_DAYS:
        errors["reminder_days_before"] = f"Choose between 0 and {MAX_REMINDER_DAYS} days."
    if errors:
        raise ValidationError(errors)


def _people_validate(*, team: Team, people: list[Person]) -> None:
    if not people:
        raise ValidationError({"subjects": "Choose at least one person to review."})
    if any(person.team_id != team.pk for person in people):
        raise ValidationError({"subjects": "Every subject must be a member of the cycle's team."})


def cycle_create(
    *,
    team: Team,
    by: Any,
    name: str,
    deadline: datetime,
    people: list[Person],
    questionnaire: Questionnaire | None = None,
    anonymity_min: int = 3,
    comment_min: int | None = None,
    nomination_mode: str = Cycle.NominationMode.MANAGER,
    nomination_min: int = 3,
    nomination_max: int = 8,
    reminder_days_before: int = 2,
    default_raters: bool = True,
) -> Cycle:
    """A draft cycle with its subjects and, unless told otherwise, their default raters."""
    values = {
        "name": name,
        "deadline": deadline,
        "anonymity_min": anonymity_min,
        "comment_min": comment_min,
        "nomination_min": nomination_min,
        "nomination_max": nomination_max,
        "reminder_days_before": reminder_days_before,
    }
    _cycle_settings_validate(values)
    _people_validate(team=team, people=people)
    with transaction.atomic():
        cycle = Cycle.objects.create(
            team=team,
            created_by=by,
            name=name.strip()[:200],
            deadline=deadline,
            questionnaire=questionnaire or questionnaire_default(),
            anonymity_min=anonymity_min,
            comment_min=comment_min,
            nomination_mode=nomination_mode,
            nomination_min=nomination_min,
            nomination_max=nomination_max,
            reminder_days_before=reminder_days_before,
        )
        subjects = Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people])
        if default_raters:
            raters_default_assign(cycle=cycle, subjects=subjects)
    return cycle


EDITABLE_WHEN_OPEN = {"name", "deadline", "anonymity_min", "comment_min", "reminder_days_before"}
CYCLE_FIELDS = EDITABLE_WHEN_OPEN | {"questionnaire", "nomination_mode", "nomination_min", "nomination_max"}


def cycle_update(*, cycle: Cycle, changes: dict[str, Any]) -> Cycle:
    """Change a cycle's settings; ``changes`` may also hold ``subjects`` (a list of people, draft only).

    Before launch everything can change. Once launched the questionnaire is frozen and the
    subjects are fixed; the anonymity minimum and the comment threshold can still be
    raised, never lowered — that would reveal groups (or quote comments) given on the
    promise of a higher minimum.
    """
    unknown = set(changes) - CYCLE_FIELDS - {"subjects"}
    if unknown:
        raise ValidationError({field: "Unknown field." for field in unknown})
    with transaction.atomic():
        # NO KEY UPDATE: other writes to the cycle wait for this one, a submit does not (its
        # answer's foreign key takes KEY SHARE on this row, which only FOR UPDATE would block).
        cycle = Cycle.objects.select_for_update(no_key=True).get(pk=cycle.pk)
        if cycle.status == Cycle.Status.CLOSED:
            raise ValidationError({"status": "A closed cycle cannot be changed."})
        launched = cycle.status == Cycle.Status.OPEN
        if cycle.status == Cycle.Status.NOMINATING:
            # The subjects were asked, with these settings, to nominate raters.
            frozen = [field for field in changes if field in ("subjects", "nomination_mode")]
            if frozen:
                raise ValidationError({field: "This cannot change once nominations are open." for field in frozen})
        if launched:
            frozen = [field for field in changes if field not in EDITABLE_WHEN_OPEN]
            if frozen:
                raise ValidationError({field: "This cannot change once the cycle is launched." for field in frozen})
        merged = {field: getattr(cycle, field) for field in CYCLE_FIELDS - {"questionnaire"}}
        merged.update({key: value for key, value in changes.items() if key not in ("subjects", "questionnaire")})
        to_check = dict(merged)
        if "deadline" not in changes:
            to_check.pop("deadline")
        _cycle_settings_validate(to_check)
        _cycle_minimums_guard(cycle=cycle, merged=merged, changes=changes)
        for field, value in merged.items():
            setattr(cycle, field, value.strip()[:200] if field == "name" else value)
        if "questionnaire" in changes:
            if changes["questionnaire"] is None:
                raise ValidationError({"questionnaire": "Choose a questionnaire."})
            cycle.questionnaire = changes["questionnaire"]
        cycle.save()
        if "subjects" in changes:
            _cycle_subjects_set(cycle=cycle, people=list(changes["subjects"]))
    return cycle


def _cycle_minimums_guard(*, cycle: Cycle, merged: dict[str, Any], changes: dict[str, Any]) -> None:
    """Refuse to lower k or the comment threshold once the cycle is launched.

    Raters answer on the promise of the minimums in force (the survey states both).
    Lowering either afterwards would reveal groups, or quote comments, that were given
    on the promise of a larger crowd. The rule does not ask whether anybody has answered
    yet: a refusal that depended on it would tell the manager that some anonymous rater
    had. Clearing the comment minimum counts as lowering it to k, the threshold that then
    applies.
    """
    if cycle.status != Cycle.Status.OPEN:
        return
    new_k = merged["anonymity_min"]
    new_threshold = merged["comment_min"] or new_k
    lowers_k = new_k < cycle.anonymity_min
    lowers_comments = new_threshold < cycle.comment_threshold
    errors: dict[str, str] = {}
    if lowers_k:
        errors["anonymity_min"] = "The anonymity minimum cannot be lowered once the cycle is launched."
    if lowers_comments and (not lowers_k or "comment_min" in changes):
        errors["comment_min"] = (
            f"The minimum for comments cannot go below {cycle.comment_threshold} once the cycle is launched "
            "(leaving it empty would lower it to the anonymity minimum)."
        )
    if errors:
        raise ValidationError(errors)


def _cycle_subjects_set(*, cycle: Cycle, people: list[Person]) -> None:
    _people_validate(team=cycle.team, people=people)
    wanted = {person.pk for person in people}
    cycle.subjects.exclude(person_id__in=wanted).delete()
    present = set(cycle.subjects.values_list("person_id", flat=True))
    added = Subject.objects.bulk_create(
        [Subject(cycle=cycle, person=person) for person in people if person.pk not in present]
    )
    if added:
        raters_default_assign(cycle=cycle, subjects=added)


def cycle_delete(*, cycle: Cycle) -> None:
    deleted, _ = Cycle.objects.filter(pk=cycle.pk, status__in=[Cycle.Status.DRAFT, Cycle.Status.NOMINATING]).delete()
    if not deleted:
        raise ValidationError({"status": "Only a cycle not yet launched can be deleted; close a launched one instead."})


def cycle_launch(*, cycle: Cycle, by: Any) -> bool:
    """Open every draft invitation and queue one email per rater; ``False`` if already launched.

    The status flip is a conditional UPDATE on the cycle row, so a double click, a second
    tab or a retried request finds nothing to flip and sends nothing. Everything else is
    set-based (one UPDATE, one INSERT of the outbox), whatever the cycle's size.
    """
    with transaction.atomic():
        errors: dict[str, str] = {}
        if cycle.deadline <= timezone.now():
            errors["deadline"] = "The deadline has passed; move it before launching."
        if not cycle.subjects.exists():
            errors["subjects"] = "Add at least one subject before launching."
        elif cycle.subjects.filter(invitations__isnull=True).exists():
            errors["raters"] = "Every subject needs at least one rater."
        if (
            cycle.status == Cycle.Status.NOMINATING
            and Nomination.objects.filter(subject__cycle=cycle, approved_at__isnull=True).exists()
        ):
            # The manager sees and approves every list first (PRODUCT.md, "Nominate").
            errors["nominations"] = "Approve every subject's list of raters first (or approve the rest as they are)."
        if errors and cycle.status in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING):
            raise ValidationError(errors)
        now = timezone.now()
        flipped = Cycle.objects.filter(pk=cycle.pk, status__in=[Cycle.Status.DRAFT, Cycle.Status.NOMINATING]).update(
            status=Cycle.Status.OPEN, launched_at=now
        )
        if not flipped:
            return False
        Invitation.objects.filter(cycle=cycle, status=Invitation.Status.DRAFT).update(status=Invitation.Status.OPEN)
        Subject.objects.filter(cycle=cycle).update(
            release_email=Lower(Subquery(Person.objects.filter(pk=OuterRef("person_id")).values("email")[:1]))
        )
        recipients = cycle.invitations.filter(status=Invitation.Status.OPEN).values_list("rater_email", flat=True)
        emails = OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=email, kind=OutboundEmail.Kind.INVITATION)
                for email in sorted(set(recipients))
            ],
            batch_size=2000,
        )
        emails_ring_on_commit(len(emails))
    cycle.status, cycle.launched_at = Cycle.Status.OPEN, now
    return True


def cycle_close(*, cycle: Cycle, by: Any) -> bool:
    """Close an open cycle: links die, open invitations expire, answers are unsealed, reports are
    queued; ``False`` if already closed.

    A conditional UPDATE on the cycle's status makes a second close (or the scheduler
    racing the manager) a no-op. A cycle never launched cannot close (``ValidationError``):
    there is nothing to report, and a draft is deleted instead. Raises ``CloseRefused``
    (and stays open) when a receiver of ``cycle_closed`` cannot do its part, such as
    answers sealed with a key that is no longer configured.
    """
    with transaction.atomic():
        now = timezone.now()
        closed = Cycle.objects.filter(pk=cycle.pk, status=Cycle.Status.OPEN).update(
            status=Cycle.Status.CLOSED, closed_at=now
        )
        if not closed:
            if Cycle.objects.filter(pk=cycle.pk, status__in=[Cycle.Status.DRAFT, Cycle.Status.NOMINATING]).exists():
                raise ValidationError({"status": "Launch the cycle before closing it (or delete the draft)."})
            return False
        # A submit claims its open invitation and stores its sealed answer in one statement
        # (feedback.services). Locking every open invitation here waits for the claims under
        # way, which are then counted and opened below like any other, and makes every
        # later claim wait for this close and find its invitation closed.
        # Lock order: a submit holds its invitation and then, checking its answer's foreign
        # key, takes KEY SHARE on the cycle row; this close holds the cycle row first. The two
        # never deadlock only because the UPDATE above takes the cycle row in NO KEY UPDATE
        # mode, which KEY SHARE does not wait for: take it FOR UPDATE here (or give the
        # cycle a unique index on a column this UPDATE sets) and they could.
        list(
            Invitation.objects.filter(cycle_id=cycle.pk, status=Invitation.Status.OPEN)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        # The manager's progress, kept as counts: the invitations forget it below. An
        # anonymous count is kept only where the manager could see it (k or more invited).
        subjects = []
        for subject_id, counts in answer_counts(cycle=cycle).items():
            invited, answered = counts[ANONYMOUS]
            final: dict[str, list[int | None]] = {key: list(pair) for key, pair in counts.items()}
            final[ANONYMOUS] = [invited, answered if invited >= cycle.anonymity_min else None]
            subjects.append(Subject(pk=subject_id, final_progress=final))
        Subject.objects.bulk_update(subjects, ["final_progress"], batch_size=1000)
        # Every invitation row becomes "closed", answered or not, and is rewritten in this
        # transaction. Kept, "completed" beside "declined" would say who answered: with one
        # direct report who answered, the one direct-report response is theirs. And
        # PostgreSQL stamps each row version with the id of the transaction that wrote it
        # (xmin): a completed invitation and its sealed answer share the submit's;
        # rewriting every row gives them the close's.
        Invitation.objects.filter(cycle_id=cycle.pk).update(status=Invitation.Status.CLOSED, opened_at=None)
        InvitationLink.objects.filter(invitation__cycle_id=cycle.pk).delete()
        # Each reminder email went to a rater who had not answered at that moment: kept,
        # the rows (with their times) would record who answered late and who never did.
        # Nothing needs them once the cycle is closed. The invitation emails went to
        # everybody invited, and the reminder rounds themselves (``Reminder``) say only
        # when a round happened, so both stay.
        OutboundEmail.objects.filter(cycle_id=cycle.pk, kind=OutboundEmail.Kind.REMINDER).delete()
        cycle.refresh_from_db()
        cycle_closed.send(sender=Cycle, cycle=cycle)
    return True


def cycles_close_due() -> list[int]:
    """Close every open cycle whose deadline has passed; returns their ids."""
    closed = []
    for cycle in Cycle.objects.filter(status=Cycle.Status.OPEN, deadline__lte=timezone.now()):
        try:
            if cycle_close(cycle=cycle, by=None):
                closed.append(cycle.pk)
        except CloseRefused as error:
            # The cycle stays open (its answers are kept) and is tried again next time.
            logger.error("cycle %s could not close: %s", cycle.pk, error)
    return closed
