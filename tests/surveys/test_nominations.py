from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config import links
from reports.models import Report
from reports.rendering import report_html
from reports.services import report_data_compute
from surveys import selectors, services
from surveys.models import Cycle, Group, Invitation, Nomination, OutboundEmail, Team
from tests.surveys.helpers import outbox_for, person, send_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def nominating(team: Team, cycle_build: Callable[..., Cycle]) -> Cycle:
    cycle = cycle_build(team, nomination_mode="subjects", nomination_min=2, nomination_max=3)
    assert services.cycle_nominations_open(cycle=cycle, by=team.manager) is True
    return cycle


def _link(team: Team, name: str) -> str:
    send_queued()
    (message,) = [m for m in outbox_for(person(team, name).email) if "Choose who gives you feedback" in m.subject]
    match = re.search(r"http://testserver(/n/[^/]+/)", message.body)
    assert match is not None
    assert match.group(0) in message.alternatives[0][0]
    return match.group(1)


def test_subjects_mode_assigns_only_the_reporting_lines_by_default(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team, nomination_mode="subjects")
    groups = set(cycle.invitations.values_list("group", flat=True))
    assert groups == {Group.SELF, Group.MANAGER, Group.DIRECT_REPORT}


def test_opening_nominations_emails_each_subject_once(nominating: Cycle, team: Team) -> None:
    assert Cycle.objects.get(pk=nominating.pk).status == Cycle.Status.NOMINATING
    assert services.cycle_nominations_open(cycle=nominating, by=team.manager) is False
    send_queued()
    assert len(mail.outbox) == team.people.count()
    message = outbox_for(person(team, "Ann").email)[0]
    assert "between 2 and 3 peers" in message.body
    token = re.search(r"/n/([^/]+)/", message.body)
    assert token is not None
    nomination = Nomination.objects.get(subject__person__name="Ann")
    assert nomination.token_hash == links.token_hash(token.group(1))
    assert OutboundEmail.objects.filter(kind="nomination").count() == team.people.count()


def test_manager_mode_cannot_open_nominations(cycle: Cycle) -> None:
    with pytest.raises(ValidationError) as error:
        services.cycle_nominations_open(cycle=cycle, by=cycle.team.manager)
    assert "nomination_mode" in error.value.message_dict


