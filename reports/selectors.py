"""Reads: who may see which report, the data a report is built from, coach and team views."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone

from config.links import token_hash
from feedback.models import Response
from reports.models import CoachAssignment, Release, Report
from reports.scoring import REPORT_FORMAT, DimensionSpec, ItemSpec, RaterAnswers
from surveys.models import ANONYMOUS_GROUPS, Cycle, Dimension, Invitation, Item, Subject
from surveys.selectors import (
    anonymous_rater_invitations,
    anonymous_rater_invitations_before,
    invitations_rated_by,
    managed_by,
    managed_by_id,
    rater_address_of,
)

AnyUser = AbstractBaseUser | AnonymousUser


def _is_superuser(user: AnyUser) -> bool:
    return bool(getattr(user, "is_superuser", False))


def _coached_by(user: AnyUser) -> Exists:
    """For a Report queryset: whether ``user`` is assigned as coach to its subject or cycle."""
    return Exists(
        CoachAssignment.objects.filter(coach_id=user.pk).filter(
            Q(subject__isnull=True, cycle_id=OuterRef("cycle_id")) | Q(subject_id=OuterRef("subject_id"))
        )
    )


def reports_visible_to(*, user: AnyUser) -> QuerySet[Report]:
    """Every report whose content ``user`` may read: as an assigned coach, or as admin.

    Not the cycle's manager: the manager decides who rates (outside raters by email
    included), so a manager who entered two addresses of their own beside a single direct
    report could subtract their own answers from any figure and read that one person's.
    The manager sees each report's status, never its figures.
    """
    if not user.is_authenticated:
        return Report.objects.none()
    reports = Report.objects.all()
    if _is_superuser(user):
        return reports
    return reports.filter(_coached_by(user)).exclude(_barred(user))


def _barred(user: AnyUser) -> Q:
    """For a Report queryset: whether ``user`` knows answers behind its figures, and so never
    reads it whatever they are assigned — they chose its person's raters once, or were one of
    that person's anonymous raters once."""
    return _rated_by_choice_of(user) | _rated_anonymously_by(user)


def _rated_anonymously_by(user: AnyUser) -> Q:
    """For a Report queryset: whether ``user`` was asked to rate its person as an anonymous
    rater, in its cycle or any other.

    They know their own answer: subtracted from a figure of k raters it leaves k − 1 of
    them, one fewer than the rules allow. Any cycle, not only the report's own: an earlier
    review's figures come back in a later report's trend.
    """
    person = OuterRef("subject__person_id")
    current, before = invitations_rated_by(user=user)
    return Q(Exists(current.filter(subject__person_id=person))) | Q(Exists(before.filter(subject__person_id=person)))


def _rated_by_choice_of(user: AnyUser) -> Exists:
    """For a Report queryset: whether ``user`` managed any cycle that reviewed its person.

    Whoever chose a person's raters once never reads that person's reports — not even as
    a coach assigned later, or after handing the team over: a report's trend carries the
    earlier review's figures, and those rest on raters they chose.
    """
    return Exists(
        Subject.objects.filter(person_id=OuterRef("subject__person_id")).filter(managed_by(user=user, via="cycle__"))
    )


def report_get_for_user(*, user: AnyUser, report_id: int | str) -> Report:
    """The one way into a report's content (page, JSON, PDF) for pages and the API.

    Anyone who may not read it gets 404 rather than 403, so that an outsider cannot even
    learn which report ids exist.
    """
    try:
        report_id = int(report_id)
    except (TypeError, ValueError):
        raise Http404("No such report.") from None
    report = (
        reports_visible_to(user=user)
        .select_related("cycle", "cycle__team", "subject", "subject__person")
        .filter(id=report_id)
        .first()
    )
    if report is None:
        raise Http404("No such report.")
    return report


