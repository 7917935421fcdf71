"""Nominations: subjects choose their peers and outside raters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from surveys.models import (
    ANONYMOUS_GROUPS,
    Cycle,
    Group,
    Invitation,
    Nomination,
    OutboundEmail,
    Person,
    Subject,
)
from surveys.selectors import nomination_peer_choices
from surveys.services.outbox import emails_ring_on_commit
from surveys.services.people import email_normalize, email_problem
from surveys.services.raters import RaterSpec, raters_bulk_add

logger = logging.getLogger(__name__)


NOMINATED_GROUPS = (Group.PEER, Group.OUTSIDE)


def cycle_nominations_open(*, cycle: Cycle, by: Any) -> bool:
    """Ask every subject to nominate raters; ``False`` if nominations were already opened.

    Like launching, a conditional UPDATE on the cycle's status makes a repeated request
    send nothing.
    """
    if cycle.nomination_mode != Cycle.NominationMode.SUBJECTS:
        raise ValidationError({"nomination_mode": "In this cycle the manager assigns the raters."})
    with transaction.atomic():
        if cycle.deadline <= timezone.now():
            raise ValidationError({"deadline": "The deadline has passed; move it first."})
        flipped = Cycle.objects.filter(pk=cycle.pk, status=Cycle.Status.DRAFT).update(status=Cycle.Status.NOMINATING)
        if not flipped:
            return False
        subjects = list(cycle.subjects.select_related("person"))
        Nomination.objects.bulk_create([Nomination(subject=subject) for subject in subjects], ignore_conflicts=True)
        OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=subject.person.email.lower(), kind=OutboundEmail.Kind.NOMINATION)
                for subject in subjects
            ],
            ignore_conflicts=True,
        )
        queued = OutboundEmail.objects.filter(
            cycle=cycle, kind=OutboundEmail.Kind.NOMINATION, status=OutboundEmail.Status.QUEUED
        )
        emails_ring_on_commit(queued.count())
    cycle.status = Cycle.Status.NOMINATING
    return True


@dataclass(frozen=True)
class OutsideRater:
    email: str
    name: str = ""


def nomination_submit(*, nomination: Nomination, peers: list[Person], others: list[OutsideRater]) -> list[Invitation]:
    """Replace the subject's nominated peers and outside raters (draft invitations) with these.

    The subject may change their list until the manager launches the cycle; the manager
    sees and edits the result on the raters page. The list is also kept as sent
    (``Nomination.sent_peer_ids``, ``sent_outside``): it is what the subject's page shows.
    """
    subject = nomination.subject
    cycle = subject.cycle
    errors: dict[str, str] = {}
    low, high = cycle.nomination_min, cycle.nomination_max
    allowed = {person.pk: person for person in nomination_peer_choices(subject=subject)}
    team_emails = {
        email.lower() for email in Person.objects.filter(team_id=cycle.team_id).values_list("email", flat=True)
    }
    if any(person.pk not in allowed for person in peers):
        errors["peers"] = (
            "Choose peers among your teammates (you, your manager and your direct reports are already asked)."
        )
    elif not low <= len(peers) <= high:
        errors["peers"] = f"Choose between {low} and {high} peers (you chose {len(peers)})."
    emails = [email_normalize(other.email) for other in others]
    bad = [email for email in emails if email_problem(email)]
    if bad:
        errors["others"] = f"Not a valid email address: {', '.join(bad)}."
    elif len(set(emails)) != len(emails):
        errors["others"] = "An email address appears twice."
    elif team_emails & set(emails):
        errors["others"] = "Teammates are nominated as peers, not as outside raters: " + ", ".join(
            sorted(team_emails & set(emails))
        )
    elif len(emails) > high:
        errors["others"] = f"Nominate at most {high} outside raters (you gave {len(emails)})."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != Cycle.Status.NOMINATING:
            raise ValidationError({"__all__": "Nominations for this review are closed."})
        if Nomination.objects.filter(pk=nomination.pk, approved_at__isnull=False).exists():
            raise ValidationError({"__all__": "Your manager has already approved your list; it can no longer change."})
        # Only the subject's own earlier nominations are replaced. Raters the manager added
        # stay: the coach is told how many the manager chose; one the subject had named too
        # is given back to the manager, as it was before.
        drafts = Invitation.objects.filter(subject=subject, status=Invitation.Status.DRAFT)
        drafts.filter(source=Invitation.Source.NOMINATED).exclude(manager_added_as="").update(
            source=Invitation.Source.MANAGER, group=F("manager_added_as"), manager_added_as=""
        )
        drafts.filter(source=Invitation.Source.NOMINATED, group__in=NOMINATED_GROUPS).delete()
        # A rater the manager had added and the subject names too is asked once and becomes the
        # subject's nomination, like every rater the subject names: what the subject reads —
        # their report's counts of who chose whom, the notice on outside raters they named, what
        # an address they gave receives — is then the same whether or not the manager had chosen
        # that rater. An outside rater the subject named counts nowhere, whoever else named the
        # address (``counts_nowhere``). Group, name, person and address become those the subject
        # gave (the group decides where the answers count, the emails greet the rater by the
        # name and go to the address); the manager's group is kept, to be given back. A teammate
        # is found by person too, so that one whose address changed since the manager added them
        # is not asked twice.
        named: dict[str, RaterSpec] = {}
        for person in peers:
            named[email_normalize(person.email)] = RaterSpec(
                subject=subject, group=Group.PEER, email=person.email, name=person.name, person=person
            )
        for other, email in zip(others, emails, strict=True):
            named[email] = RaterSpec(subject=subject, group=Group.OUTSIDE, email=email, name=other.name)
        by_person = {spec.person.pk: email for email, spec in named.items() if spec.person is not None}
        chosen_by_hand = drafts.filter(
            Q(rater_email__in=named) | Q(rater_person_id__in=by_person),
            source=Invitation.Source.MANAGER,
            group__in=ANONYMOUS_GROUPS,
        ).values_list("pk", "group", "rater_email", "rater_person_id")
        asked: set[str] = set()
        for invitation_id, manager_group, address, person_id in chosen_by_hand:
            email = address if address in named else by_person[person_id]
            taken = Invitation.objects.filter(subject=subject, rater_email=email).exclude(pk=invitation_id)
            if email in asked or (email != address and taken.exists()):
                continue
            asked.add(email)
            spec = named[email]
            Invitation.objects.filter(pk=invitation_id).update(
                source=Invitation.Source.NOMINATED,
                group=spec.group,
                manager_added_as=manager_group,
                rater_name=spec.name[:200],
                rater_email=email,
                rater_person=spec.person,
            )
        raters_bulk_add(
            cycle=cycle,
            raters=[
                RaterSpec(
                    subject=subject,
                    group=spec.group,
                    email=email,
                    name=spec.name,
                    person=spec.person,
                    source=Invitation.Source.NOMINATED,
                )
                for email, spec in named.items()
                if email not in asked
            ],
        )
        # The list as sent, for the subject's page.
        sent = {
            "submitted_at": timezone.now(),
            "sent_peer_ids": [person.pk for person in peers],
            "sent_outside": [
                {"name": other.name[:200], "email": email} for other, email in zip(others, emails, strict=True)
            ],
        }
        Nomination.objects.filter(pk=nomination.pk).update(**sent)
    for field, value in sent.items():
        setattr(nomination, field, value)
    return list(subject.invitations.filter(group__in=NOMINATED_GROUPS, source=Invitation.Source.NOMINATED))


def nomination_approve(*, cycle: Cycle, subject: Subject, by: Any, seen: datetime | None = None) -> bool:
    """Approve one subject's raters as they stand now (the manager may edit them first) and
    tell the subject by email; ``False`` if already approved.

    ``seen``: when the manager's page showed the list. A list the subject sent again after
    that is refused: the manager approves only what they have seen. The conditional UPDATE
    on the nomination makes a double click send one email only.
    """
    if subject.cycle_id != cycle.pk:
        raise ValidationError({"subject": "This person is not a subject of this cycle."})
    return _nominations_approve(cycle=cycle, subject_ids=[subject.pk], by=by, seen=seen) == 1


def nominations_approve_rest(*, cycle: Cycle, by: Any, seen: datetime | None = None) -> int:
    """Approve every list not yet approved, as it stands (sent or not); returns how many.
    ``seen`` as for ``nomination_approve``."""
    return _nominations_approve(cycle=cycle, subject_ids=None, by=by, seen=seen)


def _nominations_approve(*, cycle: Cycle, subject_ids: list[int] | None, by: Any, seen: datetime | None) -> int:
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != Cycle.Status.NOMINATING:
            raise ValidationError({"status": "Lists of raters are approved while nominations are open."})
        pending = Nomination.objects.filter(subject__cycle=cycle, approved_at__isnull=True)
        if subject_ids is not None:
            pending = pending.filter(subject_id__in=subject_ids)
        if seen is not None and pending.filter(submitted_at__gt=seen).exists():
            raise ValidationError(
                {"nominations": "A list was sent again after this page was opened; look at it again before approving."}
            )
        approved_ids = list(pending.values_list("subject_id", flat=True))
        if not approved_ids:
            return 0
        Nomination.objects.filter(subject_id__in=approved_ids, approved_at__isnull=True).update(
            approved_at=timezone.now(), approved_by=by if getattr(by, "pk", None) else None
        )
        recipients = Subject.objects.filter(pk__in=approved_ids).values_list("person__email", flat=True)
        emails = OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=email.lower(), kind=OutboundEmail.Kind.NOMINATION_APPROVED)
                for email in recipients
            ],
            ignore_conflicts=True,
        )
        queued = OutboundEmail.objects.filter(
            cycle=cycle,
            kind=OutboundEmail.Kind.NOMINATION_APPROVED,
            status=OutboundEmail.Status.QUEUED,
            recipient__in=[email.recipient for email in emails],
        )
        emails_ring_on_commit(queued.count())
    return len(approved_ids)
