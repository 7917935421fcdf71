"""Fixtures for the reports tests: a closed cycle with one subject and a full set of answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from reports.models import CoachAssignment, Report
from reports.rendering import pdf_checksum, report_pdf_render
from reports.services import report_data_compute
from surveys.models import Cycle
from tests.factories import CycleFactory, PersonFactory, SubjectFactory, TeamFactory
from tests.reports.helpers import answers_create, stored_report_create


@pytest.fixture
def team(manager: Any, default_questionnaire: Any) -> Any:
    return TeamFactory(name="Product Engineering", manager=manager)


@pytest.fixture
def closed_cycle(team: Any) -> Cycle:
    return CycleFactory(
        team=team, name="Spring 2026", status=Cycle.Status.CLOSED, closed_at=timezone.now(), anonymity_min=3
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


@pytest.fixture
def stored_report(subject: Any) -> Report:
    return stored_report_create(subject)


@pytest.fixture
def coached(stored_report: Report, coach: Any, manager: Any) -> Report:
    """The stored report, with Charlie assigned as coach of its cycle."""
    CoachAssignment.objects.create(coach=coach, cycle=stored_report.cycle, created_by=manager)
    return stored_report
