from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from surveys import services
from surveys.models import Cycle, Group, Invitation, Team
from tests.factories import PersonFactory, TeamFactory, default_questionnaire
from tests.surveys.helpers import person

pytestmark = pytest.mark.django_db


def test_cycle_create_defaults(cycle: Cycle, team: Team) -> None:
    assert cycle.status == Cycle.Status.DRAFT
    assert cycle.anonymity_min == 3
    assert cycle.questionnaire == default_questionnaire()
    assert set(cycle.subjects.values_list("person__name", flat=True)) == set(team.people.values_list("name", flat=True))


def test_cycle_for_some_members_only(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    cycle = cycle_build(team, people=[person(team, "Ann"), person(team, "Cat")])
    assert sorted(cycle.subjects.values_list("person__name", flat=True)) == ["Ann", "Cat"]
    # raters still come from the whole team: Ben and Dan are no subjects, but peers
    assert cycle.invitations.filter(
        subject__person__name="Ann", group=Group.PEER, rater_email__startswith="ben."
    ).exists()
    assert cycle.invitations.filter(
        subject__person__name="Cat", group=Group.PEER, rater_email__startswith="dan."
    ).exists()


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"name": "  "}, "name", "Give the cycle a name."),
        ({"deadline": "past"}, "deadline", "The deadline must be in the future."),
        ({"anonymity_min": 1}, "anonymity_min", "The anonymity minimum can never be below 2."),
        ({"anonymity_min": 4, "comment_min": 3}, "comment_min", "cannot be below the anonymity minimum"),
        ({"nomination_min": 5, "nomination_max": 4}, "nomination_max", "cannot be below the minimum"),
        ({"reminder_days_before": 61}, "reminder_days_before", "between 0 and 60"),
        # Values beyond the small-integer columns get a field error, not a database error.
        ({"anonymity_min": 99999}, "anonymity_min", "can be at most 100"),
        ({"anonymity_min": 3, "comment_min": 99999}, "comment_min", "can be at most 100"),
        ({"nomination_min": 99999, "nomination_max": 99999}, "nomination_min", "between 0 and 50"),
        ({"nomination_max": 99999}, "nomination_max", "between 1 and 50"),
        ({"nomination_min": -1}, "nomination_min", "between 0 and 50"),
        ({"reminder_days_before": 99999}, "reminder_days_before", "between 0 and 60"),
        ({"people": []}, "subjects", "at least one person"),
        ({"people": "stranger"}, "subjects", "member of the cycle's team"),
    ],
)
def test_cycle_create_rejects_bad_settings(
    options: dict[str, Any], field: str, message: str, team: Team, cycle_build: Callable[..., Cycle], manager: Any
) -> None:
    if options.get("deadline") == "past":
        options["deadline"] = timezone.now() - timedelta(hours=1)
    if options.get("people") == "stranger":
        options["people"] = [PersonFactory(team=TeamFactory(manager=manager))]
    with pytest.raises(ValidationError) as error:
        cycle_build(team, **options)
    assert message in error.value.message_dict[field][0]
    assert not Cycle.objects.exists()


def test_draft_subjects_can_change_and_new_ones_get_default_raters(cycle: Cycle, team: Team) -> None:
    services.cycle_update(cycle=cycle, changes={"subjects": [person(team, "Ann"), person(team, "Ben")]})
    assert sorted(cycle.subjects.values_list("person__name", flat=True)) == ["Ann", "Ben"]
    assert not cycle.invitations.exclude(subject__person__name__in=["Ann", "Ben"]).exists()
    services.cycle_update(cycle=cycle, changes={"subjects": [person(team, "Ann"), person(team, "Cat")]})
    assert (
        cycle.invitations.filter(subject__person__name="Cat", group=Group.MANAGER).get().rater_person.name == "Mid Two"
    )


