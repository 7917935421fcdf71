"""Answers, reports and PDFs as the reports tests need them."""

from __future__ import annotations

import random
from typing import Any

from reports.models import CoachAssignment, Report
from reports.rendering import pdf_checksum
from reports.services import report_data_compute
from surveys.models import Cycle, Group, Person, Subject
from tests.factories import CycleFactory, ResponseFactory, TeamFactory


def item_codes(cycle: Cycle) -> list[str]:
    return list(cycle.questionnaire.dimensions.order_by("position").values_list("items__code", flat=True))


def ratings_for(cycle: Cycle, *, management: int, leadership: int, seed: int = 0) -> dict[str, int | None]:
    """Ratings around a level per side, with a little noise and one "can't say"."""
    generator = random.Random(seed)
    ratings: dict[str, int | None] = {}
    for dimension in cycle.questionnaire.dimensions.prefetch_related("items"):
        level = management if dimension.side == "management" else leadership
        for item in dimension.items.all():
            ratings[item.code] = max(1, min(5, level + generator.choice((-1, 0, 0, 1))))
    first = next(iter(ratings))
    ratings[first] = None
    return ratings


def answers_create(subject: Any, *, peers: int = 3, direct_reports: int = 3, comments: bool = True) -> None:
    cycle = subject.cycle
    ResponseFactory(
        subject=subject,
        group=Group.SELF,
        ratings=ratings_for(cycle, management=4, leadership=5, seed=1),
        comments={"keep_doing": "I keep the roadmap honest."} if comments else {},
    )
    ResponseFactory(
        subject=subject,
        group=Group.MANAGER,
        ratings=ratings_for(cycle, management=4, leadership=3, seed=2),
        comments={"management": "Plans are clear and kept up to date."} if comments else {},
    )
    for index in range(peers):
        ResponseFactory(
            subject=subject,
            group=Group.PEER,
            ratings=ratings_for(cycle, management=4, leadership=3, seed=10 + index),
            comments={"start_doing": f"Share the why behind decisions ({index})."} if comments else {},
        )
    for index in range(direct_reports):
        ResponseFactory(
            subject=subject,
            group=Group.DIRECT_REPORT,
            ratings=ratings_for(cycle, management=3 + index % 2, leadership=2 + index, seed=20 + index),
            comments={"leadership": f"Direction changes often; explain it ({index})."} if comments else {},
        )


# A tiny but valid one-page PDF, for tests about access and downloads that do not need
# WeasyPrint's real output (rendering costs most of a second per report).
SMALL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
    b"3 0 obj<</Type/Page/MediaBox[0 0 595 842]/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def stored_report_create(subject: Any) -> Report:
    """A ready report with its real (filtered) data and a small stand-in PDF."""
    report = Report.objects.create(cycle=subject.cycle, subject=subject, status=Report.Status.RUNNING, attempts=1)
    data = report_data_compute(report_id=report.id)
    Report.objects.filter(id=report.id).update(
        status=Report.Status.READY,
        data=data,
        pdf=SMALL_PDF,
        pdf_size=len(SMALL_PDF),
        pdf_sha256=pdf_checksum(SMALL_PDF),
    )
    report.refresh_from_db()
    return report


def others(management: float, leadership: float) -> dict[str, Any]:
    return {"indices": {"others": {"management": {"score": management}, "leadership": {"score": leadership}}}}


def closed_cycle_of_size(manager: Any, size: int, coach: Any | None = None) -> Cycle:
    """A closed cycle of ``size`` subjects "Person 000" …: every fifth report still queued, every
    seventh ready without an Others point, the rest ready with one."""
    team = TeamFactory(manager=manager, name=f"Team of {size}")
    people = Person.objects.bulk_create(
        [Person(team=team, name=f"Person {n:03}", email=f"p{n}.{team.pk}@example.test") for n in range(size)]
    )
    cycle = CycleFactory(team=team, name=f"Cycle of {size}", status=Cycle.Status.CLOSED)
    subjects = Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people])
    reports = []
    for n, subject in enumerate(subjects):
        if n % 5 == 4:
            reports.append(Report(cycle=cycle, subject=subject, status=Report.Status.QUEUED))
        else:
            data = {} if n % 7 == 6 else others(2 + n % 3, 3 + n % 2)
            reports.append(Report(cycle=cycle, subject=subject, status=Report.Status.READY, data=data))
    Report.objects.bulk_create(reports)
    if coach is not None:
        CoachAssignment.objects.create(coach=coach, cycle=cycle, created_by=manager)
    return cycle
