"""Reads for teams, cycles and invitations."""

from __future__ import annotations

import operator
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, Case, Count, F, Q, QuerySet, Value, When
from django.http import Http404

from config import links
from surveys.models import (
    ANONYMOUS_GROUPS,
    Cycle,
    FormerAddress,
    Group,
    Invitation,
    InvitationLink,
    Nomination,
    OutboundEmail,
    Person,
    Reminder,
    Subject,
    Team,
    nominated_outside,
)


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation behind a survey link token, whatever its state; ``None`` if unknown.

    Callers decide what a closed, answered or declined invitation shows; they must show
    the same neutral page for all of those and for an unknown token.
    """
    if not token or len(token) > links.TOKEN_MAX_LENGTH:
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


def managed_by(*, user: Any, via: str = "") -> Q:
    """The one definition of "manages this cycle": the manager of its team, or whoever created it.

    A filter on cycles, or on rows that belong to a cycle with ``via="cycle__"``. Whoever
    manages a cycle chooses its raters, so this also decides who never sees its scores.
    """
    return managed_by_id(user_id=user.pk, via=via)


def managed_by_id(*, user_id: Any, via: str = "") -> Q:
    """``managed_by`` for a user given by id, or by an expression (``OuterRef("coach_id")``)."""
    return Q(**{f"{via}team__manager_id": user_id}) | Q(**{f"{via}created_by_id": user_id})


def cycles_for_user(*, user: Any) -> QuerySet[Cycle]:
    """The cycles ``user`` manages (see ``managed_by``)."""
    if not user.is_authenticated:
        return Cycle.objects.none()
    return Cycle.objects.filter(managed_by(user=user))


def chose_raters_for(*, user: Any, person_ids: list[int]) -> bool:
    """Whether ``user`` managed any cycle — this one or an earlier one — that reviewed one of these people."""
    if not user.is_authenticated:
        return False
    return Subject.objects.filter(person_id__in=person_ids).filter(managed_by(user=user, via="cycle__")).exists()


def rater_address(*, user: Any) -> str:
    """The address under which ``user`` would have been asked to rate, as invitations store
    addresses (``email_normalize``); empty for a user without one.

    The address is all that ties an account to a rater (a survey link needs none): the
    account's addresses before this one are matched too (``invitations_rated_by``); one it
    never had cannot be.
    """
    if not user.is_authenticated:
        return ""
    return rater_address_of(email=getattr(user, "email", "") or "")


def rater_address_of(*, email: str) -> str:
    """An account's address as invitations store addresses."""
    from surveys.services.people import email_normalize  # the services import these selectors

    return email_normalize(email)


def anonymous_rater_invitations(*, rater_email: Any) -> QuerySet[Invitation]:
    """The invitations of launched cycles that asked ``rater_email`` (an address as stored, or an
    expression giving one) to rate someone as one of the anonymous raters (peer, direct report,
    outside rater).

    Whoever answered one knows one answer of that person's anonymous pool: beside a figure
    from k raters it leaves k − 1, and beside a later report's trend the same of that review.
    """
    if rater_email == "":
        return Invitation.objects.none()
    return _anonymous_launched(Invitation.objects.filter(rater_email=rater_email))


def anonymous_rater_invitations_before(*, account: Any) -> QuerySet[Invitation]:
    """The same for every address ``account`` (a user id, or an expression giving one) had
    before its current one (``FormerAddress``).

    Apart from ``anonymous_rater_invitations`` rather than one condition with it: an ``OR``
    with a subquery would read every invitation, where each on its own reads the address index.
    """
    former = FormerAddress.objects.filter(user_id=account).values("address")
    return _anonymous_launched(Invitation.objects.filter(rater_email__in=former))


def _anonymous_launched(invitations: QuerySet[Invitation]) -> QuerySet[Invitation]:
    return invitations.filter(group__in=ANONYMOUS_GROUPS).exclude(status=Invitation.Status.DRAFT)


def invitations_rated_by(*, user: Any) -> tuple[QuerySet[Invitation], QuerySet[Invitation]]:
    """The invitations that asked ``user`` to rate someone as an anonymous rater: those under
    the account's address and those under any it had before, as two querysets to be
    combined with ``Exists`` or read one after the other; none for an anonymous visitor."""
    if not user.is_authenticated:
        return Invitation.objects.none(), Invitation.objects.none()
    return (
        anonymous_rater_invitations(rater_email=rater_address(user=user)),
        anonymous_rater_invitations_before(account=user.pk),
    )


