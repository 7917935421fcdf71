"""Default raters from the reporting lines, and the warnings where a group is short of k."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from surveys import selectors, services
from surveys.models import Cycle, Group, Team
from tests.factories import PersonFactory, TeamFactory
from tests.surveys.helpers import person, send_queued

pytestmark = pytest.mark.django_db


def _raters(cycle: Cycle, name: str) -> set[tuple[str, str]]:
    subject = cycle.subjects.get(person__name=name)
    return {(invitation.group, invitation.rater_person.name) for invitation in subject.invitations.all()}


def test_peers_share_the_subjects_manager_and_skip_levels_are_not_peers(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    # B reports to A, A reports to C: C is B's skip-level boss, B is C's skip-level report.
    cycle = cycle_build(team)
    assert _raters(cycle, "Ann") == {(Group.SELF, "Ann"), (Group.MANAGER, "Mid One"), (Group.PEER, "Ben")}
    lead = _raters(cycle, "Lead")
    assert lead == {(Group.SELF, "Lead"), (Group.DIRECT_REPORT, "Mid One"), (Group.DIRECT_REPORT, "Mid Two")}
    # nobody is asked to rate a skip-level boss or report, in any role
    for name, skip_levels in (("Ann", {"Lead"}), ("Lead", {"Ann", "Ben", "Cat", "Dan"})):
        assert not {rater for _, rater in _raters(cycle, name)} & skip_levels


def test_in_a_team_without_reporting_lines_every_other_member_is_a_peer(
    manager: Any, cycle_build: Callable[..., Cycle]
) -> None:
    team = TeamFactory(manager=manager)
    for name in ("Ava", "Bo", "Cy", "Di"):
        PersonFactory(team=team, name=name, email=f"{name.lower()}@flat.test")
    cycle = cycle_build(team)
    assert _raters(cycle, "Ava") == {(Group.SELF, "Ava"), (Group.PEER, "Bo"), (Group.PEER, "Cy"), (Group.PEER, "Di")}


def test_the_invitation_names_each_role_as_the_reporting_lines_say(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    from django.core import mail

    cycle = cycle_build(team, launch=True)
    send_queued()
    (lead_mail,) = [message for message in mail.outbox if message.to == [person(team, "Lead").email]]
    assert "- Mid One, as their manager" in lead_mail.body
    assert "Ann" not in lead_mail.body  # a skip-level report is not rated by default
    (ann_mail,) = [message for message in mail.outbox if message.to == [person(team, "Ann").email]]
    assert "- Ben, as a peer" in ann_mail.body and "Mid One" in ann_mail.body
    assert "Cat" not in ann_mail.body
    assert cycle.status == Cycle.Status.OPEN


def test_groups_short_of_k_are_listed_per_subject_and_group(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    cycle = cycle_build(team)
    risks = {risk.name: risk for risk in selectors.subjects_short_of_k(cycle=cycle)}
    # Mid One: 1 peer and 2 direct reports: each group short, the pool of 3 reaches k
    mid = risks["Mid One"]
    assert {(group.group, group.invited) for group in mid.groups} == {(Group.PEER, 1), (Group.DIRECT_REPORT, 2)}
    assert mid.pool_short is False
    # Ann: one peer only
    assert risks["Ann"].pool_short is True and risks["Ann"].anonymous_invited == 1
    # adding two outside raters to Ann still leaves the group of one peer short
    ann = cycle.subjects.get(person__name="Ann")
    for address in ("x@out.test", "y@out.test"):
        services.rater_add(cycle=cycle, subject=ann, email=address, group=Group.OUTSIDE)
    ann_risk = next(risk for risk in selectors.subjects_short_of_k(cycle=cycle) if risk.name == "Ann")
    assert {(group.group, group.invited) for group in ann_risk.groups} == {(Group.PEER, 1), (Group.OUTSIDE, 2)}
    assert ann_risk.pool_short is False
    listed = len(selectors.subjects_short_of_k(cycle=cycle))
    assert selectors.cycles_at_risk_count(cycles=[cycle])[cycle.pk] == listed
    # the count the paged cycle page shows, made in the database, agrees with the list
    assert selectors.subjects_at_risk_count(cycle=cycle) == listed
    first = list(cycle.subjects.order_by("person__name", "id").values_list("id", flat=True)[:3])
    assert {risk.subject_id for risk in selectors.subjects_short_of_k(cycle=cycle, subject_ids=first)} <= set(first)


def test_a_subject_with_k_in_every_group_is_not_at_risk(manager: Any, cycle_build: Callable[..., Cycle]) -> None:
    team = TeamFactory(manager=manager)
    for name in ("Ava", "Bo", "Cy", "Di"):
        PersonFactory(team=team, name=name, email=f"{name.lower()}@flat.test")
    cycle = cycle_build(team)
    assert selectors.subjects_short_of_k(cycle=cycle) == []
    assert selectors.cycles_at_risk_count(cycles=[cycle]) == {cycle.pk: 0}
    assert selectors.subjects_at_risk_count(cycle=cycle) == 0


def test_the_draft_and_the_cycle_list_warn_before_launch(
    signed_in: Client, team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team)
    at_risk = len(selectors.subjects_short_of_k(cycle=cycle))
    assert at_risk > 0
    detail = signed_in.get(f"/cycles/{cycle.pk}/").content.decode()
    assert f"{at_risk} subjects with fewer than 3 anonymous raters in a group" in detail
    assert "Mid One: peers 1 invited, direct reports 2 invited.</li>" in detail
    assert "Ann: peers 1 invited; only 1 anonymous rater in all — the report will show self and manager only." in detail
    raters = signed_in.get(f"/cycles/{cycle.pk}/raters/").content.decode()
    assert "Direct reports: 2 invited, fewer than 3" in raters
    listing = signed_in.get("/cycles/").content.decode()
    assert f"{at_risk} at risk" in listing


def test_a_person_already_asked_about_a_subject_is_not_asked_again_at_another_address(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from surveys.models import Invitation

    # given: a peer is asked about Ann by default; the peer's address then changes
    cycle = cycle_build(team)
    ann = cycle.subjects.get(person__name="Ann")
    asked = ann.invitations.filter(group=Group.PEER, rater_person__isnull=False).select_related("rater_person")[0]
    cat = asked.rater_person
    assert cat is not None
    services.person_update(person=cat, name=cat.name, email="cat.new@example.test", reports_to=cat.reports_to)
    # when: the manager adds the new address for Ann
    with pytest.raises(ValidationError) as refused:
        services.rater_add(cycle=cycle, subject=ann, email="cat.new@example.test", group=Group.PEER)
    # then: refused, naming where the peer is asked already; they answer once
    assert refused.value.message_dict["email"] == [f"{cat.name} is already asked to rate Ann, at {asked.rater_email}."]
    assert ann.invitations.filter(rater_person=cat).count() == 1
    # and the database holds it whatever writes the row
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            cycle=cycle, subject=ann, group=Group.PEER, rater_email="cat.other@example.test", rater_person=cat
        )
