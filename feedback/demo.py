"""Plausible answers for the demo cycle, submitted through the same service as real raters."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from feedback.selectors import questionnaire_dimensions
from feedback.services import SurveyNotOpen, response_submit
from surveys.models import Cycle, Dimension, Group, Invitation, Side

# (management mean, leadership mean): the subjects of a cycle take these in turn, so a
# demo shows every quadrant, including a clear imbalance to either side.
PROFILES: tuple[tuple[float, float], ...] = (
    (4.3, 2.5),  # strong management only: bureaucracy risk
    (2.6, 4.2),  # strong leadership only: chaos risk
    (4.1, 4.0),  # strong on both
    (3.0, 3.1),  # developing on both
)
CANT_SAY_SHARE = 0.08
COMMENT_SHARE = 0.4

COMMENTS: dict[str, tuple[str, ...]] = {
    Side.MANAGEMENT: (
        "Plans are clear and realistic; I always know what comes first this week.",
        "Deadlines slip because nobody checks progress until the end.",
        "Very good at splitting big projects into steps with owners.",
        "Budgets are tracked closely, sometimes so closely it slows us down.",
        "It is not always clear who is responsible for what.",
    ),
    Side.LEADERSHIP: (
        "Explains where we are heading and why it matters.",
        "I would like to hear more about the bigger picture behind our work.",
        "Gets people excited about change, even when it is hard.",
        "The direction changes often and the reasons are not explained.",
        "Listens to the team before deciding where to go next.",
    ),
    "keep_doing": (
        "The weekly planning session.",
        "Asking for our view before big decisions.",
        "Celebrating what the team delivers.",
        "Following up on problems quickly.",
    ),
    "start_doing": (
        "Share the long-term plan with the whole team.",
        "Delegate more and trust people with decisions.",
        "Check progress earlier, not only at the deadline.",
        "Give more feedback, good and bad.",
    ),
}


def _rating(rng: random.Random, mean: float) -> int | None:
    if rng.random() < CANT_SAY_SHARE:
        return None
    return max(1, min(5, round(rng.gauss(mean, 0.6))))


def _answers(
    rng: random.Random, *, profile: tuple[float, float], group: str, dimensions: Sequence[Dimension]
) -> dict[str, Any]:
    # Raters differ in how generous they are; people tend to rate themselves higher.
    generosity = rng.gauss(0.0, 0.35) + (0.4 if group == Group.SELF else 0.0)
    side_mean = {Side.MANAGEMENT: profile[0], Side.LEADERSHIP: profile[1]}
    ratings: dict[str, int | None] = {}
    for dimension in dimensions:
        mean = side_mean[Side(dimension.side)] + generosity + rng.gauss(0.0, 0.25)
        for item in dimension.items.all():
            ratings[item.code] = _rating(rng, mean)
    comments = {name: rng.choice(texts) if rng.random() < COMMENT_SHARE else "" for name, texts in COMMENTS.items()}
    return {"ratings": ratings, "comments": comments}


def demo_answers_seed(*, cycle: Cycle, share: float, seed: int = 0) -> int:
    """Answer ``share`` (0–1) of the cycle's open invitations with plausible answers; returns how many."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must be between 0 and 1.")
    rng = random.Random(seed)  # noqa: S311 — a seeded generator makes the demo reproducible; nothing secret comes from it
    invitations = list(
        Invitation.objects.filter(cycle=cycle, status=Invitation.Status.OPEN)
        .order_by("pk")
        .values_list("pk", "subject_id", "group")
    )
    subject_ids = sorted({subject_id for _, subject_id, _ in invitations})
    profiles = {subject_id: PROFILES[index % len(PROFILES)] for index, subject_id in enumerate(subject_ids)}
    dimensions = questionnaire_dimensions(questionnaire_id=cycle.questionnaire_id)
    submitted = 0
    for invitation_id, subject_id, group in rng.sample(invitations, round(len(invitations) * share)):
        answers = _answers(rng, profile=profiles[subject_id], group=group, dimensions=dimensions)
        try:
            response_submit(invitation_id=invitation_id, answers=answers)
        except SurveyNotOpen:
            continue  # answered or closed since the list was read
        submitted += 1
    return submitted