def people_rated_anonymously(*, user: Any, person_ids: list[int]) -> set[int]:
    """Which of these people ``user`` was asked to rate as an anonymous rater, in any cycle."""
    return {
        person_id
        for invitations in invitations_rated_by(user=user)
        for person_id in invitations.filter(subject__person_id__in=person_ids).values_list(
            "subject__person_id", flat=True
        )
    }


def cycle_get_for_user(*, user: Any, cycle_id: int) -> Cycle:
    cycle = cycles_for_user(user=user).select_related("team", "questionnaire").filter(pk=cycle_id).first()
    if cycle is None:
        raise Http404("No such cycle.")
    return cycle


def subject_get_for_cycle(*, cycle: Cycle, subject_id: int) -> Subject:
    subject = Subject.objects.select_related("person").filter(pk=subject_id, cycle=cycle).first()
    if subject is None:
        raise Http404("No such subject.")
    return subject


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
        .only(
            "id",
            "group",
            "source",
            "manager_added_as",
            "rater_email",
            "rater_name",
            "subject__id",
            "subject__person__name",
        )
        .order_by("subject__person__name", "group", "rater_email")
    )


# --- Progress -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterProgress:
    """Whether an identified rater (self, manager) is invited and has answered."""

    invited: bool
    answered: bool


@dataclass(frozen=True)
class SubjectProgress:
    """What a manager may follow for one subject (PRODUCT.md, "Progress").

    Self and manager are identified, so whether each answered is shown. The anonymous
    raters are one pool: "n of m answered" only when m ≥ k — with fewer invited, the
    count would move when one known person answers — and whether the pool has reached k.
    Never a split by anonymous group, never a decline, never a time: the manager chooses
    the raters and could make any of those a group of one.
    """

    subject_id: int
    name: str
    self_rater: RaterProgress
    manager_rater: RaterProgress
    anonymous_invited: int
    k: int
    _anonymous_answered: int = field(repr=False)

    @property
    def anonymous_answered(self) -> int | None:
        return self._anonymous_answered if self.anonymous_invited >= self.k else None

    @property
    def enough(self) -> bool:
        """Whether enough anonymous raters answered for the report to show their figures."""
        return self._anonymous_answered >= self.k

    @property
    def short_of_k(self) -> bool:
        """Fewer than k anonymous raters invited: their report can show self and manager only."""
        return self.anonymous_invited < self.k

    @property
    def percent(self) -> int | None:
        answered = self.anonymous_answered
        if answered is None:
            return None
        return round(100 * answered / self.anonymous_invited) if self.anonymous_invited else 0


# The key under which the anonymous groups are counted together.
ANONYMOUS = "anonymous"


def answer_counts(*, cycle: Cycle) -> dict[int, dict[str, list[int]]]:
    """{subject id: {"self" | "manager" | "anonymous": [invited, answered]}}, counted in the database.

    The anonymous groups are counted together, as the manager may see them; nothing per
    invitation leaves this function. Outside raters a subject nominated are not counted:
    their answers count in no figure (``feedback.services``), so they bring no report closer.
    """
    counts: dict[int, dict[str, list[int]]] = {}
    for subject_id in Subject.objects.filter(cycle=cycle).values_list("id", flat=True):
        counts[subject_id] = {Group.SELF: [0, 0], Group.MANAGER: [0, 0], ANONYMOUS: [0, 0]}
    for row in (
        Invitation.objects.filter(cycle=cycle)
        .exclude(nominated_outside())
        .values("subject_id", "group")
        .annotate(invited=Count("id"), answered=Count("id", filter=Q(status=Invitation.Status.COMPLETED)))
        .order_by()
    ):
        key = ANONYMOUS if row["group"] in ANONYMOUS_GROUPS else row["group"]
        pair = counts.setdefault(row["subject_id"], {}).setdefault(key, [0, 0])
        pair[0] += row["invited"]
        pair[1] += row["answered"]
    return counts


