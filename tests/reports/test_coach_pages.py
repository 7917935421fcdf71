"""Coach and manager pages and API: lists, downloads, zip, release links, team view, assignments."""

from __future__ import annotations

import io
import random
import re
import tracemalloc
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from config.links import token_hash
from reports import views
from reports.models import CoachAssignment, Release, Report
from surveys.models import Group
from tests.factories import PersonFactory, ResponseFactory, SubjectFactory, UserFactory
from tests.reports.helpers import SMALL_PDF, answers_create, stored_report_create


def more_ready_reports(cycle: Any, count: int) -> None:
    for _ in range(count):
        subject = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team))
        Report.objects.create(
            cycle=cycle, subject=subject, status=Report.Status.READY, data={}, pdf=SMALL_PDF, pdf_size=len(SMALL_PDF)
        )


@pytest.mark.django_db
def test_coach_page_lists_coachees_with_status_in_constant_queries(
    client: Client, coached: Report, coach: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(coach)
    failed_subject = SubjectFactory(cycle=coached.cycle, person=PersonFactory(team=coached.cycle.team, name="Priya"))
    Report.objects.create(cycle=coached.cycle, subject=failed_subject, status=Report.Status.FAILED, reason="Boom")
    # session, user, count, the page of reports, their cycles' counts, managed cycles
    with django_assert_num_queries(6):
        response = client.get("/reports/")
    html = response.content.decode()
    assert "Jonas Berg" in html and "Priya" in html
    assert "Ready" in html and "Failed" in html and "Boom" in html
    # The team view is the coach's; assigning coaches is the manager's.
    assert f"/reports/cycles/{coached.cycle_id}/team/" in html
    assert f"/reports/cycles/{coached.cycle_id}/coaches/" not in html
    more_ready_reports(coached.cycle, 10)
    with django_assert_num_queries(6):
        assert client.get("/reports/").status_code == 200


@pytest.mark.django_db
def test_pdf_download_is_an_attachment_with_a_readable_name(client: Client, coached: Report, coach: Any) -> None:
    client.force_login(coach)
    response = client.get(f"/reports/{coached.id}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="balance-report-jonas-berg-spring-2026.pdf"'
    assert response.content == SMALL_PDF
    api = client.get(f"/api/reports/{coached.id}/pdf/")
    assert api["Content-Disposition"] == response["Content-Disposition"]
    assert api.content == SMALL_PDF


@pytest.mark.django_db
def test_pdf_of_a_report_not_ready_is_404(client: Client, closed_cycle: Any, coach: Any) -> None:
    report = Report.objects.create(cycle=closed_cycle, subject=SubjectFactory(cycle=closed_cycle))
    CoachAssignment.objects.create(coach=coach, cycle=closed_cycle)
    client.force_login(coach)
    assert client.get(f"/reports/{report.id}/pdf/").status_code == 404
    page = client.get(f"/reports/{report.id}/")
    assert "being prepared" in page.content.decode()


def zip_files(response: Any) -> dict[str, bytes]:
    """The files of a zip download, by name (the zip is sent as a stream of blocks)."""
    assert response.streaming
    body = b"".join(response.streaming_content)
    # the length announced is the length sent (the zip is written whole before it is sent)
    assert int(response["Content-Length"]) == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.django_db
def test_zip_holds_every_ready_pdf_of_the_cycle(client: Client, coached: Report, coach: Any) -> None:
    more_ready_reports(coached.cycle, 2)
    Report.objects.create(cycle=coached.cycle, subject=SubjectFactory(cycle=coached.cycle))  # queued: left out
    client.force_login(coach)
    response = client.get(f"/reports/cycles/{coached.cycle.id}/pdfs.zip")
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="balance-reports-spring-2026.zip"'
    assert response["Cache-Control"] == "private, no-store"
    files = zip_files(response)
    assert len(files) == 3
    assert "balance-report-jonas-berg-spring-2026.pdf" in files
    assert all(pdf == SMALL_PDF for pdf in files.values())
    assert int(response["Content-Length"]) > 3 * len(SMALL_PDF)


def ready_report_of(cycle: Any, name: str, pdf: bytes) -> Report:
    subject = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, name=name))
    return Report.objects.create(
        cycle=cycle, subject=subject, status=Report.Status.READY, data={}, pdf=pdf, pdf_size=len(pdf)
    )


