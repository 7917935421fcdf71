"""Reads for teams, cycles and invitations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from surveys import links
from surveys.models import (
    ANONYMOUS_GROUPS,
    Cycle,
    Group,
    Invitation,
    InvitationLink,
    Nomination,
    OutboundEmail,
    Person,
    Reminder,
    Subject,
    Team,
)


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation behind a survey link token, whatever its state; ``None`` if unknown.

    Callers decide what a closed, answered or declined invitation shows; they must show
    the same neutral page for all of those and for an unknown token.
    """
    if not token or len(token) > 200:
        return None
    link = (
        InvitationLink.objects.select_related("invitation__cycle", "invitation__subject__person")
        .filter(token_hash=links.token_hash(token))
        .first()
    )
    return link.invitation if link is not None else None


# --- Access: a manager sees only their own teams and cycles; anybody else gets a 404 ---------


def teams_for_user(*, user: Any) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(manager=user)


def team_get_for_user(*, user: Any, team_id: int) -> Team:
    team = teams_for_user(user=user).filter(pk=team_id).first()
    if team is None:
        raise Http404("No such team.")
    return team


def person_get_for_user(*, user: Any, person_id: int) -> Person:
    person = Person.objects.select_related("team", "reports_to").filter(pk=person_id, team__manager=user).first()
    if person is None or not user.is_authenticated:
        raise Http404("No such person.")
    return person


def cycles_for_user(*, user: Any) -> QuerySet[Cycle]:
    if not user.is_authenticated:
        return Cycle.objects.none()
    return Cycle.objects.filter(team__manager=user)


def cycle_get_for_user(*, user: Any, cycle_id: int) -> Cycle:
    cycle = cycles_for_user(user=user).select_related("team", "questionnaire").filter(pk=cycle_id).first()
    if cycle is None:
        raise Http404("No such cycle.")
    return cycle


def invitation_get_for_cycle(*, cycle: Cycle, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.filter(pk=invitation_id, cycle=cycle).first()
    if invitation is None:
        raise Http404("No such rater.")
    return invitation


# --- Lists --------------------------------------------------------------------------------


def team_list(*, user: Any) -> QuerySet[Team]:
    return teams_for_user(user=user).annotate(
        people_count=Count("people", distinct=True), cycle_count=Count("cycles", distinct=True)
    )


def people_list(*, team: Team) -> QuerySet[Person]:
    return team.people.select_related("reports_to").order_by("name")


def cycle_list(*, user: Any) -> QuerySet[Cycle]:
    return (
        cycles_for_user(user=user)
        .select_related("team")
        .annotate(
            subject_count=Count("subjects", distinct=True),
        )
        .order_by("-created_at")
    )


def raters_list(*, cycle: Cycle) -> QuerySet[Invitation]:
    """Who is asked to rate whom. Deliberately without each invitation's status: whether an
    anonymous rater has answered is exactly what the manager must not learn."""
    return (
        Invitation.objects.filter(cycle=cycle)
        .select_related("subject__person")
        .only("id", "group", "rater_email", "rater_name", "subject__id", "subject__person__name")
        .order_by("subject__person__name", "group", "rater_email")
    )


# --- Progress -----------------------------------------------------------------------------


@dataclass
class GroupProgress:
    group: str
    label: str
    invited: int = 0
    answered: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.answered / self.invited) if self.invited else 0

    @property
    def anonymous(self) -> bool:
        return self.group in ANONYMOUS_GROUPS


@dataclass
class SubjectProgress:
    subject_id: int
    name: str
    groups: list[GroupProgress] = field(default_factory=list)
    declined: int = 0

    @property
    def invited(self) -> int:
        return sum(group.invited for group in self.groups)

    @property
    def answered(self) -> int:
        return sum(group.answered for group in self.groups)

    @property
    def percent(self) -> int:
        return round(100 * self.answered / self.invited) if self.invited else 0


