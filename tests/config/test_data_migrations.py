"""Upgrading a database that stored answers in the clear: the data migrations, run for real."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from feedback.models import Decline, Response, SealedAnswer
from feedback.sealing import answer_unseal
from reports.models import Report
from surveys.models import Invitation, Nomination, Subject

pytestmark = pytest.mark.django_db(transaction=True)

# The schema before answers were sealed and before closed cycles forgot their answerers.
BEFORE = [
    ("surveys", "0004_nominations"),
    ("feedback", "0002_response_decline_random_order"),
    ("reports", "0002_release_email_status"),
]


def _old_world(apps: Any) -> dict[str, Any]:
    """An open and a closed cycle as the earlier version stored them: answers in the clear."""
    user = apps.get_model("auth", "User").objects.create(username="upgrade-manager")
    questionnaire = apps.get_model("surveys", "Questionnaire").objects.create(name="Upgrade", version=1)
    dimension = apps.get_model("surveys", "Dimension").objects.create(
        questionnaire=questionnaire, side="management", key="plan", name="Plan", pair=1, position=1
    )
    apps.get_model("surveys", "Item").objects.create(dimension=dimension, code="plan-1", text="Plans", position=1)
    team = apps.get_model("surveys", "Team").objects.create(name="Upgrade", manager=user)
    person_model = apps.get_model("surveys", "Person")
    cycle_model = apps.get_model("surveys", "Cycle")
    subject_model = apps.get_model("surveys", "Subject")
    invitation_model = apps.get_model("surveys", "Invitation")
    response_model = apps.get_model("feedback", "Response")
    decline_model = apps.get_model("feedback", "Decline")
    world: dict[str, Any] = {}
    for status in ("open", "closed"):
        person = person_model.objects.create(team=team, name=f"Subject {status}", email=f"Subject-{status}@Up.test")
        cycle = cycle_model.objects.create(
            team=team,
            name=status,
            created_by=user,
            questionnaire=questionnaire,
            deadline=timezone.now() + timedelta(days=3),
            status=status,
            anonymity_min=3,
        )
        subject = subject_model.objects.create(cycle=cycle, person=person)
        # three peers and one more anonymous rater answered, one peer declined with a reason
        groups = ["peer", "peer", "peer", "other" if status == "open" else "direct_report"]
        for number, group in enumerate([*groups, "peer"]):
            invitation_model.objects.create(
                cycle=cycle,
                subject=subject,
                group=group,
                rater_email=f"rater{number}-{status}@up.test",
                status="completed" if number < 4 else "declined",
            )
        for value, group in zip((2, 3, 4, 5), groups, strict=True):
            response_model.objects.create(
                cycle=cycle, subject=subject, group=group, ratings={"plan-1": value}, comments={"keep_doing": "x"}
            )
        decline_model.objects.create(cycle=cycle, subject=subject, group="peer", reason="Too new here.")
        world[status] = (cycle.pk, subject.pk)
    closed_cycle, closed_subject = world["closed"]
    apps.get_model("reports", "Report").objects.create(
        cycle_id=closed_cycle, subject_id=closed_subject, status="ready", data={"k": 3, "sd": 0.8}, pdf=b"%PDF-old"
    )
    return world


def test_upgrading_seals_open_answers_and_makes_closed_ones_forget_their_raters() -> None:
    # given: the database as the earlier version left it
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    world = _old_world(executor.loader.project_state(BEFORE).apps)
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # then: the open cycle's answers are sealed, none left in the clear
    open_cycle, open_subject = world["open"]
    assert not Response.objects.filter(cycle_id=open_cycle).exists()
    assert not Decline.objects.filter(cycle_id=open_cycle).exists()
    opened = [
        answer_unseal(cycle_id=open_cycle, blob=blob)
        for blob in SealedAnswer.objects.values_list("ciphertext", flat=True)
    ]
    answers = sorted((p["group"], p["ratings"]["plan-1"]) for p, _ in opened if p["kind"] == "response")
    assert answers == [("outside", 5), ("peer", 2), ("peer", 3), ("peer", 4)]
    assert [t for p, t in opened if p["kind"] == "decline"] == [{"reason": "Too new here."}]
    assert {p["subject"] for p, _ in opened} == {open_subject}
    # the rater group "other" is "outside" now, and nobody's source is guessed
    assert not Invitation.objects.filter(group="other").exists()
    assert set(Invitation.objects.values_list("source", flat=True)) == {Invitation.Source.UNKNOWN}
    # the closed cycle forgot who answered, kept the counts, and stores the lone direct
    # report's answer and the decline as "smaller groups"
    closed_cycle, closed_subject = world["closed"]
    assert set(Invitation.objects.filter(cycle_id=closed_cycle).values_list("status", flat=True)) == {"closed"}
    subject = Subject.objects.get(pk=closed_subject)
    assert subject.final_progress == {"anonymous": [5, 4], "self": [0, 0], "manager": [0, 0]}
    stored = sorted(Response.objects.filter(cycle_id=closed_cycle).values_list("group", "ratings__plan-1"))
    assert stored == [("peer", 2), ("peer", 3), ("peer", 4), ("small_groups", 5)]
    assert list(Decline.objects.filter(cycle_id=closed_cycle).values_list("group", flat=True)) == ["small_groups"]
    # both subjects keep the address they had at launch, for releases
    assert subject.release_email == "subject-closed@up.test"
    # and the report built under the earlier rules is withdrawn, its figures and PDF gone
    report = Report.objects.get(cycle_id=closed_cycle)
    assert (report.status, report.data, report.pdf) == (Report.Status.FAILED, {}, None)
    assert "earlier scoring rules" in report.reason


def _team_before(before: list[tuple[str, str]]) -> tuple[Any, Any, Any, Any]:
    """The schema at ``before``, its models, and a manager, a questionnaire and a team in it."""
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    user = apps.get_model("auth", "User").objects.create(username="upgrade-team-manager")
    questionnaire = apps.get_model("surveys", "Questionnaire").objects.create(name="Upgrade", version=1)
    team = apps.get_model("surveys", "Team").objects.create(name="Upgrade", manager=user)
    return apps, user, questionnaire, team


def test_upgrading_keeps_the_list_each_subject_sent_for_their_page() -> None:
    # given: a list sent before the list was kept apart from its invitations
    apps, user, questionnaire, team = _team_before([("surveys", "0014_former_addresses")])
    people = {
        name: apps.get_model("surveys", "Person").objects.create(team=team, name=name, email=f"{name}@up.test")
        for name in ("ann", "ben", "cat")
    }
    cycle = apps.get_model("surveys", "Cycle").objects.create(
        team=team,
        name="nominating",
        created_by=user,
        questionnaire=questionnaire,
        deadline=timezone.now() + timedelta(days=3),
        status="nominating",
        nomination_mode="subjects",
    )
    subjects = {
        name: apps.get_model("surveys", "Subject").objects.create(cycle=cycle, person=people[name])
        for name in ("ann", "ben")
    }
    nomination_model = apps.get_model("surveys", "Nomination")
    nomination_model.objects.create(subject=subjects["ann"], submitted_at=timezone.now())
    nomination_model.objects.create(subject=subjects["ben"])
    invitation_model = apps.get_model("surveys", "Invitation")
    for group, email, person, name, source in [
        ("peer", "cat@up.test", people["cat"], "cat", "nominated"),
        ("outside", "kim@partner.test", None, "Kim", "nominated"),
        ("outside", "lee@partner.test", None, "", "manager"),
        ("peer", "ben@up.test", people["ben"], "ben", "reporting_lines"),
    ]:
        invitation_model.objects.create(
            cycle=cycle,
            subject=subjects["ann"],
            group=group,
            rater_email=email,
            rater_person=person,
            rater_name=name,
            source=source,
        )
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # then: Ann's page shows what it showed before, her own nominations; Ben sent nothing
    ann = Nomination.objects.get(subject_id=subjects["ann"].pk)
    assert ann.sent_peer_ids == [people["cat"].pk]
    assert ann.sent_outside == [{"name": "Kim", "email": "kim@partner.test"}]
    ben = Nomination.objects.get(subject_id=subjects["ben"].pk)
    assert (ben.sent_peer_ids, ben.sent_outside) == ([], [])


def test_upgrading_keeps_a_person_asked_twice_about_a_subject_linked_to_one_invitation() -> None:
    # given: a person asked twice about one subject, at two addresses, before that was refused
    apps, user, questionnaire, team = _team_before([("surveys", "0015_nomination_sent_list")])
    person_model = apps.get_model("surveys", "Person")
    ann = person_model.objects.create(team=team, name="ann", email="ann@up.test")
    ben = person_model.objects.create(team=team, name="ben", email="ben.new@up.test")
    cycle = apps.get_model("surveys", "Cycle").objects.create(
        team=team, name="open", created_by=user, questionnaire=questionnaire, deadline=timezone.now(), status="open"
    )
    subject = apps.get_model("surveys", "Subject").objects.create(cycle=cycle, person=ann)
    invitation_model = apps.get_model("surveys", "Invitation")
    first, second = (
        invitation_model.objects.create(cycle=cycle, subject=subject, group="peer", rater_email=email, rater_person=ben)
        for email in ("ben.old@up.test", "ben.new@up.test")
    )
    # when
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    # then: both invitations are kept, the first one alone names the person
    linked = dict(Invitation.objects.filter(subject_id=subject.pk).values_list("pk", "rater_person_id"))
    assert linked == {first.pk: ben.pk, second.pk: None}