def _answer_counts_snapshot(cycle: Cycle) -> dict[int, dict[str, list[int]]]:
    """The answer counts as of a snapshot at least ``PROGRESS_SNAPSHOT_SECONDS`` old at its
    replacement, the same for every page, live fragment and API call meanwhile.

    Live counts would give a manager watching the progress the time of each answer (to a
    few seconds, by polling): whoever they just saw open the email either did or did not
    answer. A snapshot is replaced only once it is a whole period old, so two snapshots are
    always at least a period apart, whenever anyone looks: a snapshot per numbered period
    would let a manager take one just before a period ends and the next just after it, two
    seconds apart. It is kept on the cycle's row in PostgreSQL and replaced by one
    conditional UPDATE, so two processes cannot each take one, and losing the cache (Redis
    down or flushed) neither shows live counts nor a fresh snapshot early.
    """
    seconds = settings.PROGRESS_SNAPSHOT_SECONDS
    if seconds <= 0:
        return answer_counts(cycle=cycle)
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    stale_before = now - timedelta(seconds=seconds)
    if cycle.progress_counted_at is not None and cycle.progress_counted_at > stale_before:
        return _counts_stored(cycle.progress_counts)
    counts = answer_counts(cycle=cycle)
    replaced = (
        Cycle.objects.filter(pk=cycle.pk)
        .filter(Q(progress_counted_at__isnull=True) | Q(progress_counted_at__lte=stale_before))
        .update(progress_counts=counts, progress_counted_at=now)
    )
    if not replaced:  # another request replaced it a moment ago: show that one
        cycle.progress_counts, cycle.progress_counted_at = Cycle.objects.values_list(
            "progress_counts", "progress_counted_at"
        ).get(pk=cycle.pk)
        return _counts_stored(cycle.progress_counts)
    cycle.progress_counts, cycle.progress_counted_at = counts, now
    return counts


def _counts_stored(stored: Any) -> dict[int, dict[str, list[int]]]:
    """The counts as kept in JSON, keyed by subject id again."""
    return {int(subject_id): counts for subject_id, counts in (stored or {}).items()}


def progress_rows(*, cycle: Cycle) -> QuerySet[Subject, tuple[int, str, Any]]:
    """The cycle's subjects as ``cycle_progress`` reads them, in name order, to be paged.

    By name (then id) and by nothing that follows the answers: an order by progress or by
    when someone answered would tell the manager what the pooled counts hide.
    """
    return (
        Subject.objects.filter(cycle=cycle)
        .order_by("person__name", "id")
        .values_list("id", "person__name", "final_progress")
    )


def cycle_progress(*, cycle: Cycle, rows: Sequence[tuple[int, str, Any]] | None = None) -> list[SubjectProgress]:
    """Per subject, what the manager may see of the answers: two queries whatever the size.

    ``rows`` are a page of ``progress_rows``; without them, every subject of the cycle.
    While the cycle is open the invitations are counted; once it is closed their answered
    state is gone (see ``cycle_close``) and the counts kept at close are read instead.
    ``SubjectProgress`` then hides the anonymous count below k.
    """
    subjects = list(progress_rows(cycle=cycle)) if rows is None else rows
    # The whole cycle's snapshot even for one page: every page shows the same period.
    live = _answer_counts_snapshot(cycle) if cycle.status != Cycle.Status.CLOSED else {}
    progress = []
    for subject_id, name, final in subjects:
        counts = live.get(subject_id) or final or {}

        def pair(key: str, counts: dict[str, list[int]] = counts) -> tuple[int, int]:
            invited, answered = counts.get(key) or (0, 0)
            return invited, answered or 0

        self_invited, self_answered = pair(Group.SELF)
        manager_invited, manager_answered = pair(Group.MANAGER)
        anonymous_invited, anonymous_answered = pair(ANONYMOUS)
        progress.append(
            SubjectProgress(
                subject_id=subject_id,
                name=name,
                self_rater=RaterProgress(invited=self_invited > 0, answered=self_answered > 0),
                manager_rater=RaterProgress(invited=manager_invited > 0, answered=manager_answered > 0),
                anonymous_invited=anonymous_invited,
                k=cycle.anonymity_min,
                _anonymous_answered=anonymous_answered,
            )
        )
    return progress


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
    if not token or len(token) > links.TOKEN_MAX_LENGTH:
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


@dataclass(frozen=True)
class NominationRow:
    """Where one subject's list of raters stands (nomination mode)."""

    subject_id: int
    name: str
    submitted: bool
    approved: bool


@dataclass(frozen=True)
class NominationSummary:
    """How far the cycle's lists of raters are, counted over the whole cycle."""

    total: int
    submitted: int
    approved: int

    @property
    def pending(self) -> int:
        return self.total - self.approved


