"""The run command's demo: seeded once through the real services, then built by a real worker."""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from feedback.models import Response, SealedAnswer
from reports.models import Report
from surveys.models import Cycle, Invitation, Person, Team
from tests.factories import default_questionnaire


def _seed() -> str:
    default_questionnaire()  # a transactional test before this one may have emptied the tables
    out = StringIO()
    call_command("demo_seed", stdout=out)
    return out.getvalue()


def test_demo_is_seeded_once_and_its_closed_cycle_gets_ready_reports(celery_worker: Any) -> None:
    output = _seed()

    team = Team.objects.get(name="Product Engineering")
    assert Person.objects.filter(team=team).count() == 8
    assert Person.objects.filter(team=team, reports_to__isnull=False).count() == 7
    closed = Cycle.objects.get(team=team, status=Cycle.Status.CLOSED)
    opened = Cycle.objects.get(team=team, status=Cycle.Status.OPEN)
    assert Response.objects.filter(cycle=closed).count() > 0
    # the open cycle's answers are sealed until it closes
    assert SealedAnswer.objects.filter(cycle=opened).count() > 0
    assert not Response.objects.filter(cycle=opened).exists()
    assert not SealedAnswer.objects.filter(cycle=closed).exists()
    # one outside rater was added by hand, which the coach is told
    assert closed.invitations.filter(source=Invitation.Source.MANAGER, group="outside").count() == 1
    assert Invitation.objects.filter(cycle=opened, status=Invitation.Status.OPEN).exists()
    assert "login: manager / manager-demo-360" in output
    links = [line for line in output.splitlines() if "/s/" in line]
    assert len(links) == 2
    assert all("http://testserver/s/" in line for line in links)
    assert "rating themself (self-assessment)" in links[0]

    # the worker builds one report per subject of the closed cycle
    deadline = time.monotonic() + 180
    while Report.objects.filter(cycle=closed, status=Report.Status.READY).count() < 8:
        failed = list(Report.objects.filter(cycle=closed, status=Report.Status.FAILED).values_list("reason", flat=True))
        assert not failed, failed
        assert time.monotonic() < deadline, list(Report.objects.filter(cycle=closed).values_list("status", flat=True))
        time.sleep(0.5)

    # the demo coach is one of the Coaches and follows both cycles
    from reports.models import CoachAssignment

    coach = CoachAssignment.objects.get(cycle=closed).coach
    assert set(CoachAssignment.objects.filter(coach=coach).values_list("cycle_id", flat=True)) == {closed.pk, opened.pk}
    assert coach.groups.filter(name="Coaches").exists()

    jonas = Report.objects.get(cycle=closed, subject__person__name="Jonas Berg")
    assert jonas.data["raters"]["added_by_manager"] == 1

    # a second run seeds nothing more but still prints fresh links
    again = _seed()
    assert "Demo data already present" in again
    assert Team.objects.filter(name="Product Engineering").count() == 1
    assert Cycle.objects.filter(team=team).count() == 2
    assert len([line for line in again.splitlines() if "/s/" in line]) == 2
    assert set(again.splitlines()) & set(links) == set()


@pytest.mark.django_db
def test_survey_links_printed_by_the_demo_open_the_survey(client: Any) -> None:
    output = _seed()
    url = next(line.split(": ", 1)[1] for line in output.splitlines() if "/s/" in line)
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 303
    assert "/s/" not in response["Location"]
