from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from surveys.models import Cycle, Group, Invitation, OutboundEmail, Team
from tests.factories import default_questionnaire
from tests.surveys.helpers import person

pytestmark = pytest.mark.django_db


def test_create_a_team_and_add_people(signed_in: Client) -> None:
    response = signed_in.post("/teams/", {"name": "Design"})
    assert response.status_code == 302
    team_url = response["Location"]
    signed_in.post(team_url, {"action": "add", "name": "Boss", "email": "boss@x.test"})
    team = Team.objects.get(name="Design")
    boss = team.people.get()
    signed_in.post(team_url, {"action": "add", "name": "Kim", "email": "kim@x.test", "reports_to": boss.pk})
    page = signed_in.get(team_url).content.decode()
    assert "Kim" in page and "kim@x.test" in page
    assert team.people.get(name="Kim").reports_to == boss


def test_bad_person_form_keeps_what_was_typed(signed_in: Client, team: Team) -> None:
    ann = person(team, "Ann")
    response = signed_in.post(f"/teams/{team.pk}/", {"action": "add", "name": "Ann Again", "email": ann.email})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'value="Ann Again"' in html
    assert "is already in this team" in html
    assert 'class="field has-error"' in html


def test_csv_errors_are_listed_and_nothing_is_imported(signed_in: Client, team: Team) -> None:
    before = team.people.count()
    upload = SimpleUploadedFile(
        "team.csv", b"name,email,reports_to\nA,a@x.test,\n,b@x.test,\nC,c@x.test,ghost@x.test\n"
    )
    response = signed_in.post(f"/teams/{team.pk}/import/", {"file": upload})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported" in html
    assert "line 3: missing name" in html and "line 4: unknown manager ghost@x.test" in html
    assert team.people.count() == before


def test_csv_import_success(signed_in: Client, team: Team) -> None:
    upload = SimpleUploadedFile("team.csv", b"name,email\nNew Hire,new@x.test\n")
    response = signed_in.post(f"/teams/{team.pk}/import/", {"file": upload}, follow=True)
    assert "Imported 1 people." in response.content.decode()