def nomination_summary(*, cycle: Cycle) -> NominationSummary:
    """Subjects, lists sent and lists approved in the cycle (one aggregate query)."""
    counts = Subject.objects.filter(cycle=cycle).aggregate(
        total=Count("id"),
        submitted=Count("id", filter=Q(nomination__submitted_at__isnull=False)),
        approved=Count("id", filter=Q(nomination__approved_at__isnull=False)),
    )
    return NominationSummary(**counts)


def nomination_rows(*, cycle: Cycle, subject_ids: Sequence[int] | None = None) -> list[NominationRow]:
    """Per subject, in name order: whether they sent their list and whether it is approved (one query).

    Of the given subjects (a page of them), or of the whole cycle.
    """
    subjects = Subject.objects.filter(cycle=cycle)
    if subject_ids is not None:
        subjects = subjects.filter(pk__in=subject_ids)
    return [
        NominationRow(subject_id=subject_id, name=name, submitted=submitted is not None, approved=approved is not None)
        for subject_id, name, submitted, approved in subjects.order_by("person__name", "id").values_list(
            "id", "person__name", "nomination__submitted_at", "nomination__approved_at"
        )
    ]


# --- Who may rate whom, from the reporting lines -------------------------------------------


@dataclass(frozen=True)
class ReportingLines:
    """A team's reporting lines, loaded once: who reports to whom."""

    people: dict[int, Person]
    reports: dict[int, list[Person]]

    @property
    def any(self) -> bool:
        return any(person.reports_to_id is not None for person in self.people.values())

    def manager_of(self, person: Person) -> Person | None:
        return self.people.get(person.reports_to_id) if person.reports_to_id else None

    def reports_of(self, person: Person) -> list[Person]:
        return self.reports.get(person.pk, [])

    def default_peers(self, person: Person) -> list[Person]:
        """The people who share this person's manager; in a team without reporting lines,
        every other member. The manager's own manager and the skip-level reports share
        no manager with the person, so they are never peers."""
        if not self.any:
            return [other for other in self.people.values() if other.pk != person.pk]
        return [
            other
            for other in self.people.values()
            if other.pk != person.pk and other.reports_to_id == person.reports_to_id
        ]

    def not_peers(self, person: Person) -> set[int]:
        """Who can never be this person's peer: themself, their manager and the manager's
        manager, their direct reports and the reports of those (they rate in another
        role, or not at all)."""
        boss = self.manager_of(person)
        excluded = {person.pk}
        if boss is not None:
            excluded.add(boss.pk)
            if boss.reports_to_id:
                excluded.add(boss.reports_to_id)
        for report in self.reports_of(person):
            excluded.add(report.pk)
            excluded.update(skip.pk for skip in self.reports_of(report))
        return excluded


def reporting_lines(*, team_id: int) -> ReportingLines:
    people = {person.pk: person for person in Person.objects.filter(team_id=team_id).order_by("name")}
    reports: dict[int, list[Person]] = {}
    for person in people.values():
        if person.reports_to_id is not None:
            reports.setdefault(person.reports_to_id, []).append(person)
    return ReportingLines(people=people, reports=reports)


def nomination_peer_choices(*, subject: Subject) -> QuerySet[Person]:
    """The teammates a subject may nominate as peers: the one rule for the form and the service.

    Everyone in the team except the subject, their manager, their manager's manager, their
    direct reports and their skip-level reports (see ``ReportingLines.not_peers``).
    """
    lines = reporting_lines(team_id=subject.cycle.team_id)
    own = lines.people.get(subject.person_id) or subject.person
    return Person.objects.filter(team_id=subject.cycle.team_id).exclude(pk__in=lines.not_peers(own)).order_by("name")


# --- Anonymous groups short of k before launch ------------------------------------------------


@dataclass(frozen=True)
class GroupShortOfK:
    """An anonymous group with raters invited but fewer than k: its answers cannot be shown
    on their own (pooled with the subject's other small groups at best, dropped at worst)."""

    group: str
    label: str
    invited: int


@dataclass(frozen=True)
class SubjectAtRisk:
    subject_id: int
    name: str
    groups: list[GroupShortOfK]
    anonymous_invited: int
    k: int

    @property
    def pool_short(self) -> bool:
        """Fewer than k anonymous raters in all: the report can show self and manager only."""
        return self.anonymous_invited < self.k


