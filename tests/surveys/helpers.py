"""Teams with reporting lines and the email path, for the surveys tests."""

from __future__ import annotations

from typing import Any

from django.core import mail

from surveys import services
from surveys.models import Cycle, Group, Invitation, OutboundEmail, Person, Subject, Team
from tests.factories import CycleFactory, PersonFactory, TeamFactory

# name, reports to (by name): one lead, two middle managers, four individual contributors.
ORG = [
    ("Lead", None),
    ("Mid One", "Lead"),
    ("Mid Two", "Lead"),
    ("Ann", "Mid One"),
    ("Ben", "Mid One"),
    ("Cat", "Mid Two"),
    ("Dan", "Mid Two"),
]


def team_build(manager: Any, size: int | None = None, name: str = "Platform") -> Team:
    """A team with reporting lines: ``ORG`` by default, or ``size`` people under one lead."""
    team = TeamFactory(manager=manager, name=name)
    people: dict[str, Person] = {}
    if size is None:
        for person_name, boss in ORG:
            slug = person_name.lower().replace(" ", ".")
            people[person_name] = PersonFactory(
                team=team, name=person_name, email=f"{slug}.{team.pk}@example.test", reports_to=people.get(boss or "")
            )
    else:
        lead = PersonFactory(team=team, name="Lead", email=f"lead.{team.pk}@example.test")
        for number in range(1, size):
            PersonFactory(
                team=team, name=f"Member {number:03}", email=f"m{number}.{team.pk}@example.test", reports_to=lead
            )
    return team


# Each subject: self, manager, three peers (one answered) and one direct report — a group
# below k = 3, so every subject is short of k before launch.
GROUPS = (Group.SELF, Group.MANAGER, Group.PEER, Group.PEER, Group.PEER, Group.DIRECT_REPORT)


def cycle_of_size(manager: Any, size: int, status: str = Cycle.Status.OPEN) -> Cycle:
    """A cycle of ``size`` subjects named "Person 000" … in order, built in a few bulk inserts."""
    team = TeamFactory(manager=manager, name=f"Team of {size}")
    people = Person.objects.bulk_create(
        [Person(team=team, name=f"Person {n:03}", email=f"p{n}.{team.pk}@example.test") for n in range(size)]
    )
    cycle = CycleFactory(team=team, name=f"Cycle of {size}", status=status, anonymity_min=3)
    subjects = Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people])
    Invitation.objects.bulk_create(
        Invitation(
            cycle=cycle,
            subject=subject,
            group=group,
            rater_email=f"{group}.{index}.{subject.pk}@example.test",
            status=Invitation.Status.COMPLETED if index == 2 else Invitation.Status.OPEN,
        )
        for subject in subjects
        for index, group in enumerate(GROUPS)
    )
    return cycle


def person(team: Team, name: str) -> Person:
    return team.people.get(name=name)


def send_queued() -> list[int]:
    """Send every queued email now, as the task would; returns the ids left to retry."""
    ids = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).values_list("id", flat=True))
    return services.outbound_emails_send(email_ids=ids)


def outbox_for(address: str) -> list[Any]:
    return [message for message in mail.outbox if message.to == [address]]
