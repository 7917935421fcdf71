"""Teams with reporting lines and the email path, for the surveys tests."""

from __future__ import annotations

from typing import Any

from django.core import mail

from surveys import services
from surveys.models import OutboundEmail, Person, Team
from tests.factories import PersonFactory, TeamFactory

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


def person(team: Team, name: str) -> Person:
    return team.people.get(name=name)


def send_queued() -> list[int]:
    """Send every queued email now, as the task would; returns the ids left to retry."""
    ids = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).values_list("id", flat=True))
    return services.outbound_emails_send(email_ids=ids)


def outbox_for(address: str) -> list[Any]:
    return [message for message in mail.outbox if message.to == [address]]