@pytest.mark.django_db
def test_zip_holds_only_the_pdfs_the_coach_may_read_each_under_its_own_name(
    client: Client, closed_cycle: Any, coach: Any, manager: Any
) -> None:
    # given a coach of two of the cycle's four people, two of whom share a name
    first = ready_report_of(closed_cycle, "Ana Lima", b"%PDF-first")
    second = ready_report_of(closed_cycle, "Ana Lima", b"%PDF-second")
    ready_report_of(closed_cycle, "Ben Ode", b"%PDF-not-coached")
    ready_report_of(closed_cycle, "Ana Lima", b"%PDF-not-coached-either")
    for report in (first, second):
        CoachAssignment.objects.create(coach=coach, cycle=closed_cycle, subject=report.subject, created_by=manager)
    client.force_login(coach)
    # when
    files = zip_files(client.get(f"/reports/cycles/{closed_cycle.id}/pdfs.zip"))
    # then
    assert files == {
        "balance-report-ana-lima-spring-2026.pdf": b"%PDF-first",
        "balance-report-ana-lima-spring-2026-2.pdf": b"%PDF-second",
    }


@pytest.mark.django_db
def test_zip_of_a_cycle_without_ready_reports_is_404(client: Client, closed_cycle: Any, coach: Any) -> None:
    Report.objects.create(cycle=closed_cycle, subject=SubjectFactory(cycle=closed_cycle))  # queued
    CoachAssignment.objects.create(coach=coach, cycle=closed_cycle)
    client.force_login(coach)
    response = client.get(f"/reports/cycles/{closed_cycle.id}/pdfs.zip")
    assert response.status_code == 404
    assert not response.streaming and response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_zip_takes_the_same_queries_however_many_reports(
    client: Client, coached: Report, coach: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(coach)
    url = f"/reports/cycles/{coached.cycle.id}/pdfs.zip"
    # session, user, the cycle and its access check, then the PDFs' cursor declared inside a
    # savepoint (the test's transaction); its fetches are no statements of their own
    with django_assert_num_queries(7):
        assert len(zip_files(client.get(url))) == 1
    more_ready_reports(coached.cycle, 30)
    with django_assert_num_queries(7):
        assert len(zip_files(client.get(url))) == 31


@pytest.mark.django_db
def test_zip_holds_a_few_pdfs_in_memory_at_a_time(
    client: Client, coached: Report, coach: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given twelve PDFs of a megabyte each, fetched two at a time, the zip spilling to disk past 1 MB
    megabyte = 1024 * 1024
    monkeypatch.setattr(views, "ZIP_PDFS_PER_FETCH", 2)
    monkeypatch.setattr(views, "ZIP_MEMORY_BYTES", megabyte)
    pdfs = [b"%PDF-" + random.Random(n).randbytes(megabyte) for n in range(12)]
    for n, pdf in enumerate(pdfs):
        ready_report_of(coached.cycle, f"Person {n:02}", pdf)
    client.force_login(coach)
    # when
    tracemalloc.start()
    try:
        response = client.get(f"/reports/cycles/{coached.cycle.id}/pdfs.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # then every PDF is in the zip, and the view never held more than a few of them: read
    # all at once (and the zip built in memory) it would have held three times 12 MB
    files = zip_files(response)
    assert sorted(files.values()) == sorted([*pdfs, SMALL_PDF])
    assert peak < 5 * megabyte, f"{peak / megabyte:.1f} MB"


@pytest.mark.django_db
def test_release_emails_a_link_that_downloads_until_revoked(
    client: Client, coached: Report, coach: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/reports/{coached.id}/release/", follow=True)
    assert "The download link will be emailed to jonas@example.test" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["jonas@example.test"]
    assert "Spring 2026" in message.subject
    match = re.search(r"http://testserver/r/([A-Za-z0-9_\-]+)/", message.body)
    assert match is not None
    token = match.group(1)
    html_body = message.alternatives[0][0]
    assert f"http://testserver/r/{token}/" in html_body
    release = Release.objects.get(report=coached)
    # only the hash is kept
    assert release.token_hash == token_hash(token)
    assert token not in str(Release.objects.values_list().get(id=release.id))
    assert release.expires_at - timezone.now() > timedelta(days=13, hours=23)

    subject_client = Client()  # the person has no account
    download = subject_client.get(f"/r/{token}/")
    assert download.status_code == 200
    assert download.content == SMALL_PDF
    assert download["Content-Disposition"].startswith("attachment;")

    client.post(f"/reports/{coached.id}/releases/{release.id}/revoke/")
    gone = subject_client.get(f"/r/{token}/")
    assert gone.status_code == 404
    assert "no longer works" in gone.content.decode()


@pytest.mark.django_db
def test_never_issued_expired_and_revoked_release_links_answer_alike(client: Client, coached: Report) -> None:
    Release.objects.create(
        report=coached,
        token_hash=token_hash("expired-token-123456"),
        email="jonas@example.test",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    Release.objects.create(
        report=coached,
        token_hash=token_hash("revoked-token-123456"),
        email="jonas@example.test",
        revoked_at=timezone.now(),
    )
    answers = {kind: client.get(f"/r/{kind}-token-123456/") for kind in ("expired", "revoked", "never-issued")}
    Release.objects.create(report=coached, token_hash=token_hash("rebuilt-token-123456"), email="j@example.test")
    Report.objects.filter(id=coached.id).update(status=Report.Status.QUEUED)
    answers["rebuilt"] = client.get("/r/rebuilt-token-123456/")
    first = answers["never-issued"]
    assert first.status_code == 404
    assert "This link is not valid" in first.content.decode()
    for kind, response in answers.items():
        assert (response.status_code, response.content) == (first.status_code, first.content), kind
        assert sorted(response.headers) == sorted(first.headers), kind


@pytest.mark.django_db
def test_api_release_and_not_ready_refusal(
    client: Client,
    coached: Report,
    coach: Any,
    closed_cycle: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/reports/{coached.id}/release/")
    assert response.status_code == 201
    assert (response.json()["email"], response.json()["status"]) == ("jonas@example.test", "queued")
    assert len(mail.outbox) == 1
    queued = Report.objects.create(cycle=closed_cycle, subject=SubjectFactory(cycle=closed_cycle))
    refused = client.post(f"/api/reports/{queued.id}/release/")
    assert refused.status_code == 400
    assert refused.json() == {"non_field_errors": ["Only a ready report can be released."]}


def failed_report(cycle: Any) -> Report:
    return Report.objects.create(
        cycle=cycle,
        subject=SubjectFactory(cycle=cycle),
        status=Report.Status.FAILED,
        attempts=3,
        reason="ValueError: bad data",
    )


@pytest.mark.django_db
def test_failed_report_page_offers_rerun_to_the_coach(
    client: Client, closed_cycle: Any, coach: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports.tasks import report_build_task

    sent: list[int] = []
    monkeypatch.setattr(report_build_task, "delay", lambda report_id: sent.append(report_id))
    report = failed_report(closed_cycle)
    CoachAssignment.objects.create(coach=coach, cycle=closed_cycle)
    client.force_login(coach)
    page = client.get(f"/reports/{report.id}/").content.decode()
    assert "ValueError: bad data" in page
    assert f'action="/reports/{report.id}/rerun/"' in page
    response = client.post(f"/reports/{report.id}/rerun/")
    assert response["Location"] == f"/reports/{report.id}/"
    report.refresh_from_db()
    assert report.status == Report.Status.QUEUED


@pytest.mark.django_db
def test_the_manager_reruns_a_failed_report_from_the_list(
    client: Client, closed_cycle: Any, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reports.tasks import report_build_task

    sent: list[int] = []
    monkeypatch.setattr(report_build_task, "delay", lambda report_id: sent.append(report_id))
    report = failed_report(closed_cycle)
    client.force_login(manager)
    page = client.get("/reports/").content.decode()
    assert "the person's coach sees why" in page and "ValueError" not in page
    assert f'action="/reports/{report.id}/rerun/"' in page
    assert f'href="/reports/{report.id}/"' not in page
    # the report page itself stays closed to the manager
    assert client.get(f"/reports/{report.id}/").status_code == 404
    response = client.post(f"/reports/{report.id}/rerun/", follow=True)
    assert response.redirect_chain == [("/reports/", 302)]
    assert "queued again" in response.content.decode()
    report.refresh_from_db()
    assert report.status == Report.Status.QUEUED
    again = client.post(f"/api/reports/{report.id}/rerun/")
    assert again.status_code == 400
    assert again.json() == {"non_field_errors": ["Only a failed report can be re-run."]}
    Report.objects.filter(id=report.id).update(status=Report.Status.FAILED)
    api = client.post(f"/api/reports/{report.id}/rerun/")
    assert api.status_code == 202
    assert api.json()["status"] == "queued"
    assert "figures" not in api.json()


@pytest.mark.django_db
def test_team_view_plots_only_subjects_whose_report_passes_the_anonymity_rules(
    client: Client, stored_report: Report, coach: Any, django_assert_num_queries: Any
) -> None:
    cycle = stored_report.cycle
    CoachAssignment.objects.create(coach=coach, cycle=cycle)
    thin = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, name="Lena Fischer"))
    ResponseFactory(subject=thin, group=Group.SELF)
    ResponseFactory(subject=thin, group=Group.MANAGER)
    ResponseFactory(subject=thin, group=Group.PEER)
    ResponseFactory(subject=thin, group=Group.PEER)
    stored_report_create(thin)
    client.force_login(coach)
    # session, user, cycle access, cycle, the cycle's counts, the page of points
    with django_assert_num_queries(6):
        response = client.get(f"/reports/cycles/{cycle.id}/team/")
    html = response.content.decode()
    plane = html[html.index('class="plane-chart') : html.index("</figure>")]
    # each point is a numbered marker linked to the person's report, named in the legend
    assert f'href="/reports/{stored_report.id}/" title="Jonas Berg" aria-label="Jonas Berg">1</a>' in plane
    assert "Lena Fischer" not in plane
    legend = html[html.index('class="team-legend"') : html.index("</ol>")]
    assert f'1</span><a href="/reports/{stored_report.id}/">Jonas Berg</a>' in legend
    assert "Not shown: too few anonymous raters" in html
    assert "2 people in this cycle: 1 with a point, 1 not shown (too few anonymous raters)." in html
    api = client.get(f"/api/reports/cycles/{cycle.id}/team/").json()
    assert api["count"] == 2
    by_name = {point["name"]: point for point in api["results"]}
    assert by_name["Jonas Berg"]["shown"] is True
    assert by_name["Lena Fischer"] == {
        "report_id": by_name["Lena Fischer"]["report_id"],
        "name": "Lena Fischer",
        "status": "ready",
        "management": None,
        "leadership": None,
        "shown": False,
    }
    for _ in range(5):
        extra = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team))
        answers_create(extra, comments=False)
        stored_report_create(extra)
    with django_assert_num_queries(6):
        assert client.get(f"/reports/cycles/{cycle.id}/team/").status_code == 200


@pytest.mark.django_db
def test_api_list_in_constant_queries(
    client: Client, coached: Report, coach: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(coach)
    more_ready_reports(coached.cycle, 3)
    # session, user, count, page
    with django_assert_num_queries(4):
        response = client.get(f"/api/reports/?cycle={coached.cycle.id}")
    body = response.json()
    assert body["count"] == 4
    assert {"id", "status", "subject_name", "cycle_name", "pdf_size"} <= set(body["results"][0])
    assert "figures" not in body["results"][0]
    more_ready_reports(coached.cycle, 10)
    with django_assert_num_queries(4):
        client.get("/api/reports/")
    assert client.get("/api/reports/?cycle=abc").json() == {"cycle": "A cycle id (a whole number)."}


@pytest.mark.django_db
def test_api_detail_carries_only_the_stored_filtered_figures(client: Client, coached: Report, coach: Any) -> None:
    client.force_login(coach)
    body = client.get(f"/api/reports/{coached.id}/").json()
    assert body["figures"] == coached.data
    assert body["subject_name"] == "Jonas Berg"


@pytest.mark.django_db
def test_manager_assigns_a_coach_and_bad_input_keeps_what_was_typed(
    client: Client, stored_report: Report, manager: Any, coach: Any
) -> None:
    cycle = stored_report.cycle
    client.force_login(manager)
    # the coach is picked from the users who are coaches, never typed
    page = client.get(f"/reports/cycles/{cycle.id}/coaches/").content.decode()
    assert f'<option value="charlie">{coach.get_full_name()} (charlie)</option>' in page
    assert f'<option value="{manager.username}"' not in page  # the manager chose the raters
    assert f'href="/cycles/{cycle.id}/"' in page  # the way back to the cycle
    assert "Without a coach: Jonas Berg." in page
    response = client.post(
        f"/reports/cycles/{cycle.id}/coaches/", {"coach": "nobody-here", "subject": str(stored_report.subject_id)}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<option value="{stored_report.subject_id}" selected>' in html
    assert "Choose one of the coaches listed." in html
    assert not CoachAssignment.objects.exists()

    response = client.post(
        f"/reports/cycles/{cycle.id}/coaches/", {"coach": "charlie", "subject": str(stored_report.subject_id)}
    )
    assert response.status_code == 302
    assignment = CoachAssignment.objects.get()
    assert (assignment.coach, assignment.subject_id, assignment.created_by) == (
        coach,
        stored_report.subject_id,
        manager,
    )
    page = client.get(f"/reports/cycles/{cycle.id}/coaches/").content.decode()
    assert "charlie" in page and "Jonas Berg" in page
    assert "Everyone in this cycle has a coach." in page
    client.post(f"/reports/cycles/{cycle.id}/coaches/{assignment.id}/remove/")
    assert not CoachAssignment.objects.exists()


@pytest.mark.django_db
def test_a_subject_of_another_cycle_cannot_be_assigned(client: Client, stored_report: Report, manager: Any) -> None:
    elsewhere = SubjectFactory()
    client.force_login(manager)
    response = client.post(
        f"/reports/cycles/{stored_report.cycle.id}/coaches/", {"coach": "alice", "subject": str(elsewhere.id)}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not CoachAssignment.objects.exists()


@pytest.mark.django_db
def test_reports_api_is_documented(client: Client) -> None:
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for path in (
        "/api/reports/",
        "/api/reports/{report_id}/",
        "/api/reports/{report_id}/pdf/",
        "/api/reports/{report_id}/rerun/",
        "/api/reports/{report_id}/release/",
        "/api/reports/{report_id}/releases/",
        "/api/reports/{report_id}/releases/{release_id}/retry/",
        "/api/reports/cycles/{cycle_id}/team/",
    ):
        assert path in paths


@pytest.mark.django_db
def test_api_assigns_and_removes_coaches_with_errors_per_field(
    client: Client, stored_report: Report, manager: Any, coach: Any
) -> None:
    cycle = stored_report.cycle
    client.force_login(manager)
    url = f"/api/reports/cycles/{cycle.id}/coaches/"
    assert client.post(url, {"coach": "nobody"}, content_type="application/json").json() == {
        "coach": ["No active user has this username."]
    }
    # any active user but a coach, e.g. a second account of the manager's, is refused here too
    UserFactory(username="alice-second-account")
    second = client.post(url, {"coach": "alice-second-account"}, content_type="application/json")
    assert second.status_code == 400
    assert "Coaches group" in second.json()["coach"][0]
    elsewhere = SubjectFactory()
    wrong = client.post(url, {"coach": "charlie", "subject": elsewhere.id}, content_type="application/json")
    assert wrong.status_code == 400
    assert wrong.json() == {"subject": ["This person is not a subject of the cycle."]}
    created = client.post(
        url, {"coach": "charlie", "subject": stored_report.subject_id}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["subject_name"] == "Jonas Berg"
    listed = client.get(url).json()
    assert (listed["count"], listed["results"]) == (1, [created.json()])
    assert client.delete(f"{url}{created.json()['id']}/").status_code == 204
    assert not CoachAssignment.objects.exists()


@pytest.mark.django_db
def test_api_revoke_stops_the_link(
    client: Client, coached: Report, coach: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        release_id = client.post(f"/api/reports/{coached.id}/release/").json()["id"]
    match = re.search(r"/r/([A-Za-z0-9_\-]+)/", mail.outbox[0].body)
    assert match is not None
    token = match.group(1)
    assert Client().get(f"/r/{token}/").status_code == 200
    assert client.post(f"/api/reports/{coached.id}/releases/{release_id}/revoke/").status_code == 200
    assert Client().get(f"/r/{token}/").status_code == 404


@pytest.mark.django_db
def test_the_cycle_manager_cannot_make_themself_a_coach(client: Client, stored_report: Report, manager: Any) -> None:
    # The manager picks the raters; as coach they would read every report of the cycle.
    cycle = stored_report.cycle
    assert cycle.team.manager_id == manager.pk
    client.force_login(manager)
    page = client.post(f"/reports/cycles/{cycle.id}/coaches/", {"coach": manager.username, "subject": ""})
    assert page.status_code == 200
    # not even offered on the page; the service refuses it for the API
    assert "Choose one of the coaches listed." in page.content.decode()
    assert f'<option value="{manager.username}"' not in page.content.decode()
    api = client.post(
        f"/api/reports/cycles/{cycle.id}/coaches/", {"coach": manager.username}, content_type="application/json"
    )
    assert api.status_code == 400
    assert "coach" in api.json()
    assert not CoachAssignment.objects.exists()
    assert client.get(f"/reports/{stored_report.id}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("cycle", ["²", "٣", "1.5", "-1", "one"])
def test_a_cycle_filter_that_is_not_a_whole_number_is_a_400_naming_it(client: Client, coach: Any, cycle: str) -> None:
    # "²".isdigit() is true in Python, and int("²") fails: digits must be ASCII.
    client.force_login(coach)
    response = client.get("/api/reports/", {"cycle": cycle})
    assert response.status_code == 400
    assert list(response.json()) == ["cycle"]


@pytest.mark.django_db
def test_manager_sees_who_has_no_coach_in_constant_queries(
    client: Client, stored_report: Report, manager: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(manager)
    # session, user, count, the page of reports, their cycles' counts, managed cycles, subjects
    # without a coach (their coaches' addresses, then the subjects)
    with django_assert_num_queries(8):
        html = client.get("/reports/").content.decode()
    assert "No coach can read the report of Jonas Berg." in html
    assert f'href="/reports/cycles/{stored_report.cycle_id}/coaches/"' in html
    assert f'href="/cycles/{stored_report.cycle_id}/"' in html
    more_ready_reports(stored_report.cycle, 10)
    with django_assert_num_queries(8):
        html = client.get("/reports/").content.decode()
    # eleven people without a coach: the first ten by name, and how many more
    notice = html.split("No coach can read the reports of ")[1].split("</p>")[0]
    names = list(stored_report.cycle.subjects.order_by("person__name", "id").values_list("person__name", flat=True))
    assert notice.startswith(", ".join(names[:10]) + " and 1 other.")
    CoachAssignment.objects.create(coach=UserFactory(username="dora"), cycle=stored_report.cycle)
    assert "No coach can read" not in client.get("/reports/").content.decode()


@pytest.mark.django_db
def test_a_coach_not_yet_assigned_is_told_why_the_list_is_empty(client: Client, coach: Any) -> None:
    client.force_login(coach)
    html = client.get("/reports/").content.decode()
    assert "assigns you as a coach" in html
    # every signed-in page has the whole top bar
    for name in ("Teams", "Cycles", "Reports"):
        assert f">{name}</a>" in html


@pytest.mark.django_db
def test_reports_still_building_are_polled_and_a_ready_one_reloads_the_status_page(
    client: Client, coached: Report, coach: Any
) -> None:
    client.force_login(coach)
    Report.objects.filter(pk=coached.pk).update(status=Report.Status.RUNNING)
    home = client.get("/reports/").content.decode()
    assert 'id="coach-reports" hx-get="/reports/" hx-trigger="every 3s"' in home
    assert "/static/vendor/htmx-2.0.4.min.js" in home
    partial = client.get("/reports/", headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith("{# ") is False and partial.lstrip().startswith('<div id="coach-reports"')
    assert "<html" not in partial and "Running" in partial
    status = client.get(f"/reports/{coached.id}/").content.decode()
    assert 'hx-trigger="every 3s" hx-select="#report-status"' in status
    assert "Reload this page" not in status
    Report.objects.filter(pk=coached.pk).update(status=Report.Status.READY)
    polled = client.get(f"/reports/{coached.id}/", headers={"HX-Request": "true"})
    assert polled["HX-Refresh"] == "true"
    # once nothing is being built, nothing polls
    assert "hx-trigger" not in client.get("/reports/").content.decode()


@pytest.mark.django_db
def test_releasing_asks_for_confirmation_first(client: Client, coached: Report, coach: Any) -> None:
    client.force_login(coach)
    report_page = client.get(f"/reports/{coached.id}/").content.decode()
    assert f'<a class="button" href="/reports/{coached.id}/release/">Release to Jonas Berg by email</a>' in report_page
    confirm = client.get(f"/reports/{coached.id}/release/")
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Yes, email the link to Jonas Berg" in html and f'action="/reports/{coached.id}/release/"' in html
    assert not Release.objects.exists()


@pytest.mark.django_db
def test_the_closed_cycle_page_loads_who_has_no_coach(client: Client, stored_report: Report, manager: Any) -> None:
    client.force_login(manager)
    cycle_id = stored_report.cycle_id
    page = client.get(f"/cycles/{cycle_id}/").content.decode()
    assert f'hx-get="/reports/cycles/{cycle_id}/coaches/notice/" hx-trigger="load"' in page
    notice = client.get(f"/reports/cycles/{cycle_id}/coaches/notice/").content.decode()
    assert "Nobody can read the report of Jonas Berg yet" in notice
    assert f'href="/reports/cycles/{cycle_id}/coaches/"' in notice and "<html" not in notice
    CoachAssignment.objects.create(coach=UserFactory(username="dora"), cycle=stored_report.cycle)
    again = client.get(f"/reports/cycles/{cycle_id}/coaches/notice/").content.decode()
    assert "Every person in this cycle has a coach." in again


@pytest.mark.django_db
def test_the_manager_sees_that_a_build_failed_but_not_its_reason(
    client: Client, closed_cycle: Any, manager: Any
) -> None:
    # The reason is written by code that works on the figures: it is for the coach only.
    report = failed_report(closed_cycle)
    client.force_login(manager)
    page = client.get("/reports/").content.decode()
    assert "Failed" in page and "the person's coach sees why" in page
    assert "ValueError" not in page
    rows = client.get("/api/reports/").json()["results"]
    (row,) = [row for row in rows if row["id"] == report.id]
    assert row["status"] == "failed" and "ValueError" not in row["reason"]
    assert row["reason"].startswith("The build stopped")
