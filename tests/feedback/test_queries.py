"""Queries per survey request: the page, the form's submit and the API's submit, each a fixed few.

A submit opens no transaction of its own: its one write is a single statement (the claim
that moves the invitation and stores the sealed answer), which PostgreSQL commits by itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from feedback.browser import COOKIE_NAME, SurveyBrowser
from feedback.models import SealedAnswer
from surveys.models import Cycle, Invitation, LinkLockout
from tests.feedback.helpers import form_data, full_answers


def _opened(client: Client, token: str) -> str:
    page = str(client.get(f"/s/{token}/")["Location"])
    # The first page of a questionnaire version in a process reads its dimensions and items.
    assert client.get(page).status_code == 200
    return page


def test_the_survey_page_reads_only_the_invitation(client: Client, token: str, django_assert_num_queries: Any) -> None:
    page = _opened(client, token)
    # No session row, and the questionnaire version's items are kept per process.
    with django_assert_num_queries(1):
        assert client.get(page).status_code == 200


def test_the_form_submit_reads_the_invitation_once_and_writes_no_session(
    client: Client, invitation: Invitation, token: str, django_assert_num_queries: Any
) -> None:
    page = _opened(client, token)
    data = form_data(invitation.cycle)
    # only the claim that moves the invitation and stores the sealed answer: the browser's
    # cookie holds what it needs of the invitation
    with django_assert_num_queries(1) as queries:
        assert client.post(page, data).status_code == 303
    assert SealedAnswer.objects.count() == 1
    (claim,) = (query["sql"] for query in queries.captured_queries)
    assert claim.lstrip().startswith("WITH claimed AS (") and all(part in claim for part in ("UPDATE", "INSERT INTO"))
    # The blob went as a binary parameter, not as a hex literal in the statement's text.
    assert "\\x" not in claim and len(claim) < 2000


def _redis_reads() -> int:
    server = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    try:
        stats = server.info("commandstats")
    finally:
        server.close()
    return sum(int(stats.get(f"cmdstat_{command}", {}).get("calls", 0)) for command in ("get", "mget", "exists"))


def test_the_api_submit_reads_its_link_and_invitation_in_one_query(
    client: Client, invitation: Invitation, token: str, django_assert_num_queries: Any
) -> None:
    _opened(client, token)  # the questionnaire version read once in this process
    answers = full_answers(invitation.cycle)
    reads = _redis_reads()
    # the caller's lock-out and the link joined to its invitation and cycle, then the claim
    # with the sealed answer
    with django_assert_num_queries(2) as queries:
        response = client.post(f"/api/survey/{token}/responses/", answers, content_type="application/json")
    assert response.status_code == 201
    assert SealedAnswer.objects.count() == 1
    assert LinkLockout._meta.db_table in queries.captured_queries[0]["sql"]
    # and Redis is not asked: a submit that answers is not a failure to count
    assert _redis_reads() == reads


def test_an_invalid_form_submit_still_reads_a_fixed_number(
    client: Client, invitation: Invitation, token: str, django_assert_num_queries: Any
) -> None:
    page = _opened(client, token)
    data = form_data(invitation.cycle, skip=3)
    # the answers are refused before any statement; then the page's own read, to show them
    with django_assert_num_queries(1):
        assert client.post(page, data).status_code == 400


def test_the_pages_own_read_of_the_invitation_gives_what_the_orm_gives(invitation: Invitation) -> None:
    from feedback.selectors import invitation_get_answerable

    read = invitation_get_answerable(invitation_id=invitation.pk)
    stored = Invitation.objects.select_related("cycle", "subject__person").get(pk=invitation.pk)
    assert read is not None
    assert (read.id, read.cycle_id, read.subject_id, read.group) == (
        stored.pk,
        stored.cycle_id,
        stored.subject_id,
        stored.group,
    )
    assert (read.deadline, read.questionnaire_id, read.anonymity_min) == (
        stored.cycle.deadline,
        stored.cycle.questionnaire_id,
        stored.cycle.anonymity_min,
    )
    assert read.subject_name == stored.subject.person.name == "Jonas Berg"


@pytest.mark.parametrize("comment_min", [None, 6])
def test_the_pages_read_gives_the_cycles_comment_threshold(invitation: Invitation, comment_min: int | None) -> None:
    from feedback.selectors import invitation_get_answerable

    Cycle.objects.filter(pk=invitation.cycle_id).update(anonymity_min=4, comment_min=comment_min)
    read = invitation_get_answerable(invitation_id=invitation.pk)
    assert read is not None
    assert read.comment_threshold == Cycle.objects.get(pk=invitation.cycle_id).comment_threshold == (comment_min or 4)


@pytest.mark.parametrize(
    "change",
    [
        {"status": Invitation.Status.COMPLETED},
        {"status": Invitation.Status.DECLINED},
        {"cycle_status": Cycle.Status.CLOSED},
        {"deadline_passed": True},
    ],
)
def test_the_pages_read_gives_nothing_for_an_invitation_that_cannot_be_answered(
    invitation: Invitation, change: dict[str, Any]
) -> None:
    from feedback.selectors import invitation_get_answerable

    if "status" in change:
        Invitation.objects.filter(pk=invitation.pk).update(status=change["status"])
    if "cycle_status" in change:
        Cycle.objects.filter(pk=invitation.cycle_id).update(status=change["cycle_status"])
    if "deadline_passed" in change:
        Cycle.objects.filter(pk=invitation.cycle_id).update(deadline=timezone.now() - timedelta(minutes=1))
    assert invitation_get_answerable(invitation_id=invitation.pk) is None
    assert invitation_get_answerable(invitation_id=invitation.pk + 10_000) is None


def test_a_cookie_holding_the_invitation_id_alone_submits_after_one_read(
    client: Client, invitation: Invitation, token: str, django_assert_num_queries: Any
) -> None:
    # given: a browser whose cookie was written before it kept more than the id
    page = _opened(client, token)
    key = page.split("/")[-2]
    client.cookies[COOKIE_NAME] = SurveyBrowser(surveys={key: invitation.pk}).encoded()
    # when / then: the invitation read, then the claim
    with django_assert_num_queries(2) as queries:
        assert client.post(page, form_data(invitation.cycle)).status_code == 303
    read, claim = (query["sql"] for query in queries.captured_queries)
    assert read.startswith("SELECT") and "INSERT INTO" in claim
    assert SealedAnswer.objects.count() == 1
