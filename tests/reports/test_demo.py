from __future__ import annotations

from typing import Any

import pytest

from reports.demo import demo_reports_seed
from reports.models import CoachAssignment, Report
from reports.selectors import report_list_for_user
from tests.factories import SubjectFactory


@pytest.mark.django_db
def test_demo_coach_follows_the_whole_demo_cycle(closed_cycle: Any, coach: Any) -> None:
    subjects = [SubjectFactory(cycle=closed_cycle) for _ in range(2)]
    demo_reports_seed(cycle=closed_cycle, coach=coach)
    demo_reports_seed(cycle=closed_cycle, coach=coach)  # seeding twice changes nothing
    assignment = CoachAssignment.objects.get()
    assert (assignment.coach, assignment.cycle, assignment.subject) == (coach, closed_cycle, None)
    assert assignment.created_by == closed_cycle.created_by
    for subject in subjects:
        Report.objects.create(cycle=closed_cycle, subject=subject)
    assert report_list_for_user(user=coach).count() == 2
