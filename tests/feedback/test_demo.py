from __future__ import annotations

from statistics import mean

import pytest

from feedback.demo import demo_answers_seed
from feedback.models import Response
from feedback.services import answers_unseal
from surveys.models import Cycle, Group, Invitation, Side
from tests.factories import InvitationFactory, SubjectFactory


def _cycle_with_raters(cycle: Cycle, subjects: int = 4, raters: int = 6) -> list[Invitation]:
    groups = [Group.SELF, Group.MANAGER, Group.PEER, Group.PEER, Group.DIRECT_REPORT, Group.OUTSIDE]
    invitations = []
    for _ in range(subjects):
        subject = SubjectFactory(cycle=cycle)
        invitations += [
            InvitationFactory(subject=subject, group=groups[n % len(groups)], status=Invitation.Status.OPEN)
            for n in range(raters)
        ]
    return invitations


def _side_means(response: Response, cycle: Cycle) -> dict[str, float]:
    sides: dict[str, list[int]] = {Side.MANAGEMENT: [], Side.LEADERSHIP: []}
    for dimension in cycle.questionnaire.dimensions.prefetch_related("items"):
        for item in dimension.items.all():
            value = response.ratings[item.code]
            if value is not None:
                sides[dimension.side].append(value)
    return {side: mean(values) for side, values in sides.items()}


def test_demo_answers_the_share_asked_for_through_the_real_service(cycle: Cycle) -> None:
    invitations = _cycle_with_raters(cycle)
    submitted = demo_answers_seed(cycle=cycle, share=0.75, seed=7)
    assert submitted == 18 == round(len(invitations) * 0.75)
    assert answers_unseal(cycle_id=cycle.pk) == 18
    assert Response.objects.filter(cycle=cycle).count() == 18
    assert Invitation.objects.filter(cycle=cycle, status=Invitation.Status.COMPLETED).count() == 18
    assert Invitation.objects.filter(cycle=cycle, status=Invitation.Status.OPEN).count() == 6


def test_demo_answers_are_plausible_and_varied(cycle: Cycle) -> None:
    _cycle_with_raters(cycle)
    demo_answers_seed(cycle=cycle, share=1.0, seed=3)
    answers_unseal(cycle_id=cycle.pk)
    responses = list(Response.objects.filter(cycle=cycle))
    values = [value for response in responses for value in response.ratings.values()]
    assert None in values  # some "can't say"
    assert {1, 2, 3, 4, 5} >= {value for value in values if value is not None}
    assert len({value for value in values if value is not None}) >= 4
    for side in ("management", "leadership", "keep_doing", "start_doing"):
        assert any(response.comments[side] for response in responses), side
    assert len({str(response.ratings) for response in responses}) == len(responses)


def test_some_people_show_a_clear_imbalance_between_the_sides(cycle: Cycle) -> None:
    _cycle_with_raters(cycle)
    demo_answers_seed(cycle=cycle, share=1.0)
    answers_unseal(cycle_id=cycle.pk)
    balances = []
    for subject in cycle.subjects.all():
        others = [_side_means(r, cycle) for r in Response.objects.filter(subject=subject).exclude(group=Group.SELF)]
        balances.append(mean(m[Side.LEADERSHIP] for m in others) - mean(m[Side.MANAGEMENT] for m in others))
    assert min(balances) < -1.0  # strong management only
    assert max(balances) > 1.0  # strong leadership only
    assert any(abs(balance) < 0.5 for balance in balances)  # balanced


def test_the_same_seed_gives_the_same_answers(cycle: Cycle) -> None:
    _cycle_with_raters(cycle, subjects=1)
    demo_answers_seed(cycle=cycle, share=0.5, seed=11)
    answers_unseal(cycle_id=cycle.pk)
    first = sorted(str(r.ratings) for r in Response.objects.all())
    Response.objects.all().delete()
    Invitation.objects.update(status=Invitation.Status.OPEN)
    demo_answers_seed(cycle=cycle, share=0.5, seed=11)
    answers_unseal(cycle_id=cycle.pk)
    assert sorted(str(r.ratings) for r in Response.objects.all()) == first


def test_only_open_invitations_are_answered_and_share_is_checked(cycle: Cycle) -> None:
    invitations = _cycle_with_raters(cycle, subjects=1)
    Invitation.objects.filter(pk=invitations[0].pk).update(status=Invitation.Status.DECLINED)
    assert demo_answers_seed(cycle=cycle, share=1.0) == 5
    assert demo_answers_seed(cycle=cycle, share=1.0) == 0
    with pytest.raises(ValueError, match="share"):
        demo_answers_seed(cycle=cycle, share=1.5)
