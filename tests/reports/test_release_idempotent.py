"""Releasing a report twice sends one email and keeps one link in circulation, however the clicks race."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token

from reports.models import Release, Report


@pytest.fixture
def release(
    client: Client, coached: Report, coach: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> Any:
    """POST a release as the coach, the email job running at commit as the worker would run it."""
    client.force_login(coach)

    def post(path: str = "/api/reports/{report}/release/", **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path.format(report=coached.id), **kwargs)

    return post


@pytest.mark.django_db
def test_a_second_release_while_one_is_live_returns_it_and_sends_nothing(release: Any) -> None:
    first = release()
    second = release()
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["status"] == Release.Status.SENT
    assert Release.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_page_says_the_report_is_already_released(release: Any) -> None:
    release("/reports/{report}/release/")
    page = release("/reports/{report}/release/", follow=True)
    assert "already released to jonas@example.test; nothing was sent again" in page.content.decode()
    assert Release.objects.count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_after_a_revoke_or_a_failed_email_a_new_release_is_made(release: Any) -> None:
    first = release().json()["id"]
    release(f"/api/reports/{{report}}/releases/{first}/revoke/")
    second = release()
    assert second.status_code == 201 and second.json()["id"] != first
    Release.objects.filter(id=second.json()["id"]).update(status=Release.Status.FAILED)
    third = release()
    assert third.status_code == 201
    assert Release.objects.count() == 3
    assert len(mail.outbox) == 3


RACERS = 5


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_releases_make_one_release_and_one_email(
    live_server: Any, coach: Any, manager: Any, default_questionnaire: Any, eager_celery: None
) -> None:
    from reports.models import CoachAssignment
    from tests.factories import CycleFactory, PersonFactory, SubjectFactory
    from tests.reports.helpers import answers_create, stored_report_create

    # given: a ready report and its coach's API token (committed: the server is another thread)
    cycle = CycleFactory(team__manager=manager)
    subject = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, email="jonas@example.test"))
    answers_create(subject)
    report = stored_report_create(subject)
    CoachAssignment.objects.create(coach=coach, cycle=cycle, created_by=manager)
    token = Token.objects.create(user=coach).key
    start = threading.Barrier(RACERS)
    results: list[tuple[int, int]] = []

    def release() -> None:
        request = urllib.request.Request(
            f"{live_server.url}/api/reports/{report.id}/release/",
            method="POST",
            headers={"Authorization": f"Token {token}"},
        )
        start.wait(timeout=30)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                results.append((response.status, json.loads(response.read())["id"]))
        except urllib.error.HTTPError as error:
            results.append((error.code, -1))

    # when
    threads = [threading.Thread(target=release) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    # then: one 201, the others 200 with the same release; one row, one email
    assert sorted(status for status, _ in results) == [200] * (RACERS - 1) + [201]
    assert len({release_id for _, release_id in results}) == 1
    assert Release.objects.count() == 1
    assert len(mail.outbox) == 1
