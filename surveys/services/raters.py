"""Raters: the defaults from the reporting lines, added and removed by hand."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from surveys.models import (
    ANONYMOUS_GROUPS,
    Cycle,
    Group,
    Invitation,
    Nomination,
    Person,
    Subject,
)
from surveys.selectors import reporting_lines
from surveys.services.people import email_normalize, email_validate, name_problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaterSpec:
    """One rater to ask about one subject (used by the bulk assignment)."""

    subject: Subject
    group: str
    email: str
    name: str = ""
    person: Person | None = None
    source: str = Invitation.Source.REPORTING_LINES


def raters_default_assign(*, cycle: Cycle, subjects: list[Subject]) -> int:
    """The default raters from the reporting lines (PRODUCT.md, "Flows"): self, the subject's
    manager, their direct reports, and as peers the people who share their manager (in a
    team without reporting lines, every other member). Peers only when the manager assigns
    raters; otherwise the subjects nominate them.

    Loads the team once and inserts in bulk; returns the number of invitations created.
    """
    lines = reporting_lines(team_id=cycle.team_id)
    specs: list[RaterSpec] = []
    for subject in subjects:
        person = lines.people.get(subject.person_id) or subject.person
        specs.append(RaterSpec(subject=subject, group=Group.SELF, email=person.email, name=person.name, person=person))
        boss = lines.manager_of(person)
        if boss is not None:
            specs.append(RaterSpec(subject=subject, group=Group.MANAGER, email=boss.email, name=boss.name, person=boss))
        specs += [
            RaterSpec(subject=subject, group=Group.DIRECT_REPORT, email=report.email, name=report.name, person=report)
            for report in lines.reports_of(person)
        ]
        if not _peers_by_default(cycle):
            continue
        specs += [
            RaterSpec(subject=subject, group=Group.PEER, email=peer.email, name=peer.name, person=peer)
            for peer in lines.default_peers(person)
        ]
    return raters_bulk_add(cycle=cycle, raters=specs)


def raters_bulk_add(*, cycle: Cycle, raters: Iterable[RaterSpec]) -> int:
    """Insert draft invitations in one statement; a rater already asked about a subject is skipped."""
    invitations = [
        Invitation(
            cycle=cycle,
            subject=spec.subject,
            group=spec.group,
            rater_email=email_normalize(spec.email),
            rater_name=spec.name[:200],
            rater_person=spec.person,
            source=spec.source,
        )
        for spec in raters
    ]
    created = Invitation.objects.bulk_create(invitations, ignore_conflicts=True, batch_size=2000)
    return len(created)


def _cycle_editable_raters(cycle: Cycle) -> None:
    if cycle.status not in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING):
        raise ValidationError({"status": "Raters can only be changed before the cycle is launched."})


def rater_add(*, cycle: Cycle, subject: Subject, email: str, group: str, name: str = "") -> Invitation:
    _cycle_editable_raters(cycle)
    if subject.cycle_id != cycle.pk:
        raise ValidationError({"subject": "This person is not a subject of this cycle."})
    if group not in Group.values:
        raise ValidationError({"group": f"Choose one of: {', '.join(Group.values)}."})
    if problem := name_problem(name.strip()):
        raise ValidationError({"name": problem})
    email = email_validate(email)
    subject_email = subject.person.email.lower()
    if group == Group.SELF and email != subject_email:
        raise ValidationError({"email": "The self rating goes to the subject's own email address."})
    if group != Group.SELF and email == subject_email:
        raise ValidationError({"group": "The subject rates themself in the self group only."})
    if group in (Group.SELF, Group.MANAGER) and subject.invitations.filter(group=group).exists():
        raise ValidationError({"group": f"This subject already has a {Group(group).label.lower()} rater."})
    person = Person.objects.filter(team_id=cycle.team_id, email__iexact=email).first()
    try:
        with transaction.atomic():
            # Under the cycle row's lock, read again: a launch at the same moment either waits
            # for this rater (and then opens and emails them) or has launched already (and the
            # rater is refused), never leaves a draft invitation in an open cycle.
            _cycle_editable_raters(Cycle.objects.select_for_update(no_key=True).get(pk=cycle.pk))
            return Invitation.objects.create(
                cycle=cycle,
                subject=subject,
                group=group,
                rater_email=email,
                rater_name=(name.strip() or (person.name if person else ""))[:200],
                rater_person=person,
                source=Invitation.Source.MANAGER,
            )
    except IntegrityError as error:
        if (nominated := _nominated_rater_claim(subject=subject, email=email, group=group)) is not None:
            return nominated
        asked = None
        if person is not None:
            asked = subject.invitations.filter(rater_person=person).exclude(rater_email=email).first()
        if person is not None and asked is not None:
            raise ValidationError(
                {"email": f"{person.name} is already asked to rate {subject.person.name}, at {asked.rater_email}."}
            ) from error
        raise ValidationError({"email": f"{email} is already asked to rate {subject.person.name}."}) from error


def _nominated_rater_claim(*, subject: Subject, email: str, group: str) -> Invitation | None:
    """A rater the manager adds whom the subject's list already names: recorded as the manager's
    too (``Invitation.manager_added_as``), as when the manager had added them first, so that the
    subject's next list leaving them out gives them to the manager rather than deleting them.
    ``None`` if no such nomination is there."""
    if group not in ANONYMOUS_GROUPS:
        return None
    with transaction.atomic():
        # Under the cycle row's lock, as the subject's list is replaced (nomination_submit).
        _cycle_editable_raters(Cycle.objects.select_for_update(no_key=True).get(pk=subject.cycle_id))
        nominated = (
            Invitation.objects.select_for_update()
            .filter(
                subject=subject,
                rater_email=email,
                status=Invitation.Status.DRAFT,
                source=Invitation.Source.NOMINATED,
                group__in=ANONYMOUS_GROUPS,
                manager_added_as="",
            )
            .first()
        )
        if nominated is None:
            return None
        nominated.manager_added_as = group
        nominated.save(update_fields=["manager_added_as"])
    return nominated


def rater_remove(*, cycle: Cycle, invitation: Invitation) -> bool:
    """Take a rater off the list before launch; ``False`` if they are no longer on it (the
    subject sent their list again since ``invitation`` was read)."""
    with transaction.atomic():
        # Under the cycle row's lock, as a launch and a subject's new list (nomination_submit)
        # take it, and read again under it: what the page showed may have changed since.
        _cycle_editable_raters(Cycle.objects.select_for_update(no_key=True).get(pk=cycle.pk))
        current = (
            Invitation.objects.select_for_update()
            .filter(pk=invitation.pk, cycle=cycle, status=Invitation.Status.DRAFT)
            .first()
        )
        if current is None:
            return False
        current.delete()
        if current.source == Invitation.Source.NOMINATED:
            _nominated_rater_forget(current)
        return True


def _nominated_rater_forget(invitation: Invitation) -> None:
    """Take a rater the manager removed off the list their subject's page shows as sent: the
    page shows the manager's edits of the subject's own list, as it always did, and sending
    the list again does not bring the rater back unseen."""
    nomination = Nomination.objects.select_for_update().filter(subject_id=invitation.subject_id).first()
    if nomination is None:
        return
    if invitation.group == Group.PEER:
        nomination.sent_peer_ids = [pk for pk in nomination.sent_peer_ids if pk != invitation.rater_person_id]
    else:
        nomination.sent_outside = [
            rater for rater in nomination.sent_outside if rater.get("email") != invitation.rater_email
        ]
    nomination.save(update_fields=["sent_peer_ids", "sent_outside"])


def _peers_by_default(cycle: Cycle) -> bool:
    # In the nomination mode the subjects choose their peers; the reporting lines still
    # give self, manager and direct reports.
    return cycle.nomination_mode == Cycle.NominationMode.MANAGER