def cycle_progress(*, cycle: Cycle) -> list[SubjectProgress]:
    """Per subject, the number of answers per group: counts only, two queries whatever the size.

    Never which rater answered: the aggregate is computed in the database and nothing
    per invitation leaves this function.
    """
    progress = {
        subject_id: SubjectProgress(
            subject_id=subject_id,
            name=name,
            groups=[GroupProgress(group=group.value, label=group.label) for group in Group],
        )
        for subject_id, name in Subject.objects.filter(cycle=cycle)
        .order_by("person__name")
        .values_list("id", "person__name")
    }
    counts = (
        Invitation.objects.filter(cycle=cycle)
        .values("subject_id", "group")
        .annotate(
            invited=Count("id"),
            answered=Count("id", filter=Q(status=Invitation.Status.COMPLETED)),
            declined=Count("id", filter=Q(status=Invitation.Status.DECLINED)),
        )
        .order_by()
    )
    order = list(Group.values)
    for row in counts:
        subject = progress.get(row["subject_id"])
        if subject is None:
            continue
        group = subject.groups[order.index(row["group"])]
        group.invited, group.answered = row["invited"], row["answered"]
        subject.declined += row["declined"]
    for subject in progress.values():
        subject.groups = [group for group in subject.groups if group.invited]
    return list(progress.values())


@dataclass
class EmailSummary:
    counts: dict[str, dict[str, int]]
    failed_invitations: list[OutboundEmail]

    @property
    def failed(self) -> int:
        return sum(by_status.get(OutboundEmail.Status.FAILED, 0) for by_status in self.counts.values())

    @property
    def pending(self) -> int:
        return sum(
            by_status.get(status, 0)
            for by_status in self.counts.values()
            for status in (OutboundEmail.Status.QUEUED, OutboundEmail.Status.SENDING)
        )


# Sent, or no longer needed: see cycle_email_summary.
DELIVERED = "sent or no longer needed"

# Kinds whose delivery the manager may see. Reminder emails are left out on purpose.
SUMMARY_EMAIL_KINDS: tuple[str, ...] = (OutboundEmail.Kind.INVITATION, OutboundEmail.Kind.NOMINATION)


def cycle_email_summary(*, cycle: Cycle) -> EmailSummary:
    """Delivery counts per kind and status for invitations and nominations, and the failed
    invitation emails by address.

    Reminders appear in no count at all, not even failed ones. A reminder round goes to
    the distinct addresses with an open invitation, while progress counts answers per
    subject: with two subjects at 2/3 each, "1 reminder sent" tells the manager that one
    person is missing from both, and a sent or skipped count over time tells them when
    somebody answered. When the mail server is down for a whole round, even the failed
    count equals the number of recipients. The manager sees only that a round happened,
    and when (``Reminder`` rows).
    """
    counts: dict[str, dict[str, int]] = {kind: {} for kind in SUMMARY_EMAIL_KINDS}
    rows = (
        OutboundEmail.objects.filter(cycle=cycle, kind__in=SUMMARY_EMAIL_KINDS)
        .values("kind", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        # An email found to have nothing left to ask is counted with the sent ones: a
        # separate "skipped" count would tell the manager that its rater had already
        # answered (a failed invitation retried after a reminder got through, say).
        status = (
            DELIVERED if row["status"] in (OutboundEmail.Status.SENT, OutboundEmail.Status.SKIPPED) else row["status"]
        )
        counts[row["kind"]][status] = counts[row["kind"]].get(status, 0) + row["n"]
    failed = list(
        OutboundEmail.objects.filter(
            cycle=cycle, kind=OutboundEmail.Kind.INVITATION, status=OutboundEmail.Status.FAILED
        ).order_by("recipient")[:50]
    )
    return EmailSummary(counts=counts, failed_invitations=failed)


def reminder_rounds(*, cycle: Cycle, limit: int = 5) -> list[Reminder]:
    """The latest reminder rounds of a cycle: when, and whether scheduled or asked for — never to whom."""
    return list(Reminder.objects.filter(cycle=cycle).only("id", "cycle_id", "kind", "created_at")[:limit])


def nomination_get_by_token(*, token: str) -> Nomination | None:
    """The nomination behind a nomination link; ``None`` if unknown."""
    if not token or len(token) > 200:
        return None
    return (
        Nomination.objects.select_related("subject__person", "subject__cycle__team")
        .filter(token_hash=links.token_hash(token))
        .first()
    )


def nominations_status(*, cycle: Cycle) -> dict[int, bool]:
    """{subject id: whether the subject has submitted their nominations}."""
    return {
        subject_id: submitted_at is not None
        for subject_id, submitted_at in Nomination.objects.filter(subject__cycle=cycle).values_list(
            "subject_id", "submitted_at"
        )
    }