def test_edit_person_rejects_a_reporting_loop(signed_in: Client, team: Team) -> None:
    lead, ann = person(team, "Lead"), person(team, "Ann")
    response = signed_in.post(
        f"/people/{lead.pk}/edit/", {"name": "Lead Renamed", "email": lead.email, "reports_to": ann.pk}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "loop in the reporting lines" in html and 'value="Lead Renamed"' in html


def _cycle_form(team: Team, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Autumn",
        "deadline": (timezone.localtime() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
        "subjects": [p.pk for p in team.people.all()],
        "questionnaire": default_questionnaire().pk,
        "anonymity_min": 3,
        "comment_min": "",
        "nomination_mode": "manager",
        "nomination_min": 3,
        "nomination_max": 8,
        "reminder_days_before": 2,
    }
    data.update(overrides)
    return data


def test_cycle_form_refuses_numbers_too_large_keeping_what_was_typed(signed_in: Client, team: Team) -> None:
    typed = {"anonymity_min": 99999, "comment_min": 99999, "nomination_min": 99999, "nomination_max": 99999}
    response = signed_in.post(f"/teams/{team.pk}/cycles/new/", _cycle_form(team, name="Too big", **typed))
    assert response.status_code == 400
    html = response.content.decode()
    for field in typed:
        assert re.search(rf'id="id_{field}_error">[^<]*less than or equal to', html), field
        assert re.search(rf'name="{field}" value="99999"', html), field
    assert 'value="Too big"' in html
    assert not Cycle.objects.exists()


def test_cycle_edit_form_refuses_a_k_too_large(signed_in: Client, team: Team, cycle: Cycle) -> None:
    data = _cycle_form(team, name=cycle.name, anonymity_min=70000)
    response = signed_in.post(f"/cycles/{cycle.pk}/edit/", data)
    assert response.status_code == 400
    assert re.search(r'id="id_anonymity_min_error">[^<]*less than or equal to 100', response.content.decode())
    assert Cycle.objects.get(pk=cycle.pk).anonymity_min == 3


def test_cycle_form_shows_errors_next_to_fields_and_keeps_input(signed_in: Client, team: Team) -> None:
    response = signed_in.post(
        f"/teams/{team.pk}/cycles/new/", _cycle_form(team, name="Keep me", anonymity_min=1, comment_min="")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "The anonymity minimum can never be below 2." in html
    assert 'value="Keep me"' in html
    past = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = signed_in.post(f"/teams/{team.pk}/cycles/new/", _cycle_form(team, deadline=past))
    assert "The deadline must be in the future." in response.content.decode()
    response = signed_in.post(f"/teams/{team.pk}/cycles/new/", _cycle_form(team, subjects=[]))
    assert response.status_code == 400
    assert not Cycle.objects.exists()


def test_full_cycle_through_the_pages(signed_in: Client, team: Team) -> None:
    response = signed_in.post(f"/teams/{team.pk}/cycles/new/", _cycle_form(team))
    assert response.status_code == 302
    cycle = Cycle.objects.get()
    detail = f"/cycles/{cycle.pk}/"
    # raters: add an outside one, with a bad email first
    ann_subject = cycle.subjects.get(person__name="Ann")
    bad = signed_in.post(f"{detail}raters/", {"subject": ann_subject.pk, "email": "not-mail", "group": "outside"})
    assert bad.status_code == 400 and 'value="not-mail"' in bad.content.decode()
    signed_in.post(f"{detail}raters/", {"subject": ann_subject.pk, "email": "Partner@Out.test", "group": "outside"})
    assert cycle.invitations.filter(rater_email="partner@out.test", group=Group.OUTSIDE).exists()
    removable = cycle.invitations.get(rater_email="partner@out.test")
    signed_in.post(f"{detail}raters/{removable.pk}/remove/")
    assert not cycle.invitations.filter(rater_email="partner@out.test").exists()
    # launch twice
    first = signed_in.post(f"{detail}launch/", follow=True)
    assert "Launched" in first.content.decode()
    second = signed_in.post(f"{detail}launch/", follow=True)
    assert "already launched" in second.content.decode()
    assert OutboundEmail.objects.filter(kind="invitation").count() == len(
        set(cycle.invitations.values_list("rater_email", flat=True))
    )
    # progress shows the anonymous raters pooled
    mid_subject = cycle.subjects.get(person__name="Mid One")
    pool = cycle.invitations.filter(subject=mid_subject, group__in=["peer", "direct_report", "outside"])
    Invitation.objects.filter(pk__in=list(pool.values_list("pk", flat=True))[:2]).update(
        status=Invitation.Status.COMPLETED
    )
    html = signed_in.get(detail).content.decode()
    anonymous = pool.count()
    assert anonymous >= cycle.anonymity_min
    assert f"2 of {anonymous} answered" in html
    assert "Peers:" not in html
    # remind, twice
    assert "Reminder queued" in signed_in.post(f"{detail}remind/", follow=True).content.decode()
    assert "less than an hour ago" in signed_in.post(f"{detail}remind/", follow=True).content.decode()
    # close: the button leads to a confirmation page, which closes nothing by itself
    assert f'href="{detail}close/"' in signed_in.get(detail).content.decode()
    confirm = signed_in.get(f"{detail}close/").content.decode()
    assert "Yes, close the cycle" in confirm and f'action="{detail}close/"' in confirm
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN
    assert "Closed:" in signed_in.post(f"{detail}close/", follow=True).content.decode()
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.CLOSED
    assert "already closed" in signed_in.post(f"{detail}close/", follow=True).content.decode()
    # the closed cycle leads on to the coaches and the reports
    closed = signed_in.get(detail).content.decode()
    assert f'href="/reports/cycles/{cycle.pk}/coaches/"' in closed
    assert 'href="/reports/"' in closed


def test_progress_page_never_says_which_anonymous_rater_answered(
    signed_in: Client, open_cycle: Cycle, team: Team
) -> None:
    answered = open_cycle.invitations.filter(group=Group.PEER).first()
    assert answered is not None
    Invitation.objects.filter(pk=answered.pk).update(status=Invitation.Status.COMPLETED)
    for url in (f"/cycles/{open_cycle.pk}/", f"/cycles/{open_cycle.pk}/raters/"):
        html = signed_in.get(url).content.decode()
        assert "completed" not in html.lower().replace("completed_", "")
    raters = signed_in.get(f"/cycles/{open_cycle.pk}/raters/").content.decode()
    # the raters page lists who was asked, identically for those who answered and those who did not
    assert answered.rater_email in raters
    assert "answered" not in raters


def test_edit_a_launched_cycle_only_offers_what_may_change(signed_in: Client, open_cycle: Cycle) -> None:
    html = signed_in.get(f"/cycles/{open_cycle.pk}/edit/").content.decode()
    assert 'name="deadline"' in html and 'name="subjects"' not in html and 'name="questionnaire"' not in html
    new_deadline = (timezone.localtime() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "name": "Renamed",
        "deadline": new_deadline,
        "anonymity_min": 3,
        "comment_min": "",
        "reminder_days_before": 2,
    }
    assert signed_in.post(f"/cycles/{open_cycle.pk}/edit/", data).status_code == 302
    open_cycle.refresh_from_db()
    assert open_cycle.name == "Renamed"


def test_edit_page_refuses_to_clear_the_comment_minimum_once_launched(
    signed_in: Client, team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team, launch=True, comment_min=5)
    data = {
        "name": "Renamed too",
        "deadline": timezone.localtime(cycle.deadline).strftime("%Y-%m-%dT%H:%M"),
        "anonymity_min": 3,
        "comment_min": "",
        "reminder_days_before": 2,
    }
    response = signed_in.post(f"/cycles/{cycle.pk}/edit/", data)
    assert response.status_code == 400
    html = response.content.decode()
    # the error sits in the comment minimum's field, and what was typed is kept
    assert re.search(r'id="id_comment_min_error">[^<]*cannot go below 5 once the cycle is launched', html)
    assert 'value="Renamed too"' in html
    cycle.refresh_from_db()
    assert (cycle.comment_min, cycle.name) == (5, "Spring review")


def test_draft_delete_page(signed_in: Client, cycle: Cycle) -> None:
    signed_in.post(f"/cycles/{cycle.pk}/delete/")
    assert not Cycle.objects.exists()


def test_home_links_to_teams_and_cycles(signed_in: Client) -> None:
    html = signed_in.get("/").content.decode()
    assert 'href="/teams/"' in html and 'href="/cycles/"' in html


def test_pages_are_phone_ready_and_labelled(signed_in: Client, team: Team, cycle_build: Callable[..., Cycle]) -> None:
    cycle = cycle_build(team)
    for url in (f"/teams/{team.pk}/", f"/teams/{team.pk}/cycles/new/", f"/cycles/{cycle.pk}/raters/"):
        html = signed_in.get(url).content.decode()
        assert 'name="viewport"' in html
        assert "<legend>" in html
        assert 'for="id_' in html


def test_confirmation_pages_change_nothing_and_lead_back_once_done(signed_in: Client, open_cycle: Cycle) -> None:
    detail = f"/cycles/{open_cycle.pk}/"
    for action in ("launch", "delete"):
        response = signed_in.get(f"{detail}{action}/", follow=True)
        assert response.redirect_chain[-1][0] == detail
        assert f"This cycle is open: nothing to {action}." in response.content.decode()
    confirm = signed_in.get(f"{detail}close/")
    assert confirm.status_code == 200 and "Yes, close the cycle" in confirm.content.decode()
    assert Cycle.objects.get(pk=open_cycle.pk).status == Cycle.Status.OPEN
