"""Fixtures for the reports tests: a closed cycle with one subject and a full set of answers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from reports.models import CoachAssignment, Report
from reports.rendering import pdf_checksum, report_pdf_render
from reports.services import report_data_compute
from surveys.models import Cycle, Group
from tests.factories import CycleFactory, PersonFactory, ResponseFactory, SubjectFactory, TeamFactory


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


@pytest.fixture
def default_questionnaire_present(db: None) -> None:
    """The migration loads the default questionnaire, but a transactional test flushes every
    table when it ends; load it again (a no-op when present) for the tests that follow."""
    from surveys import services

    services.questionnaire_load_file(path=services.DEFAULT_QUESTIONNAIRE_FILE)


@pytest.fixture
def team(manager: Any, default_questionnaire_present: None) -> Any:
    return TeamFactory(name="Product Engineering", manager=manager)


@pytest.fixture
def closed_cycle(team: Any) -> Cycle:
    return CycleFactory(
        team=team, name="Spring 2026", status=Cycle.Status.CLOSED, closed_at=timezone.now(), anonymity_min=3
    )


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


@pytest.fixture
def subject(closed_cycle: Cycle) -> Any:
    person = PersonFactory(team=closed_cycle.team, name="Jonas Berg", email="jonas@example.test")
    subject = SubjectFactory(cycle=closed_cycle, person=person)
    answers_create(subject)
    return subject


@pytest.fixture
def ready_report(subject: Any) -> Report:
    """A report built in-process (no worker), stored ready with its PDF."""
    report = Report.objects.create(cycle=subject.cycle, subject=subject, status=Report.Status.RUNNING, attempts=1)
    data = report_data_compute(report_id=report.id)
    pdf = report_pdf_render(data=data)
    Report.objects.filter(id=report.id).update(
        status=Report.Status.READY, data=data, pdf=pdf, pdf_size=len(pdf), pdf_sha256=pdf_checksum(pdf)
    )
    report.refresh_from_db()
    return report


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


@pytest.fixture
def stored_report(subject: Any) -> Report:
    return stored_report_create(subject)


@pytest.fixture
def coached(stored_report: Report, coach: Any, manager: Any) -> Report:
    """The stored report, with Charlie assigned as coach of its cycle."""
    CoachAssignment.objects.create(coach=coach, cycle=stored_report.cycle, created_by=manager)
    return stored_report


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run in the calling thread; a retry runs at once instead of after its countdown.

    Errors are not propagated from ``delay`` (Celery would then raise its own ``Retry``
    instead of running the retry).
    """
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