def _report_rows_for_user(*, user: AnyUser) -> QuerySet[Report]:
    """Reports whose status row ``user`` may see, each annotated with ``readable``.

    Coaches and admins may open them (``readable``); the cycle's manager sees the status
    only, to follow the jobs and re-run a failed one.
    """
    if not user.is_authenticated:
        return Report.objects.none()
    if _is_superuser(user):
        return Report.objects.annotate(readable=Value(True))
    readable = ExpressionWrapper(Q(_coached_by(user)) & ~_barred(user), output_field=BooleanField())
    return Report.objects.annotate(readable=readable).filter(Q(readable=True) | managed_by(user=user, via="cycle__"))


def report_status_get_for_user(*, user: AnyUser, report_id: int | str) -> Report:
    """A report's status row, for re-running a failed job: its coaches, its cycle's manager
    or admin; anyone else gets 404. Never use it to show a report's content: that is
    ``report_get_for_user``."""
    try:
        report_id = int(report_id)
    except (TypeError, ValueError):
        raise Http404("No such report.") from None
    report = (
        _report_rows_for_user(user=user)
        .select_related("cycle", "cycle__team", "subject", "subject__person")
        .defer("pdf", "data")
        .filter(id=report_id)
        .first()
    )
    if report is None:
        raise Http404("No such report.")
    return report


def report_is_coached_by(*, report: Report, user: AnyUser) -> bool:
    if _is_superuser(user):
        return True
    return CoachAssignment.objects.filter(
        Q(subject__isnull=True, cycle_id=report.cycle_id) | Q(subject_id=report.subject_id), coach_id=user.pk
    ).exists()


def report_get_for_coach(*, user: AnyUser, report_id: int, action: str) -> Report:
    """The report, for its person's coach only: releasing is theirs, not an admin's or manager's.

    Others who may read the report get 403; everyone else 404 (``report_get_for_user``).
    """
    report = report_get_for_user(user=user, report_id=report_id)
    if not report_is_coached_by(report=report, user=user):
        raise PermissionDenied(f"Only the person's coach {action}.")
    return report


def report_list_for_user(*, user: AnyUser, cycle_id: int | None = None) -> QuerySet[Report]:
    """Report rows ``user`` may see (as coach, the cycle's manager or admin) without their
    heavy columns, each annotated with ``readable`` (one query, any number of rows)."""
    reports = (
        _report_rows_for_user(user=user)
        .select_related("cycle", "subject__person")
        .defer("pdf", "data")
        # The id last: two people of one name keep one order from page to page.
        .order_by("-cycle__created_at", "cycle_id", "subject__person__name", "id")
    )
    if cycle_id is not None:
        reports = reports.filter(cycle_id=cycle_id)
    return reports


@dataclass(frozen=True)
class CycleReportCounts:
    """A cycle's report rows that one user may see, counted over the whole cycle."""

    total: int
    ready: int
    # Rows the user may open as coach or admin: the team view is for coaches.
    readable: int
    # Ready and readable: the PDFs the cycle's zip gives this user.
    readable_ready: int
    # Queued or running: the list polls until they are built.
    live: int


def report_counts_by_cycle(*, user: AnyUser, cycle_ids: list[int]) -> dict[int, CycleReportCounts]:
    """{cycle id: counts of the rows ``report_list_for_user`` gives ``user`` there} (one aggregate query).

    Status counts only, of rows the user may see anyway: a page of the list shows some of
    a cycle's rows, and these say how the whole cycle stands.
    """
    ready = Q(status=Report.Status.READY)
    rows = (
        _report_rows_for_user(user=user)
        .filter(cycle_id__in=cycle_ids)
        .values("cycle_id")
        .annotate(
            n_total=Count("id"),
            n_ready=Count("id", filter=ready),
            # Not named after the ``readable`` annotation, which the filters read.
            n_readable=Count("id", filter=Q(readable=True)),
            n_readable_ready=Count("id", filter=ready & Q(readable=True)),
            n_live=Count("id", filter=Q(status__in=(Report.Status.QUEUED, Report.Status.RUNNING))),
        )
        .order_by()
    )
    return {
        row["cycle_id"]: CycleReportCounts(
            total=row["n_total"],
            ready=row["n_ready"],
            readable=row["n_readable"],
            readable_ready=row["n_readable_ready"],
            live=row["n_live"],
        )
        for row in rows
    }