def test_subject_nominates_through_the_link_and_the_manager_launches(
    nominating: Cycle, team: Team, client: Client
) -> None:
    url = _link(team, "Ann")
    page = client.get(url)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"
    html = page.content.decode()
    # teammates only, without Ann herself, her manager or her reports
    assert "Ben" in html and "Cat" in html and ">Mid One<" not in html
    ben, cat = person(team, "Ben"), person(team, "Cat")
    response = client.post(url, {"peers": [ben.pk, cat.pk], "others": "Kim Lee, KIM@partner.test\nzed@partner.test"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    subject_invitations = Invitation.objects.filter(subject__person__name="Ann", cycle=nominating)
    assert set(subject_invitations.filter(group=Group.PEER).values_list("rater_email", flat=True)) == {
        ben.email,
        cat.email,
    }
    assert set(subject_invitations.filter(group=Group.OUTSIDE).values_list("rater_email", "rater_name")) == {
        ("kim@partner.test", "Kim Lee"),
        ("zed@partner.test", ""),
    }
    # the page shows the current list when opened again, and a new list replaces it
    assert "kim@partner.test" in client.get(url).content.decode()
    client.post(url, {"peers": [ben.pk, cat.pk], "others": ""})
    assert not subject_invitations.filter(group=Group.OUTSIDE).exists()
    # the manager sees who has sent a list, then launches
    api = APIClient()
    api.force_authenticate(team.manager)
    listed = api.get(f"/api/cycles/{nominating.pk}/nominations/").json()
    statuses = {row["name"]: row["submitted"] for row in listed["results"]}
    assert statuses["Ann"] is True and statuses["Ben"] is False
    # launch waits for every list to be approved
    with pytest.raises(ValidationError) as refused:
        services.cycle_launch(cycle=nominating, by=team.manager)
    assert "Approve every subject's list" in refused.value.message_dict["nominations"][0]
    assert services.nominations_approve_rest(cycle=nominating, by=team.manager) == team.people.count()
    assert services.cycle_launch(cycle=nominating, by=team.manager) is True
    # after launch the nomination link is dead
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    ("peers", "others", "field", "message"),
    [
        (["Ben"], "", "peers", "between 2 and 3 peers (you chose 1)"),
        (["Ben", "Cat", "Dan", "Mid Two"], "", "peers", "between 2 and 3 peers (you chose 4)"),
        (["Ben", "Mid One"], "", "peers", "already asked"),
        (["Ben", "Cat"], "not-an-email", "others", "Not a valid email address: not-an-email."),
        (["Ben", "Cat"], "a@x.test\nA@x.test", "others", "appears twice"),
        (["Ben", "Cat"], "dan", "others", "Teammates are nominated as peers"),
        (["Ben", "Cat"], "a@x.test\nb@x.test\nc@x.test\nd@x.test", "others", "at most 3 outside raters"),
    ],
)
def test_nomination_rules(
    nominating: Cycle, team: Team, peers: list[str], others: str, field: str, message: str
) -> None:
    nomination = Nomination.objects.select_related("subject__person", "subject__cycle").get(subject__person__name="Ann")
    if others == "dan":
        others = person(team, "Dan").email
    before = list(nomination.subject.invitations.values_list("pk", flat=True))
    with pytest.raises(ValidationError) as error:
        services.nomination_submit(
            nomination=nomination,
            peers=[person(team, name) for name in peers],
            others=[services.OutsideRater(email=line) for line in others.splitlines()],
        )
    assert message in error.value.message_dict[field][0]
    assert list(nomination.subject.invitations.values_list("pk", flat=True)) == before


def test_bad_nomination_form_keeps_what_was_typed(nominating: Cycle, team: Team, client: Client) -> None:
    url = _link(team, "Ann")
    response = client.post(url, {"peers": [person(team, "Ben").pk], "others": "typed@partner.test"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "between 2 and 3 peers" in html and "typed@partner.test" in html


def test_unknown_nomination_link_shows_the_neutral_page(client: Client, nominating: Cycle) -> None:
    response = client.get("/n/not-a-real-token-at-all/")
    assert response.status_code == 404
    assert "This link is not active" in response.content.decode()


def test_nominations_open_page_and_api(
    team: Team, cycle_build: Callable[..., Cycle], manager: Any, client: Client
) -> None:
    cycle = cycle_build(team, nomination_mode="subjects")
    client.force_login(manager)
    assert "Email the subjects to choose their raters" in client.get(f"/cycles/{cycle.pk}/").content.decode()
    response = client.post(f"/cycles/{cycle.pk}/nominations/open/", follow=True)
    assert "emailed a link to choose their raters" in response.content.decode()
    api = APIClient()
    api.force_authenticate(manager)
    assert api.post(f"/api/cycles/{cycle.pk}/nominations/").json() == {"changed": False, "status": "nominating"}


def test_open_nominations_freeze_the_subjects_but_the_cycle_can_still_be_deleted(nominating: Cycle, team: Team) -> None:
    with pytest.raises(ValidationError) as error:
        services.cycle_update(cycle=nominating, changes={"subjects": [person(team, "Ann")]})
    assert "once nominations are open" in error.value.message_dict["subjects"][0]
    services.cycle_delete(cycle=nominating)
    assert not Cycle.objects.filter(pk=nominating.pk).exists()


def _csrf_post(client: Client, url: str, data: dict[str, Any], headers: dict[str, str]) -> Any:
    html = client.get(url).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match is not None
    return client.post(url, {**data, "csrfmiddlewaretoken": match.group(1)}, headers=headers)


def test_a_browser_post_from_the_no_referrer_nomination_page_passes_csrf(nominating: Cycle, team: Team) -> None:
    # The page sends Referrer-Policy: no-referrer, so a browser posts "Origin: null".
    url = _link(team, "Ann")
    client = Client(enforce_csrf_checks=True)
    data = {"peers": [person(team, "Ben").pk, person(team, "Cat").pk], "others": ""}
    response = _csrf_post(client, url, data, {"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    assert Nomination.objects.get(subject__person__name="Ann").submitted_at is not None


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "null", "Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}],
)
def test_a_cross_site_nomination_post_is_refused(nominating: Cycle, team: Team, headers: dict[str, str]) -> None:
    url = _link(team, "Ann")
    client = Client(enforce_csrf_checks=True)
    data = {"peers": [person(team, "Ben").pk, person(team, "Cat").pk], "others": ""}
    assert _csrf_post(client, url, data, headers).status_code == 403
    assert Nomination.objects.get(subject__person__name="Ann").submitted_at is None


def test_the_form_and_the_service_offer_the_same_peers(nominating: Cycle, team: Team, client: Client) -> None:
    # Mid One: not himself, his manager (Lead), nor his reports (Ann, Ben).
    nomination = Nomination.objects.select_related("subject__cycle", "subject__person").get(
        subject__person__name="Mid One"
    )
    choices = {p.name for p in selectors.nomination_peer_choices(subject=nomination.subject)}
    assert choices == {"Mid Two", "Cat", "Dan"}
    html = client.get(_link(team, "Mid One")).content.decode()
    for name in ("Mid Two", "Cat", "Dan"):
        assert f"> {name}</label>" in html or f">{name}</label>" in html
    for name in ("Lead", "Ann", "Ben"):
        assert f">{name}</label>" not in html and f"> {name}</label>" not in html
    with pytest.raises(ValidationError):
        services.nomination_submit(nomination=nomination, peers=[person(team, "Lead"), person(team, "Cat")], others=[])
    # Ann may not pick Lead either: her manager's manager rates nobody "as a peer"
    ann = Nomination.objects.select_related("subject__cycle", "subject__person").get(subject__person__name="Ann")
    assert "Lead" not in {p.name for p in selectors.nomination_peer_choices(subject=ann.subject)}


def test_manager_edits_and_approves_a_list_and_the_subject_is_told(
    nominating: Cycle, team: Team, client: Client, manager: Any
) -> None:
    url = _link(team, "Ann")
    client.post(url, {"peers": [person(team, "Ben").pk, person(team, "Cat").pk], "others": "kim@partner.test"})
    mail.outbox.clear()
    manager_client = Client()
    manager_client.force_login(manager)
    raters = f"/cycles/{nominating.pk}/raters/"
    page = manager_client.get(raters).content.decode()
    assert "list sent" in page and "Approve Ann's raters" in page
    # edit: take out the outside rater, add another peer
    ann_subject = nominating.subjects.get(person__name="Ann")
    kim = Invitation.objects.get(subject=ann_subject, rater_email="kim@partner.test")
    manager_client.post(f"{raters}{kim.pk}/remove/")
    manager_client.post(raters, {"subject": ann_subject.pk, "email": person(team, "Dan").email, "group": "peer"})
    # a list the subject sends again after the manager's page was shown is not approved unseen
    approve = f"/cycles/{nominating.pk}/nominations/{ann_subject.pk}/approve/"
    seen = re.search(r'name="seen" value="([^"]+)"', manager_client.get(raters).content.decode())
    assert seen is not None
    Nomination.objects.filter(subject=ann_subject).update(submitted_at=timezone.now())
    stale = manager_client.post(approve, {"seen": seen.group(1)}, follow=True).content.decode()
    assert "look at it again" in stale
    assert Nomination.objects.get(subject=ann_subject).approved_at is None
    # then approve what the page shows
    seen = re.search(r'name="seen" value="([^"]+)"', manager_client.get(raters).content.decode())
    assert seen is not None
    response = manager_client.post(approve, {"seen": seen.group(1)}, follow=True)
    assert "Ann&#x27;s raters approved" in response.content.decode()
    assert "approved" in response.content.decode()
    again = manager_client.post(approve, {"seen": seen.group(1)}, follow=True)
    assert "already approved" in again.content.decode()
    send_queued()
    (told,) = [m for m in outbox_for(person(team, "Ann").email) if "approved" in m.subject]
    assert "approved the list of people asked to give you feedback" in told.body
    assert "approved the list" in told.alternatives[0][0]
    assert OutboundEmail.objects.filter(kind=OutboundEmail.Kind.NOMINATION_APPROVED).count() == 1
    # the approved list is the manager's: the subject's link shows it but no longer changes it
    page = client.get(url).content.decode()
    assert "approved your list" in page and "Send my list" not in page
    client.post(url, {"peers": [person(team, "Ben").pk, person(team, "Cat").pk], "others": ""})
    peers = set(ann_subject.invitations.filter(group=Group.PEER).values_list("rater_person__name", flat=True))
    assert peers == {"Ben", "Cat", "Dan"}
    nomination = Nomination.objects.select_related("subject__cycle", "subject__person").get(subject=ann_subject)
    with pytest.raises(ValidationError) as error:
        services.nomination_submit(nomination=nomination, peers=[person(team, "Ben"), person(team, "Cat")], others=[])
    assert "already approved" in error.value.messages[0]


def test_launch_waits_for_the_lists_or_the_rest_approved_explicitly(
    nominating: Cycle, team: Team, manager: Any
) -> None:
    client = Client()
    client.force_login(manager)
    detail = f"/cycles/{nominating.pk}/"
    page = client.get(detail).content.decode()
    assert "0 of 7 lists are approved" in page and "Launch is possible once every list is approved" in page
    refused = client.post(f"{detail}launch/", follow=True).content.decode()
    assert "Approve every subject&#x27;s list" in refused
    assert Cycle.objects.get(pk=nominating.pk).status == Cycle.Status.NOMINATING
    ann = nominating.subjects.get(person__name="Ann")
    services.nomination_approve(cycle=nominating, subject=ann, by=manager)
    response = client.post(f"/cycles/{nominating.pk}/nominations/approve-rest/", follow=True).content.decode()
    assert "6 list(s) of raters approved" in response
    assert client.post(f"{detail}launch/", follow=True).status_code == 200
    assert Cycle.objects.get(pk=nominating.pk).status == Cycle.Status.OPEN
    # one approval email per subject, whichever way the list was approved
    assert OutboundEmail.objects.filter(kind=OutboundEmail.Kind.NOMINATION_APPROVED).count() == 7


def test_approval_is_refused_outside_nominations(cycle: Cycle, manager: Any) -> None:
    subject = cycle.subjects.first()
    assert subject is not None
    with pytest.raises(ValidationError) as error:
        services.nomination_approve(cycle=cycle, subject=subject, by=manager)
    assert "while nominations are open" in error.value.messages[0]


def test_an_outsider_cannot_approve(nominating: Cycle, other_manager: Any) -> None:
    client = Client()
    client.force_login(other_manager)
    subject = nominating.subjects.first()
    assert subject is not None
    assert client.post(f"/cycles/{nominating.pk}/nominations/{subject.pk}/approve/").status_code == 404
    assert client.post(f"/cycles/{nominating.pk}/nominations/approve-rest/").status_code == 404
    assert not Nomination.objects.filter(approved_at__isnull=False).exists()


def test_the_api_lists_and_approves_the_nominations(nominating: Cycle, team: Team, manager: Any) -> None:
    api = APIClient()
    api.force_authenticate(manager)
    base = f"/api/cycles/{nominating.pk}/nominations/"
    ann = nominating.subjects.get(person__name="Ann")
    assert api.post(f"{base}{ann.pk}/approve/").json() == {"approved": 1}
    assert api.post(f"{base}{ann.pk}/approve/").json() == {"approved": 0}
    listed = api.get(base).json()
    assert listed["count"] == nominating.subjects.count() and listed["previous"] is None
    rows = {row["name"]: row for row in listed["results"]}
    assert rows["Ann"] == {"subject": ann.pk, "name": "Ann", "submitted": False, "approved": True}
    assert rows["Ben"]["approved"] is False
    assert api.post(f"{base}approve-rest/").json() == {"approved": team.people.count() - 1}
    assert api.post(f"/api/cycles/{nominating.pk}/launch/").json() == {"changed": True, "status": "open"}
    # once launched there is nothing to approve: a 400 with the reason
    refused = api.post(f"{base}approve-rest/")
    assert refused.status_code == 400 and "while nominations are open" in str(refused.json())


def test_the_nominations_api_pages_in_name_order(nominating: Cycle, manager: Any) -> None:
    api = APIClient()
    api.force_authenticate(manager)
    names = list(nominating.subjects.order_by("person__name", "id").values_list("person__name", flat=True))
    page = api.get(f"/api/cycles/{nominating.pk}/nominations/?limit=2&offset=1").json()
    assert page["count"] == len(names)
    assert [row["name"] for row in page["results"]] == names[1:3]


def test_a_rater_the_manager_added_and_the_subject_names_too_is_hers_until_her_list_leaves_them_out(
    nominating: Cycle, team: Team, client: Client
) -> None:
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    # (in another group than the one she will give: the manager's is kept, to be given back)
    services.rater_add(cycle=nominating, subject=ann, email="chosen@manager.test", group=Group.DIRECT_REPORT)
    url = _link(team, "Ann")
    # the subject's page shows her own nominations only, not whom the manager added
    assert "chosen@manager.test" not in client.get(url).content.decode()
    peers = [person(team, "Ben").pk, person(team, "Cat").pk]

    def outside() -> dict[str, tuple[str, str, str]]:
        rows = ann.invitations.exclude(group=Group.SELF).exclude(group=Group.MANAGER)
        return {
            email: tuple(rest)
            for email, *rest in rows.values_list("rater_email", "group", "source", "manager_added_as")
        }

    client.post(url, {"peers": peers, "others": "mine@partner.test"})
    assert outside()["chosen@manager.test"] == (Group.DIRECT_REPORT, Invitation.Source.MANAGER, "")
    assert outside()["mine@partner.test"] == (Group.OUTSIDE, Invitation.Source.NOMINATED, "")
    # when she names the manager's rater too, it is asked once, as her nomination, in the group
    # she gave: an address she gave counts nowhere, whoever else gave it
    client.post(url, {"peers": peers, "others": "chosen@manager.test"})
    assert "mine@partner.test" not in outside()
    assert outside()["chosen@manager.test"] == (Group.OUTSIDE, Invitation.Source.NOMINATED, Group.DIRECT_REPORT)
    # the manager is told, on the raters page and in the API
    manager = Client()
    manager.force_login(team.manager)
    raters = " ".join(manager.get(f"/cycles/{nominating.pk}/raters/").content.decode().split())
    assert '&lt;chosen@manager.test&gt;</span> <span class="muted">(chosen by Ann: counts in no score)</span>' in raters
    assert "(added by you too; counted as Ann's choice while on that list)" in raters
    api = APIClient()
    api.force_authenticate(team.manager)
    rows = api.get(f"/api/cycles/{nominating.pk}/raters/").json()["results"]
    assert {row["email"]: row["manager_added_as"] for row in rows}["chosen@manager.test"] == Group.DIRECT_REPORT
    # and when her next list leaves it out, it is the manager's again, as the manager had it
    client.post(url, {"peers": peers, "others": ""})
    assert outside()["chosen@manager.test"] == (Group.DIRECT_REPORT, Invitation.Source.MANAGER, "")


def _page_list(page: str) -> tuple[set[str], str]:
    """The list a nomination page shows: the peers checked and the outside raters' box."""
    checked = set(re.findall(r'<input type="checkbox" name="peers" value="(\d+)"[^>]* checked', page))
    box = re.search(r'<textarea name="others"[^>]*>(.*?)</textarea>', page, re.S)
    assert box is not None
    return checked, box.group(1).strip()


def test_the_subjects_page_shows_the_list_sent_even_where_the_manager_had_added_the_same_raters(
    nominating: Cycle, team: Team, client: Client
) -> None:
    # given: the manager already asked Ben (a peer) and lee@partner.test (outside) about Ann
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    ben, cat = person(team, "Ben"), person(team, "Cat")
    services.rater_add(cycle=nominating, subject=ann, email=ben.email, group=Group.PEER)
    services.rater_add(cycle=nominating, subject=ann, email="lee@partner.test", group=Group.OUTSIDE, name="Lee Manager")
    url = _link(team, "Ann")
    # when: Ann names both too, with a name of her own for Lee
    client.post(url, {"peers": [ben.pk, cat.pk], "others": "Lee, Lee@Partner.test\nkim@partner.test"})
    # then: each is asked once, as her nomination
    sources = dict(ann.invitations.filter(group__in=services.NOMINATED_GROUPS).values_list("rater_email", "source"))
    assert sources == dict.fromkeys(
        [ben.email.lower(), cat.email.lower(), "lee@partner.test", "kim@partner.test"], Invitation.Source.NOMINATED
    )
    # and her page shows her list exactly as she sent it: nothing tells her whom the manager added
    assert _page_list(client.get(url).content.decode()) == (
        {str(ben.pk), str(cat.pk)},
        "Lee, lee@partner.test\nkim@partner.test",
    )
    # as it does after she sends a shorter one
    client.post(url, {"peers": [cat.pk, ben.pk], "others": ""})
    assert _page_list(client.get(url).content.decode()) == ({str(ben.pk), str(cat.pk)}, "")
    assert Nomination.objects.get(subject=ann).sent_outside == []


def test_the_subject_and_the_manager_are_told_that_outside_raters_the_subject_names_count_nowhere(
    nominating: Cycle, team: Team, client: Client
) -> None:
    # given: Ann names an outside rater; the manager adds one for her too
    url = _link(team, "Ann")
    page = " ".join(client.get(url).content.decode().split())
    assert "their answers count in no score and are not quoted in your report" in page
    assert "manager adds" not in page
    client.post(url, {"peers": [person(team, "Ben").pk, person(team, "Cat").pk], "others": "kim@partner.test"})
    ann = nominating.subjects.get(person__name="Ann")
    services.raters_bulk_add(
        cycle=nominating,
        raters=[
            services.RaterSpec(
                subject=ann, group=Group.OUTSIDE, email="lee@partner.test", source=Invitation.Source.MANAGER
            )
        ],
    )
    # when: the manager checks the list
    manager = Client()
    manager.force_login(team.manager)
    raters = " ".join(manager.get(f"/cycles/{nominating.pk}/raters/").content.decode().split())
    # then: the one Ann chose is marked, the one the manager added is not
    assert '&lt;kim@partner.test&gt;</span> <span class="muted">(chosen by Ann: counts in no score)</span>' in raters
    assert "&lt;lee@partner.test&gt;</span> <form" in raters
    assert "outside raters you choose yourself and add here count as usual" in raters
    api = APIClient()
    api.force_authenticate(team.manager)
    rows = api.get(f"/api/cycles/{nominating.pk}/raters/").json()["results"]
    outside = {row["email"]: row["source"] for row in rows if row["group"] == Group.OUTSIDE}
    assert outside == {"kim@partner.test": Invitation.Source.NOMINATED, "lee@partner.test": Invitation.Source.MANAGER}


def test_progress_and_the_at_risk_warning_count_no_outside_rater_the_subject_nominated(
    manager: Any, client: Client
) -> None:
    # given: k = 3; three outside raters the subject nominated answered, and one of two peers
    from tests.factories import CycleFactory, InvitationFactory, SubjectFactory

    cycle = CycleFactory(status=Cycle.Status.OPEN, team__manager=manager, anonymity_min=3, nomination_mode="subjects")
    subject = SubjectFactory(cycle=cycle, person__name="Ann Berg")
    for _ in range(3):
        InvitationFactory(
            subject=subject,
            group=Group.OUTSIDE,
            source=Invitation.Source.NOMINATED,
            status=Invitation.Status.COMPLETED,
        )
    for status in (Invitation.Status.COMPLETED, Invitation.Status.OPEN):
        InvitationFactory(subject=subject, group=Group.PEER, source=Invitation.Source.NOMINATED, status=status)
    # when
    (progress,) = selectors.cycle_progress(cycle=cycle)
    # then: their answers bring no report closer, so the pool is the two peers, below k
    assert (progress.anonymous_invited, progress.anonymous_answered, progress.enough) == (2, None, False)
    client.force_login(manager)
    page = " ".join(client.get(f"/cycles/{cycle.pk}/").content.decode().split())
    assert "2 invited — fewer than 3, so not counted" in page
    assert "Outside raters a person nominated are not counted here" in page
    # and the warning counts the peers alone: short of k
    (risk,) = selectors.subjects_short_of_k(cycle=cycle)
    assert (risk.anonymous_invited, [group.group for group in risk.groups]) == (2, [Group.PEER])
    assert selectors.subjects_at_risk_count(cycle=cycle) == 1


def _subject_reads(team: Team, cycle_build: Callable[..., Cycle], *, name: str, manager_added: bool) -> dict[str, Any]:
    """Everything Ann can read in a review where she names Ben, Cat and lee@partner.test, the
    manager having added Ben and Lee for her beforehand or not: her nomination page, what the
    address she gave receives and sees, and her report (as released, its PDF's HTML)."""
    cycle = cycle_build(team, name=name, nomination_mode="subjects", nomination_min=2, nomination_max=3)
    services.cycle_nominations_open(cycle=cycle, by=team.manager)
    ann = cycle.subjects.select_related("person").get(person__name="Ann")
    ben, cat = person(team, "Ben"), person(team, "Cat")
    if manager_added:
        services.rater_add(cycle=cycle, subject=ann, email=ben.email, group=Group.PEER)
        # in a group of the manager's own: hers is the one that counts
        services.rater_add(cycle=cycle, subject=ann, email="lee@partner.test", group=Group.DIRECT_REPORT, name="Lee M")
    send_queued()
    (asked,) = [m for m in outbox_for(ann.person.email) if f'"{name}"' in m.body and "/n/" in m.body]
    link = re.search(r"http://testserver(/n/[^/]+/)", asked.body)
    assert link is not None
    browser = Client()
    browser.post(link.group(1), {"peers": [ben.pk, cat.pk], "others": "Lee, lee@partner.test"})
    reads: dict[str, Any] = {"nomination page": _page_list(browser.get(link.group(1)).content.decode())}
    services.nominations_approve_rest(cycle=cycle, by=team.manager)
    assert services.cycle_launch(cycle=cycle, by=team.manager)
    send_queued()
    (invited,) = [m for m in outbox_for("lee@partner.test") if f'"{name}"' in m.body]
    reads["email to the address she gave"] = re.sub(r"http://testserver/\S+", "", invited.body).replace(name, "")
    survey = re.search(r"http://testserver(/s/[^/\s]+/)", invited.body)
    assert survey is not None
    page = Client().get(survey.group(1), follow=True).content.decode()
    main = re.search(r"<main.*?</main>", page, re.S)
    assert main is not None
    reads["survey page of the address she gave"] = " ".join(re.sub(r"<[^>]+>", " ", main.group(0)).split())
    assert services.cycle_close(cycle=cycle, by=team.manager)
    data = report_data_compute(report_id=Report.objects.get(cycle=cycle, subject=ann).pk)
    note = re.search(r'<li class="raters-note">(.*?)</li>', report_html(data=data, for_pdf=True), re.S)
    assert note is not None
    reads["report"] = (data["raters"], data["notices"], " ".join(note.group(1).split()))
    return reads


def test_nothing_the_subject_reads_tells_whether_the_manager_had_added_raters_she_names(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    alone = _subject_reads(team, cycle_build, name="Review alone", manager_added=False)
    together = _subject_reads(team, cycle_build, name="Review together", manager_added=True)
    assert [read for read, seen in alone.items() if together[read] != seen] == []
    # and what she reads says what it should: the address she gave counts nowhere, as she was told
    assert "Ann named you as a rater" in alone["survey page of the address she gave"]
    assert any("Outside raters this person nominated count in no score" in notice for notice in alone["report"][1])


def test_raters_the_manager_takes_off_her_list_stay_off_when_she_sends_it_again(
    nominating: Cycle, team: Team, client: Client
) -> None:
    # given: Ann named Ben (whom the manager had added too), Cat, Dan, kim@ and zed@partner.test
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    ben, cat, dan = person(team, "Ben"), person(team, "Cat"), person(team, "Dan")
    services.rater_add(cycle=nominating, subject=ann, email=ben.email, group=Group.PEER)
    url = _link(team, "Ann")
    client.post(url, {"peers": [ben.pk, cat.pk, dan.pk], "others": "kim@partner.test\nzed@partner.test"})
    # when: the manager takes Ben and zed off it
    for email in (ben.email.lower(), "zed@partner.test"):
        services.rater_remove(cycle=nominating, invitation=Invitation.objects.get(subject=ann, rater_email=email))
    # then: her page shows the list as the manager left it
    checked, others = _page_list(client.get(url).content.decode())
    assert (checked, others) == ({str(cat.pk), str(dan.pk)}, "kim@partner.test")
    # and sending it again, one outside rater added, brings neither back
    response = client.post(url, {"peers": sorted(checked), "others": f"{others}\nlou@partner.test"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    asked = set(ann.invitations.filter(group__in=services.NOMINATED_GROUPS).values_list("rater_email", flat=True))
    assert asked == {cat.email.lower(), dan.email.lower(), "kim@partner.test", "lou@partner.test"}


def test_a_teammate_the_manager_added_under_an_address_since_changed_is_asked_once_when_named(
    nominating: Cycle, team: Team, client: Client
) -> None:
    # given: the manager added Ben at an address Ben has since left behind
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    ben, cat = person(team, "Ben"), person(team, "Cat")
    services.rater_add(cycle=nominating, subject=ann, email="ben.old@example.test", group=Group.PEER)
    Invitation.objects.filter(subject=ann, rater_email="ben.old@example.test").update(rater_person=ben)
    url = _link(team, "Ann")
    # when: Ann names him
    client.post(url, {"peers": [ben.pk, cat.pk], "others": ""})
    # then: he is asked once, at his address now, as her nomination
    rows = list(ann.invitations.filter(rater_person=ben).values_list("rater_email", "source", "manager_added_as"))
    assert rows == [(ben.email.lower(), Invitation.Source.NOMINATED, Group.PEER)]
    # and the manager taking him off her list takes him off her page
    services.rater_remove(cycle=nominating, invitation=Invitation.objects.get(subject=ann, rater_person=ben))
    assert _page_list(client.get(url).content.decode())[0] == {str(cat.pk)}


def test_a_remove_of_a_rater_the_subject_sent_again_since_removes_nothing_and_says_so(
    nominating: Cycle, team: Team, client: Client, manager: Any
) -> None:
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    peers = [person(team, "Ben").pk, person(team, "Cat").pk]
    url = _link(team, "Ann")
    client.post(url, {"peers": peers, "others": "kim@partner.test"})
    # the manager's page shows kim@ with a remove button; meanwhile Ann sends her list again
    shown = Invitation.objects.get(subject=ann, rater_email="kim@partner.test")
    client.post(url, {"peers": peers, "others": "kim@partner.test"})
    manager_client = Client()
    manager_client.force_login(manager)
    page = manager_client.post(f"/cycles/{nominating.pk}/raters/{shown.pk}/remove/", follow=True).content.decode()
    assert "That rater was no longer on the list (a list was sent again since): see it below." in page
    # nothing changed: kim@ is asked and on her page
    assert ann.invitations.filter(rater_email="kim@partner.test").exists()
    assert _page_list(client.get(url).content.decode())[1] == "kim@partner.test"
    # the API says the same with a 404, naming why
    api = APIClient()
    api.force_authenticate(manager)
    now = Invitation.objects.get(subject=ann, rater_email="kim@partner.test")
    client.post(url, {"peers": peers, "others": "kim@partner.test"})
    answer = api.delete(f"/api/cycles/{nominating.pk}/raters/{now.pk}/")
    assert answer.status_code == 404


def test_a_remove_read_before_the_subject_named_the_managers_rater_takes_it_off_her_page_too(
    nominating: Cycle, team: Team, client: Client
) -> None:
    # given: the manager's page shows lee@, whom the manager added; Ann then names lee@ too
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    services.rater_add(cycle=nominating, subject=ann, email="lee@partner.test", group=Group.OUTSIDE)
    shown = Invitation.objects.get(subject=ann, rater_email="lee@partner.test")
    url = _link(team, "Ann")
    peers = [person(team, "Ben").pk, person(team, "Cat").pk]
    client.post(url, {"peers": peers, "others": "lee@partner.test"})
    # when: the manager removes lee@ from the page read before
    assert services.rater_remove(cycle=nominating, invitation=shown) is True
    # then: lee@ is off her page as well, and her list sent again does not bring them back
    assert _page_list(client.get(url).content.decode()) == ({str(pk) for pk in peers}, "")
    client.post(url, {"peers": peers, "others": ""})
    assert not ann.invitations.filter(rater_email="lee@partner.test").exists()
    # and a remove of a rater whose list was replaced since removes nothing, and says so
    client.post(url, {"peers": peers, "others": "kim@partner.test"})
    kim = Invitation.objects.get(subject=ann, rater_email="kim@partner.test")
    client.post(url, {"peers": peers, "others": "kim@partner.test"})
    assert services.rater_remove(cycle=nominating, invitation=kim) is False
    assert ann.invitations.filter(rater_email="kim@partner.test").exists()


def test_a_rater_the_manager_adds_after_the_subject_named_them_is_given_back_like_one_added_before(
    nominating: Cycle, team: Team, client: Client, manager: Any
) -> None:
    ann = nominating.subjects.select_related("person").get(person__name="Ann")
    peers = [person(team, "Ben").pk, person(team, "Cat").pk]
    url = _link(team, "Ann")
    client.post(url, {"peers": peers, "others": "lee@partner.test"})
    # when: the manager adds lee@ too, from the raters page
    manager_client = Client()
    manager_client.force_login(manager)
    page = manager_client.post(
        f"/cycles/{nominating.pk}/raters/",
        {"subject": ann.pk, "email": "lee@partner.test", "group": Group.DIRECT_REPORT},
        follow=True,
    ).content.decode()
    # then: the manager is told, and the rater stays hers while her list names them
    assert "lee@partner.test is on Ann&#x27;s own list: added by you too." in page
    lee = Invitation.objects.get(subject=ann, rater_email="lee@partner.test")
    assert (lee.group, lee.source, lee.manager_added_as) == (
        Group.OUTSIDE,
        Invitation.Source.NOMINATED,
        Group.DIRECT_REPORT,
    )
    # and is the manager's when her list leaves them out, as if the manager had added them first
    client.post(url, {"peers": peers, "others": ""})
    lee.refresh_from_db()
    assert (lee.group, lee.source, lee.manager_added_as) == (Group.DIRECT_REPORT, Invitation.Source.MANAGER, "")