def test_launched_cycle_freezes_questionnaire_and_subjects(open_cycle: Cycle, team: Team) -> None:
    with pytest.raises(ValidationError) as error:
        services.cycle_update(
            cycle=open_cycle, changes={"questionnaire": default_questionnaire(), "subjects": [person(team, "Ann")]}
        )
    assert set(error.value.message_dict) == {"questionnaire", "subjects"}
    # while the deadline can move and k can go up
    new_deadline = timezone.now() + timedelta(days=30)
    services.cycle_update(cycle=open_cycle, changes={"deadline": new_deadline, "anonymity_min": 4})
    open_cycle.refresh_from_db()
    assert (open_cycle.deadline, open_cycle.anonymity_min) == (new_deadline, 4)


def test_k_can_be_lowered_before_launch_only(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    draft = cycle_build(team, name="Draft", anonymity_min=4)
    services.cycle_update(cycle=draft, changes={"anonymity_min": 2})
    assert Cycle.objects.get(pk=draft.pk).anonymity_min == 2
    launched = cycle_build(team, launch=True, name="Launched", anonymity_min=4)
    with pytest.raises(ValidationError) as error:
        services.cycle_update(cycle=launched, changes={"anonymity_min": 3})
    assert "cannot be lowered once the cycle is launched" in error.value.message_dict["anonymity_min"][0]
    services.cycle_update(cycle=launched, changes={"anonymity_min": 5})
    assert Cycle.objects.get(pk=launched.pk).anonymity_min == 5


def _somebody_answers(cycle: Cycle) -> None:
    invitation = cycle.invitations.filter(group=Group.PEER).first()
    assert invitation is not None
    Invitation.objects.filter(pk=invitation.pk).update(status=Invitation.Status.COMPLETED)


@pytest.mark.parametrize(
    ("start", "changes", "field"),
    [
        ({"comment_min": 5}, {"comment_min": 4}, "comment_min"),
        # clearing the comment minimum lowers the comment threshold to k
        ({"comment_min": 5}, {"comment_min": None}, "comment_min"),
        ({"comment_min": 5}, {"anonymity_min": 4, "comment_min": None}, "comment_min"),
        # without a comment minimum, comments follow k, which cannot go down either
        ({"anonymity_min": 4}, {"anonymity_min": 3}, "anonymity_min"),
    ],
)
def test_the_minimums_cannot_be_lowered_once_launched_whether_or_not_anybody_answered(
    team: Team,
    cycle_build: Callable[..., Cycle],
    start: dict[str, Any],
    changes: dict[str, Any],
    field: str,
) -> None:
    # given: before launch, the same change goes through
    draft = cycle_build(team, name="Draft", **start)
    services.cycle_update(cycle=draft, changes=changes)
    # A refusal that depended on whether anybody had answered would tell the manager
    # that an anonymous rater had: it is refused with nobody answered and after answers.
    for number, answered in enumerate((False, True)):
        launched = cycle_build(team, launch=True, name=f"Launched {number}", **start)
        if answered:
            _somebody_answers(launched)
        # when
        with pytest.raises(ValidationError) as error:
            services.cycle_update(cycle=launched, changes=changes)
        # then: the field is named, with the same words both times, and nothing changed
        assert set(error.value.message_dict) == {field}
        assert "once the cycle is launched" in error.value.message_dict[field][0]
        stored = Cycle.objects.get(pk=launched.pk)
        assert (stored.anonymity_min, stored.comment_min) == (launched.anonymity_min, launched.comment_min)


def test_the_comment_threshold_can_still_go_up_or_stay_after_answers(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team, launch=True, comment_min=5)
    _somebody_answers(cycle)
    services.cycle_update(cycle=cycle, changes={"comment_min": 6})
    # k raised to the old comment threshold: clearing the comment minimum keeps comments at 6
    services.cycle_update(cycle=cycle, changes={"anonymity_min": 6, "comment_min": None})
    stored = Cycle.objects.get(pk=cycle.pk)
    assert (stored.anonymity_min, stored.comment_min, stored.comment_threshold) == (6, None, 6)


def test_update_refuses_values_too_large_for_a_cycle(cycle: Cycle) -> None:
    with pytest.raises(ValidationError) as error:
        services.cycle_update(cycle=cycle, changes={"anonymity_min": 70000, "nomination_max": 51})
    assert error.value.message_dict == {
        "anonymity_min": ["The anonymity minimum can be at most 100."],
        "nomination_max": ["Choose between 1 and 50 raters per group."],
    }
    assert Cycle.objects.get(pk=cycle.pk).anonymity_min == 3


def test_k_is_never_below_two_even_on_update(cycle: Cycle) -> None:
    with pytest.raises(ValidationError) as error:
        services.cycle_update(cycle=cycle, changes={"anonymity_min": 1})
    assert "anonymity_min" in error.value.message_dict


def test_closed_cycle_cannot_change(open_cycle: Cycle) -> None:
    services.cycle_close(cycle=open_cycle, by=None)
    with pytest.raises(ValidationError) as error:
        services.cycle_update(cycle=open_cycle, changes={"name": "Renamed"})
    assert "status" in error.value.message_dict


def test_only_a_draft_can_be_deleted(cycle: Cycle, open_cycle: Cycle) -> None:
    with pytest.raises(ValidationError):
        services.cycle_delete(cycle=open_cycle)
    services.cycle_delete(cycle=cycle)
    assert list(Cycle.objects.all()) == [open_cycle]


# --- Raters ---------------------------------------------------------------------------------


def test_outside_rater_is_added_lower_cased(cycle: Cycle) -> None:
    subject = cycle.subjects.get(person__name="Ann")
    invitation = services.rater_add(
        cycle=cycle, subject=subject, email="Client@Partner.TEST", name="A client", group=Group.OUTSIDE
    )
    assert (invitation.rater_email, invitation.status) == ("client@partner.test", Invitation.Status.DRAFT)


@pytest.mark.parametrize(
    ("email", "group", "field", "message"),
    [
        ("nope", Group.OUTSIDE, "email", "not a valid email address"),
        ("someone@example.test", "boss", "group", "Choose one of"),
        ("someone@example.test", Group.SELF, "email", "subject's own email"),
        ("ann", Group.PEER, "group", "self group only"),
        ("new.boss@example.test", Group.MANAGER, "group", "already has a manager rater"),
        ("ben", Group.OUTSIDE, "email", "already asked to rate Ann"),
    ],
)
def test_rater_add_rejects_bad_input(
    cycle: Cycle, team: Team, email: str, group: str, field: str, message: str
) -> None:
    if email in ("ann", "ben"):
        email = person(team, email.title()).email.upper()
    subject = cycle.subjects.select_related("person").get(person__name="Ann")
    before = cycle.invitations.count()
    with pytest.raises(ValidationError) as error:
        services.rater_add(cycle=cycle, subject=subject, email=email, group=group)
    assert message in error.value.message_dict[field][0]
    assert cycle.invitations.count() == before


def test_one_invitation_per_cycle_subject_and_rater_is_a_database_rule(cycle: Cycle) -> None:
    from django.db import IntegrityError, transaction

    existing = cycle.invitations.first()
    assert existing is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            cycle=cycle, subject=existing.subject, group=Group.OUTSIDE, rater_email=existing.rater_email
        )


def test_raters_cannot_change_after_launch(open_cycle: Cycle) -> None:
    subject = open_cycle.subjects.get(person__name="Ann")
    with pytest.raises(ValidationError):
        services.rater_add(cycle=open_cycle, subject=subject, email="late@example.test", group=Group.OUTSIDE)
    invitation = open_cycle.invitations.first()
    assert invitation is not None
    with pytest.raises(ValidationError):
        services.rater_remove(cycle=open_cycle, invitation=invitation)
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_rater_remove_before_launch(cycle: Cycle) -> None:
    invitation = cycle.invitations.filter(group=Group.PEER).first()
    assert invitation is not None
    services.rater_remove(cycle=cycle, invitation=invitation)
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