def cycle_get_for_user(*, user: AnyUser, cycle_id: int | str) -> Cycle:
    """A cycle in which ``user`` may read at least one report (coach or admin); else 404."""
    try:
        cycle_id = int(cycle_id)
    except (TypeError, ValueError):
        raise Http404("No such cycle.") from None
    if not reports_visible_to(user=user).filter(cycle_id=cycle_id).exists():
        raise Http404("No such cycle.")
    return Cycle.objects.select_related("team").get(id=cycle_id)


def cycle_get_for_manager(*, user: AnyUser, cycle_id: int | str) -> Cycle:
    """A cycle whose team ``user`` manages (or any, for admins); else 404."""
    try:
        cycle_id = int(cycle_id)
    except (TypeError, ValueError):
        raise Http404("No such cycle.") from None
    if not user.is_authenticated:
        raise Http404("No such cycle.")
    cycles = Cycle.objects.select_related("team")
    if not _is_superuser(user):
        cycles = cycles.filter(managed_by(user=user))
    cycle = cycles.filter(id=cycle_id).first()
    if cycle is None:
        raise Http404("No such cycle.")
    return cycle


@dataclass(frozen=True)
class BuildInput:
    report: Report
    dimensions: list[DimensionSpec]
    raters: list[RaterAnswers]
    previous: dict[str, Any] | None
    # Anonymous raters invited for the subject, counted by who put them on the list: the
    # manager chooses raters and sees no scores; the coach is told these counts.
    anonymous_invited: int
    sources: dict[str, int]
    # Whether the subject nominated outside raters (invited, answered or not), whose answers
    # count in no figure: the report says so whether or not any of them answered.
    nominated_outside: bool


def report_build_input(*, report_id: int) -> BuildInput:
    """Everything one report is computed from, in a fixed number of queries (six)."""
    report = Report.objects.select_related("cycle", "cycle__questionnaire", "subject__person").get(id=report_id)
    dimensions = [
        DimensionSpec(
            key=dimension.key,
            name=dimension.name,
            side=dimension.side,
            pair=dimension.pair,
            items=tuple(ItemSpec(code=item.code, text=item.text) for item in dimension.items.all()),
        )
        for dimension in Dimension.objects.filter(questionnaire_id=report.cycle.questionnaire_id)
        .order_by("position")
        .prefetch_related(Prefetch("items", queryset=Item.objects.order_by("position")))
    ]
    raters = [
        RaterAnswers(group=group, ratings=ratings or {}, comments=comments or {})
        for group, ratings, comments in Response.objects.filter(subject_id=report.subject_id).values_list(
            "group", "ratings", "comments"
        )
    ]
    closed_at = report.cycle.closed_at or timezone.now()
    previous = (
        Report.objects.filter(
            subject__person_id=report.subject.person_id,
            status=Report.Status.READY,
            cycle__status=Cycle.Status.CLOSED,
            cycle__closed_at__lt=closed_at,
            # An earlier report built under a smaller k holds figures this report's k
            # would not allow; it is not shown as the "before" of a trend.
            cycle__anonymity_min__gte=report.cycle.anonymity_min,
            data__format=REPORT_FORMAT,
        )
        .exclude(id=report.id)
        .order_by("-cycle__closed_at")
        .values_list("data", flat=True)
        .first()
    )
    invited = (
        Invitation.objects.filter(subject_id=report.subject_id, group__in=ANONYMOUS_GROUPS)
        .values_list("group", "source")
        .annotate(n=Count("id"))
        .order_by()
    )
    sources = dict.fromkeys(Invitation.Source.values, 0)
    nominated_outside = False
    for group, source, n in invited:
        sources[source] = sources.get(source, 0) + n
        nominated_outside |= Invitation.counts_nowhere(group=group, source=source)
    return BuildInput(
        report=report,
        dimensions=dimensions,
        raters=raters,
        previous=previous,
        anonymous_invited=sum(sources.values()),
        sources=sources,
        nominated_outside=nominated_outside,
    )


@dataclass(frozen=True)
class TeamPoint:
    name: str
    report_id: int
    management: float | None
    leadership: float | None
    status: str

    @property
    def shown(self) -> bool:
        return self.management is not None and self.leadership is not None