def subjects_short_of_k(*, cycle: Cycle, subject_ids: Sequence[int] | None = None) -> list[SubjectAtRisk]:
    """Per subject and anonymous group, where fewer than k raters are invited (one query).

    Of the given subjects (a page of them), or of the whole cycle. About the invited
    raters only, so the manager may see it: they chose them. The rule itself is
    ``_subjects_short_of_k``'s, which the counts of at-risk subjects use too.
    """
    labels = dict(Group.choices)
    subjects = _subjects_short_of_k().filter(cycle=cycle)
    if subject_ids is not None:
        subjects = subjects.filter(pk__in=subject_ids)
    rows = subjects.order_by("person__name", "id").values(
        "id",
        "person__name",
        "k",
        "n_anonymous",
        *(f"n_{group}" for group in ANONYMOUS_GROUPS),
        *(f"short_{group}" for group in ANONYMOUS_GROUPS),
    )
    return [
        SubjectAtRisk(
            subject_id=row["id"],
            name=row["person__name"],
            groups=[
                GroupShortOfK(group=group, label=labels[group], invited=row[f"n_{group}"])
                for group in ANONYMOUS_GROUPS
                if row[f"short_{group}"]
            ],
            anonymous_invited=row["n_anonymous"],
            # The k the flags were computed with, read with them (not a copy the caller holds).
            k=row["k"],
        )
        for row in rows
    ]


def _counted_invitations(group: str) -> Q:
    """A subject's invitations of ``group`` whose answers can count in a figure (every one but
    an outside rater the subject nominated), as a condition on ``invitations``."""
    return Q(invitations__group=group) & ~nominated_outside("invitations__")


def _subjects_short_of_k() -> QuerySet[Subject]:
    """The subjects with an anonymous group that has raters but fewer than k, or with fewer
    than k anonymous raters in all, each against its own cycle's k; annotated with the
    invited count of each anonymous group (``n_<group>``), whether it is short
    (``short_<group>``), and the anonymous raters in all (``n_anonymous``).

    Outside raters the subject nominated are not counted: their answers count in no figure
    (``feedback.services``), so they keep no group from being dropped."""
    k = F("cycle__anonymity_min")
    counted = {group: _counted_invitations(group) for group in ANONYMOUS_GROUPS}
    invited = {f"n_{group}": Count("invitations", filter=counted[group]) for group in ANONYMOUS_GROUPS}
    short = {
        f"short_{group}": Case(
            When(Q(**{f"n_{group}__gt": 0, f"n_{group}__lt": k}), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
        for group in ANONYMOUS_GROUPS
    }
    any_short = Q(n_anonymous__lt=k)
    for name in short:
        any_short |= Q(**{name: True})
    return (
        Subject.objects.annotate(
            **invited, n_anonymous=Count("invitations", filter=reduce(operator.or_, counted.values())), k=k
        )
        .annotate(**short)
        .filter(any_short)
    )


def subjects_at_risk_count(*, cycle: Cycle) -> int:
    """How many of the cycle's subjects ``subjects_short_of_k`` names (one query, whatever the size)."""
    return _subjects_short_of_k().filter(cycle=cycle).count()


def cycles_at_risk_count(*, cycles: list[Cycle]) -> dict[int, int]:
    """{cycle id: subjects with an anonymous group short of k}, for cycles not yet closed (one query)."""
    live = [cycle.pk for cycle in cycles if cycle.status != Cycle.Status.CLOSED]
    if not live:
        return {}
    at_risk = Counter(_subjects_short_of_k().filter(cycle_id__in=live).values_list("cycle_id", flat=True))
    return {cycle_id: at_risk[cycle_id] for cycle_id in live}


@dataclass(frozen=True)
class CycleRow:
    """A line of the manager's cycle list; ``at_risk`` is ``None`` once the cycle is closed."""

    cycle: Cycle
    at_risk: int | None


def cycle_rows(*, user: Any) -> list[CycleRow]:
    """The cycle list with, for each cycle not yet closed, its subjects at risk (two queries)."""
    cycles = list(cycle_list(user=user))
    at_risk = cycles_at_risk_count(cycles=cycles)
    return [CycleRow(cycle=cycle, at_risk=at_risk.get(cycle.pk)) for cycle in cycles]
