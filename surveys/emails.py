"""Invitation and reminder emails, built from the template triplets in ``templates/emails/``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMultiAlternatives

from config import links
from config.emails import email_build
from surveys.models import Cycle, Invitation, Nomination
from surveys.vocabulary import GROUP_ROLES, IDENTIFIED_GROUPS, MANAGER, RATER_GROUPS, SELF


@dataclass(frozen=True)
class EmailLink:
    subject_name: str
    group: str
    role: str
    url: str

    @property
    def identified(self) -> bool:
        # Self and manager answers are shown as such in the report; the others are anonymous.
        return self.group in IDENTIFIED_GROUPS


# How long one survey takes, about: 30 items on a five-point scale and a few comments.
MINUTES_PER_SURVEY = 10


def survey_minutes(count: int) -> int:
    """The time a rater should set aside for ``count`` surveys, as the invitation says it."""
    return max(count, 1) * MINUTES_PER_SURVEY


def invitation_email_build(
    *,
    kind: str,
    cycle: Cycle,
    recipient: str,
    invitations: list[Invitation],
    tokens: dict[int, str],
    connection: Any = None,
) -> EmailMultiAlternatives:
    """The one message a rater gets: every person they are asked to rate, each with its own link.

    ``kind`` is ``invitation`` or ``reminder`` (the template names).
    """
    ordered = sorted(invitations, key=lambda item: (RATER_GROUPS.index(item.group), item.subject.person.name))
    entries = [
        EmailLink(
            subject_name=invitation.subject.person.name,
            group=invitation.group,
            role=GROUP_ROLES[invitation.group],
            url=links.survey_url(tokens[invitation.pk]),
        )
        for invitation in ordered
    ]
    rater_name = next((invitation.rater_name for invitation in ordered if invitation.rater_name), "")
    context = {
        "cycle": cycle,
        "rater_name": rater_name,
        "entries": entries,
        "count": len(entries),
        "minutes": survey_minutes(len(entries)),
        "deadline": cycle.deadline,
        "anonymity_min": cycle.anonymity_min,
        "any_self": any(entry.group == SELF for entry in entries),
        "any_manager": any(entry.group == MANAGER for entry in entries),
        "any_anonymous": any(not entry.identified for entry in entries),
    }
    return email_build(name=kind, context=context, to=recipient, connection=connection)


def nomination_email_build(*, nomination: Nomination, url: str) -> EmailMultiAlternatives:
    """The request to a subject to choose their peers and outside raters."""
    subject = nomination.subject
    cycle = subject.cycle
    context = {
        "cycle": cycle,
        "person_name": subject.person.name,
        "url": url,
        "nomination_min": cycle.nomination_min,
        "nomination_max": cycle.nomination_max,
        "anonymity_min": cycle.anonymity_min,
        "deadline": cycle.deadline,
    }
    return email_build(name="nomination", context=context, to=subject.person.email.lower())


def nomination_approved_email_build(*, nomination: Nomination) -> EmailMultiAlternatives:
    """The subject told that the manager approved their list of raters.

    It says how many people will be asked, not who: the manager may have added raters,
    and whom the manager chose is for the coach to see (PRODUCT.md, "Anonymity rules").
    """
    subject = nomination.subject
    cycle = subject.cycle
    context = {
        "cycle": cycle,
        "person_name": subject.person.name,
        "submitted": nomination.submitted_at is not None,
        "deadline": cycle.deadline,
    }
    return email_build(name="nomination-approved", context=context, to=subject.person.email.lower())