def team_balance_rows(*, cycle: Cycle, user: AnyUser) -> QuerySet[Report, tuple[int, str, str, Any]]:
    """The reports of ``cycle`` that ``user`` may read, in name order, as ``team_points`` reads them (to be paged).

    Only coaches and admins get here (``cycle_get_for_user``), never the cycle's manager,
    who chooses the raters.
    """
    return (
        reports_visible_to(user=user)
        .filter(cycle=cycle)
        .order_by("subject__person__name", "id")
        .values_list("id", "subject__person__name", "status", "data__indices__others")
    )


def team_points(rows: Iterable[tuple[int, str, str, Any]]) -> list[TeamPoint]:
    """Each subject's Others point, taken from their stored report (rows of ``team_balance_rows``).

    A subject whose report has no Others index — too few anonymous raters — gets no point:
    the team view shows nothing the person's own report does not.
    """
    points = []
    for report_id, name, status, others in rows:
        management = leadership = None
        if status == Report.Status.READY and isinstance(others, dict):
            management = (others.get("management") or {}).get("score")
            leadership = (others.get("leadership") or {}).get("score")
        points.append(
            TeamPoint(name=name, report_id=report_id, management=management, leadership=leadership, status=status)
        )
    return points


@dataclass(frozen=True)
class TeamSummary:
    """The team view's people counted over the whole cycle, whichever page is shown."""

    people: int
    shown: int
    ready: int

    @property
    def waiting(self) -> int:
        """Reports not ready yet (queued, running or failed)."""
        return self.people - self.ready

    @property
    def hidden(self) -> int:
        """Ready reports without an Others point: too few anonymous raters."""
        return self.ready - self.shown


def _has_score(path: str) -> Q:
    # A key present with a JSON null is no score either.
    return Q(**{f"{path}__isnull": False}) & ~Q(**{path: None})


def team_balance_summary(*, cycle: Cycle, user: AnyUser) -> TeamSummary:
    """How many people the team view has, and how many of them have a point (one aggregate query)."""
    ready = Q(status=Report.Status.READY)
    shown = (
        ready
        & _has_score("data__indices__others__management__score")
        & _has_score("data__indices__others__leadership__score")
    )
    counts = (
        reports_visible_to(user=user)
        .filter(cycle=cycle)
        .aggregate(people=Count("id"), ready=Count("id", filter=ready), shown=Count("id", filter=shown))
    )
    return TeamSummary(**counts)


def release_get_by_token(*, token: str) -> Release | None:
    return (
        Release.objects.select_related("report", "report__cycle", "report__subject__person")
        .filter(token_hash=token_hash(token))
        .first()
    )


def releases_for_report(*, report: Report) -> QuerySet[Release]:
    """The report's releases, newest first, with how their emails went (one query)."""
    return Release.objects.filter(report=report).order_by("-created_at", "-id")


def coach_assignments_for_cycle(*, cycle: Cycle) -> QuerySet[CoachAssignment]:
    return CoachAssignment.objects.filter(cycle=cycle).select_related("coach", "subject__person")


def manageable_cycle_ids(*, user: AnyUser, cycle_ids: list[int]) -> set[int]:
    """Of ``cycle_ids``, those whose team ``user`` manages (one query)."""
    if not user.is_authenticated:
        return set()
    cycles = Cycle.objects.filter(id__in=cycle_ids)
    if not _is_superuser(user):
        cycles = cycles.filter(managed_by(user=user))
    return set(cycles.values_list("id", flat=True))


def cycle_pdfs_for_user(*, user: AnyUser, cycle: Cycle) -> QuerySet[Report]:
    """Ready reports of ``cycle`` visible to ``user``, with only what a file in the cycle's zip
    needs: the PDF and the person's and cycle's names. Read it with ``.iterator(chunk_size=…)``
    to hold a few PDFs in memory at a time instead of every one of the cycle."""
    return (
        reports_visible_to(user=user)
        .filter(cycle=cycle, status=Report.Status.READY, pdf__isnull=False)
        .select_related("cycle", "subject__person")
        .only("id", "pdf", "cycle__name", "subject__person__name")
        .order_by("subject__person__name", "id")
    )


