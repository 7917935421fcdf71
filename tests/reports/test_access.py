"""Who reads a report's content and who sees only its status; every route: tests/config/test_access_rules.py."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.test import Client

from reports.models import CoachAssignment, Release, Report
from reports.selectors import coach_candidates, report_get_for_user, report_status_get_for_user, uncoached_by_cycle
from reports.services import coach_assign
from surveys.models import Group, Invitation
from tests.factories import CycleFactory, InvitationFactory, PersonFactory, SubjectFactory, UserFactory
from tests.reports.helpers import answers_create, stored_report_create


@pytest.fixture
def world(stored_report: Report, manager: Any, coach: Any) -> dict[str, Any]:
    """Alice manages the cycle, Charlie coaches it; Bob manages another team; Dana coaches elsewhere."""
    cycle = stored_report.cycle
    assignment = CoachAssignment.objects.create(coach=coach, cycle=cycle, created_by=manager)
    release = Release.objects.create(
        report=stored_report,
        token_hash="0" * 64,
        email="jonas@example.test",
        status=Release.Status.FAILED,
        last_error="SMTPDataError: 451",
    )
    elsewhere = SubjectFactory(cycle=CycleFactory())
    dana = UserFactory(username="dana")
    CoachAssignment.objects.create(coach=dana, cycle=elsewhere.cycle, subject=elsewhere)
    return {
        "report": stored_report,
        "cycle": cycle,
        "assignment": assignment,
        "release": release,
        "dana": dana,
    }


@pytest.mark.django_db
def test_outsider_lists_are_empty(client: Client, world: dict[str, Any], other_manager: Any) -> None:
    client.force_login(other_manager)
    assert client.get("/api/reports/").json()["results"] == []
    page = client.get("/reports/").content.decode()
    assert "Jonas Berg" not in page


# The routes that show a report's content: only its coach (and admins) may use them.
CONTENT_ROUTES = (
    "/reports/{report}/",
    "/reports/{report}/pdf/",
    "/reports/cycles/{cycle}/pdfs.zip",
    "/reports/cycles/{cycle}/team/",
    "/api/reports/{report}/",
    "/api/reports/{report}/pdf/",
    "/api/reports/cycles/{cycle}/team/",
)


@pytest.mark.django_db
@pytest.mark.parametrize("route", CONTENT_ROUTES)
def test_the_cycles_manager_gets_404_on_report_content(
    client: Client, world: dict[str, Any], manager: Any, route: str
) -> None:
    # The manager chooses the raters (outside emails included): one who entered two
    # addresses of their own beside a single direct report could subtract their own
    # answers from the figures. They see statuses, never content.
    client.force_login(manager)
    url = route.format(report=world["report"].id, cycle=world["cycle"].id)
    response = client.get(url)
    assert response.status_code == 404, url
    assert b"%PDF" not in response.content
    assert b"Planning" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("route", CONTENT_ROUTES)
def test_the_coach_and_an_admin_read_report_content(
    client: Client, world: dict[str, Any], coach: Any, route: str
) -> None:
    url = route.format(report=world["report"].id, cycle=world["cycle"].id)
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    for user in (coach, admin):
        client.force_login(user)
        assert client.get(url).status_code == 200, (user, url)


@pytest.mark.django_db
def test_the_manager_sees_statuses_and_coaches_but_no_team_view_and_no_release(
    client: Client, world: dict[str, Any], manager: Any, coach: Any
) -> None:
    report, cycle = world["report"].id, world["cycle"].id
    client.force_login(coach)
    assert client.get(f"/reports/cycles/{cycle}/team/").status_code == 200
    assert client.get(f"/reports/cycles/{cycle}/coaches/").status_code == 404
    client.force_login(manager)
    # The manager chooses the raters: the team view's points are scores, so it is a 404.
    assert client.get(f"/reports/cycles/{cycle}/team/").status_code == 404
    assert client.get(f"/api/reports/cycles/{cycle}/team/").status_code == 404
    assert client.get(f"/reports/cycles/{cycle}/coaches/").status_code == 200
    # the list shows the status and links to nothing inside the report
    page = client.get("/reports/").content.decode()
    assert "Jonas Berg" in page and "Ready" in page
    assert f"/reports/{report}/" not in page
    assert f"/reports/{report}/pdf/" not in page
    assert "pdfs.zip" not in page
    rows = client.get("/api/reports/").json()["results"]
    assert [(row["id"], row["status"], row["readable"]) for row in rows] == [(report, "ready", False)]
    # the build's times to the minute only: their exact gaps follow the reports' length
    assert rows[0]["queued_at"].endswith(":00Z")
    assert rows[0]["pdf_size"] is None and rows[0]["pdf_sha256"] is None
    assert "figures" not in rows[0]
    assert f"/reports/cycles/{cycle}/team/" not in page
    # releasing is the coach's call; to the manager the report does not exist
    assert client.post(f"/reports/{report}/release/").status_code == 404
    assert client.post(f"/api/reports/{report}/release/").status_code == 404
    assert client.get(f"/api/reports/{report}/releases/").status_code == 404
    release = world["release"].id
    assert client.post(f"/api/reports/{report}/releases/{release}/retry/").status_code == 404
    assert client.post(f"/reports/{report}/releases/{release}/retry/").status_code == 404
    assert Release.objects.count() == 1
    assert Release.objects.get(id=release).status == Release.Status.FAILED


@pytest.mark.django_db
def test_the_coach_sees_readable_rows_with_links(client: Client, world: dict[str, Any], coach: Any) -> None:
    report = world["report"]
    client.force_login(coach)
    rows = client.get("/api/reports/").json()["results"]
    assert [(row["id"], row["readable"], row["pdf_size"]) for row in rows] == [(report.id, True, report.pdf_size)]
    page = client.get("/reports/").content.decode()
    assert f'href="/reports/{report.id}/"' in page and f'href="/reports/{report.id}/pdf/"' in page


@pytest.mark.django_db
def test_a_coach_of_one_subject_sees_only_that_subject(client: Client, ready_report: Report, closed_cycle: Any) -> None:
    other = Report.objects.create(cycle=closed_cycle, subject=SubjectFactory(cycle=closed_cycle))
    erin = UserFactory(username="erin")
    CoachAssignment.objects.create(coach=erin, cycle=closed_cycle, subject=ready_report.subject)
    assert report_get_for_user(user=erin, report_id=ready_report.id) == ready_report
    with pytest.raises(Http404):
        report_get_for_user(user=erin, report_id=other.id)
    client.force_login(erin)
    ids = [row["id"] for row in client.get("/api/reports/").json()["results"]]
    assert ids == [ready_report.id]


@pytest.mark.django_db
def test_access_helper_rejects_garbage_ids(manager: Any) -> None:
    with pytest.raises(Http404):
        report_get_for_user(user=manager, report_id="not-a-number")
    with pytest.raises(Http404):
        report_status_get_for_user(user=manager, report_id="not-a-number")


@pytest.mark.django_db
def test_whoever_chose_a_persons_raters_once_never_reads_their_reports(
    client: Client, world: dict[str, Any], manager: Any, other_manager: Any
) -> None:
    # given: Alice ran the review and chose its raters; then Bob took the team over and
    # runs the next review of the same person
    report = world["report"]
    earlier = report.cycle
    team = earlier.team
    team.manager = other_manager
    team.save(update_fields=["manager"])
    later = CycleFactory(team=team, created_by=other_manager, status="closed")
    subject = SubjectFactory(cycle=later, person=report.subject.person)
    later_report = Report.objects.create(cycle=later, subject=subject, status=Report.Status.READY, data={"k": 3})
    # when: Bob asks for Alice as coach of the later review
    with pytest.raises(ValidationError, match="chose their raters"):
        coach_assign(cycle=later, coach=manager, by=other_manager)
    # then, even assigned behind the service's back, the reports are not hers to read: the
    # later one's trend carries the figures of the raters she chose
    CoachAssignment.objects.create(coach=manager, cycle=later)
    CoachAssignment.objects.create(coach=manager, cycle=earlier)
    client.force_login(manager)
    for report_id in (report.id, later_report.id):
        assert client.get(f"/api/reports/{report_id}/").status_code == 404
        assert client.get(f"/reports/{report_id}/").status_code == 404
    assert client.get(f"/reports/cycles/{later.id}/team/").status_code == 404


# The routes of CONTENT_ROUTES that show one report's content.
CONTENT_OF_ONE_REPORT = tuple(route for route in CONTENT_ROUTES if "{report}" in route)


@pytest.mark.django_db
@pytest.mark.parametrize("group", [Group.PEER, Group.DIRECT_REPORT, Group.OUTSIDE])
def test_whoever_rated_a_person_anonymously_never_reads_their_reports(
    client: Client, world: dict[str, Any], coach: Any, manager: Any, group: str
) -> None:
    # given: Charlie coaches the whole cycle of Jonas and Mara, and was also asked (under his
    # address, in other letters' case) to rate Jonas anonymously; later Jonas is reviewed again
    report, cycle = world["report"], world["cycle"]
    mara = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, name="Mara Lind"))
    answers_create(mara)
    mara_report = stored_report_create(mara)
    InvitationFactory(cycle=cycle, subject=report.subject, group=group, rater_email="charlie@example.test")
    Invitation.objects.filter(cycle=cycle).update(status=Invitation.Status.CLOSED)
    coach.email = " Charlie@Example.TEST"
    coach.save(update_fields=["email"])
    later = CycleFactory(team=cycle.team, created_by=manager, status="closed")
    later_subject = SubjectFactory(cycle=later, person=report.subject.person)
    later_report = Report.objects.create(cycle=later, subject=later_subject, status=Report.Status.READY, data={"k": 3})
    CoachAssignment.objects.create(coach=coach, cycle=later, created_by=manager)
    client.force_login(coach)
    # then: he knows one answer of Jonas's pool, so no figure of Jonas is his to read — nor
    # the later review's, whose trend carries the earlier figures
    for report_id in (report.id, later_report.id):
        for route in CONTENT_OF_ONE_REPORT:
            assert client.get(route.format(report=report_id)).status_code == 404, route
    assert client.get(f"/reports/cycles/{later.id}/team/").status_code == 404
    assert client.get(f"/api/reports/cycles/{later.id}/team/").status_code == 404
    # and Mara's report is still his to read, alone in the team view, the zip and his list
    for route in CONTENT_OF_ONE_REPORT:
        assert client.get(route.format(report=mara_report.id)).status_code == 200, route
    team = client.get(f"/api/reports/cycles/{cycle.id}/team/").json()["results"]
    assert [point["name"] for point in team] == ["Mara Lind"]
    assert "Jonas Berg" not in client.get(f"/reports/cycles/{cycle.id}/team/").content.decode()
    with zipfile.ZipFile(io.BytesIO(client.get(f"/reports/cycles/{cycle.id}/pdfs.zip").getvalue())) as archive:
        assert ["mara-lind" in name.lower() for name in archive.namelist()] == [True], archive.namelist()
    listed = client.get("/api/reports/").json()["results"]
    assert [(row["id"], row["readable"]) for row in listed] == [(mara_report.id, True)]
    # and the manager cannot make him Jonas's coach, and is told Jonas has no coach who can
    # read his report; as coach of the whole first cycle he stays Mara's
    with pytest.raises(ValidationError, match="asked to rate them as an anonymous rater"):
        coach_assign(cycle=later, coach=coach, subject=later_subject, by=manager)
    with pytest.raises(ValidationError, match="asked to rate them as an anonymous rater"):
        coach_assign(cycle=later, coach=coach, by=manager)
    coach_assign(cycle=cycle, coach=coach, subject=mara, by=manager)
    uncoached = uncoached_by_cycle(cycle_ids=[cycle.id, later.id])
    assert (uncoached[cycle.id].names, uncoached[later.id].names) == (["Jonas Berg"], ["Jonas Berg"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("group", "status"),
    [(Group.MANAGER, Invitation.Status.CLOSED), (Group.PEER, Invitation.Status.DRAFT)],
    ids=["identified-group", "never-launched"],
)
def test_a_coach_who_was_an_identified_rater_or_never_asked_still_reads_the_report(
    client: Client, world: dict[str, Any], coach: Any, group: str, status: str
) -> None:
    # The manager's answer is shown as the manager's anyway, and a draft was never sent.
    report = world["report"]
    InvitationFactory(cycle=report.cycle, subject=report.subject, group=group, rater_email=coach.email, status=status)
    client.force_login(coach)
    for route in CONTENT_OF_ONE_REPORT:
        assert client.get(route.format(report=report.id)).status_code == 200, route
    assert coach in coach_candidates(cycle=report.cycle)
    assert world["cycle"].id not in uncoached_by_cycle(cycle_ids=[world["cycle"].id])


@pytest.mark.django_db
@pytest.mark.parametrize("why", ["managed a later review", "account deactivated"])
def test_a_person_whose_only_coach_cannot_read_their_report_counts_as_uncoached(
    world: dict[str, Any], coach: Any, why: str
) -> None:
    # given: Charlie, coach of the whole cycle, later ran a review of its person, or left
    report = world["report"]
    if why == "managed a later review":
        later = CycleFactory(team=report.cycle.team, created_by=coach)
        SubjectFactory(cycle=later, person=report.subject.person)
    else:
        coach.is_active = False
        coach.save(update_fields=["is_active"])
    # then: the manager is told the person has no coach, as nobody can read the report
    assert uncoached_by_cycle(cycle_ids=[report.cycle_id])[report.cycle_id].names == ["Jonas Berg"]


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["saved", "bulk update", "plain SQL"])
def test_a_new_address_on_the_account_of_someone_who_rated_a_person_does_not_lift_the_bar(
    client: Client, world: dict[str, Any], coach: Any, manager: Any, how: str
) -> None:
    # given: Charlie, coach of the whole cycle, was asked to rate Jonas as a peer under the
    # address his account had then; his address is changed afterwards, by any path
    from django.contrib.auth import get_user_model
    from django.db import connection

    from surveys.models import FormerAddress

    report, cycle = world["report"], world["cycle"]
    # (an address ending in "v", and whitespace a form would have stripped, as email_normalize
    # strips it: the trigger must make of it what invitations store)
    InvitationFactory(cycle=cycle, subject=report.subject, group=Group.PEER, rater_email="vic@agency.gov")
    Invitation.objects.filter(cycle=cycle).update(status=Invitation.Status.CLOSED)
    users = get_user_model().objects.filter(pk=coach.pk)
    users.update(email="\u2003vic@Agency.gov\t\u00a0")
    new = "charlie.lindqvist@example.test"
    if how == "saved":
        coach.email = new
        coach.save()
    elif how == "bulk update":
        users.update(email=new)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {users.model._meta.db_table} SET email = %s WHERE id = %s", [new, coach.pk])  # noqa: S608 — a model's table
    coach.refresh_from_db()
    assert coach.email == new
    assert set(FormerAddress.objects.filter(user=coach).values_list("address", flat=True)) >= {"vic@agency.gov"}
    # then: he still knows one answer of Jonas's pool, and nothing of Jonas is his to read
    client.force_login(coach)
    for route in CONTENT_OF_ONE_REPORT:
        assert client.get(route.format(report=report.id)).status_code == 404, route
    assert client.get(f"/api/reports/cycles/{cycle.id}/team/").status_code == 404
    with pytest.raises(ValidationError, match="asked to rate them as an anonymous rater"):
        coach_assign(cycle=cycle, coach=coach, subject=report.subject, by=manager)
    assert uncoached_by_cycle(cycle_ids=[cycle.id])[cycle.id].names == ["Jonas Berg"]


@pytest.mark.django_db
def test_an_account_saved_without_a_new_address_records_no_former_one(coach: Any) -> None:
    from surveys.models import FormerAddress

    before = coach.email.strip().lower()
    coach.first_name = "Charlie"
    coach.save()
    coach.email = f" {coach.email.upper()}"  # the same address, as invitations store it
    coach.save()
    assert not FormerAddress.objects.filter(user=coach).exists()
    coach.email = "charlie.lindqvist@example.test"
    coach.save()
    assert list(FormerAddress.objects.filter(user=coach).values_list("address", flat=True)) == [before]