def quadrant_cut() -> float:
    return float(settings.BALANCE_QUADRANT_CUT)


# The Django group whose members are offered as coaches (Django admin → Groups).
COACHES_GROUP = "Coaches"


def coach_candidates(*, cycle: Cycle) -> QuerySet[Any]:
    """The users a manager picks a coach from: active members of the Coaches group, and anyone
    already coaching a cycle — never a user who chose raters for this cycle's people.

    Someone asked to rate one of them anonymously is still offered, for the others: they
    can read no report of that one (``_barred``), and ``coach_assign`` refuses them for
    that one alone."""
    people = list(cycle.subjects.values_list("person_id", flat=True))
    choosers = Subject.objects.filter(person_id__in=people).values("cycle__team__manager_id")
    creators = Subject.objects.filter(person_id__in=people).values("cycle__created_by_id")
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name=COACHES_GROUP) | Q(coach_assignments__isnull=False))
        .exclude(pk__in=choosers)
        .exclude(pk__in=creators)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


# Names a notice of people without a coach lists before it says "and n more".
UNCOACHED_NAMES = 10


@dataclass(frozen=True)
class Uncoached:
    """The subjects of a cycle whose report no coach can read: how many, and the first names."""

    count: int
    names: list[str]

    @property
    def more(self) -> int:
        return self.count - len(self.names)


def uncoached_by_cycle(*, cycle_ids: list[int], names: int = UNCOACHED_NAMES) -> dict[int, Uncoached]:
    """{cycle id: its subjects without a coach who can read their report, counted, and the first
    ``names`` of them by name}.

    A coach counts for a person unless they are barred from the person's reports
    (``_barred``: they managed a review of the person, or were one of the person's anonymous
    raters, under any address their account had), or their account is inactive. Two queries
    for any number of cycles and of people: the coaches' addresses, then the count (a window
    over the cycle) and the names, cut in the database.
    """
    coaches_emails = (
        CoachAssignment.objects.filter(cycle_id__in=cycle_ids).values_list("coach_id", "coach__email").distinct()
    )
    # Each coach's address made as the rule makes it (``rater_address``), in Python, so that
    # the same addresses match here as there.
    address = Case(
        *(
            When(coach_id=coach_id, then=Value(rater_address_of(email=email or "")))
            for coach_id, email in coaches_emails
        ),
        default=Value(""),
    )
    person = OuterRef(OuterRef("person_id"))
    managed = Subject.objects.filter(person_id=person).filter(
        managed_by_id(user_id=OuterRef("coach_id"), via="cycle__")
    )
    rated = anonymous_rater_invitations(rater_email=OuterRef("address")).filter(subject__person_id=person)
    rated_before = anonymous_rater_invitations_before(account=OuterRef(OuterRef("coach_id"))).filter(
        subject__person_id=person
    )
    coaches = (
        CoachAssignment.objects.filter(coach__is_active=True)
        .annotate(address=address)
        .filter(Q(coach__is_superuser=True) | ~(Exists(managed) | Exists(rated) | Exists(rated_before)))
    )
    whole_cycle = coaches.filter(cycle_id=OuterRef("cycle_id"), subject__isnull=True)
    own = coaches.filter(cycle_id=OuterRef("cycle_id"), subject_id=OuterRef("pk"))
    rows = (
        Subject.objects.filter(cycle_id__in=cycle_ids)
        .exclude(Exists(whole_cycle))
        .exclude(Exists(own))
        .annotate(
            position=Window(RowNumber(), partition_by=F("cycle_id"), order_by=[F("person__name"), F("id")]),
            total=Window(Count("id"), partition_by=F("cycle_id")),
        )
        .filter(position__lte=names)
        .order_by("cycle_id", "position")
        .values_list("cycle_id", "person__name", "total")
    )
    result: dict[int, Uncoached] = {}
    for cycle_id, name, total in rows:
        result.setdefault(cycle_id, Uncoached(count=total, names=[])).names.append(name)
    return result
