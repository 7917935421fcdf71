"""Balance report scoring: the safe base of per-item figures, and everything computed from it.

Pure functions, no database. Aggregation is item first (PRODUCT.md, "Scores"):

1. ``safe_base_build`` applies the anonymity rules to every item on its own: for each
   item and each label (self, manager, an anonymous group, the smaller groups combined,
   Others) it keeps the figure only where the rules allow it, with the raters behind it.
   A "can't say" removes that one answer and nothing else.
2. Every other figure — dimension scores per label, the indices, balance, quadrant,
   self–others gaps, Kotter's pairs, highest and lowest items, the team view's point, the
   trend — is computed by the functions below from ``SafeBase`` alone. None of them
   sees a rater's answers: ``SafeBase`` hands out only item figures that passed. A new
   figure written against it cannot bypass the rules.

Why this holds the rule "no combination of figures isolates fewer than k anonymous
raters": on each item, the anonymous rater sets behind the shown figures (groups, the
combined group) are disjoint and each has at least k raters, and Others is exactly their
union plus the identified manager. Any linear combination of item figures therefore
weighs whole sets of at least k raters, and every derived figure is a linear combination
of item figures. Nothing but means is ever shown: no spread, minimum, maximum or
distribution of anonymous raters; agreement is a flag, given only where at least
max(k, 5) anonymous raters stand behind a dimension.

Values are exact fractions until ``report_data`` rounds them, once, to one decimal
(half away from zero) for the stored JSON; thresholds use the exact values, and no
unrounded value is ever stored.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from surveys.vocabulary import (
    ANONYMOUS_GROUPS,
    BUREAUCRACY_RISK,
    CHAOS_RISK,
    COMBINED,
    COMMENT_QUESTIONS,
    COMMENT_TITLES,
    COUNTED_ANONYMOUS_GROUPS,
    DEVELOPING_BOTH,
    FIGURE_LABELS,
    FIGURE_ORDER,
    IDENTIFIED_GROUPS,
    LEADERSHIP,
    MANAGEMENT,
    MANAGER,
    OTHERS,
    QUADRANT_LABELS,
    SELF,
    SIDES,
    SMALL_GROUPS,
    STORED_ANONYMOUS_GROUPS,
    STRONG_BOTH,
)

# The stored JSON's shape; a report of another format is never compared with (trend).
REPORT_FORMAT = 2

# |leadership − management| below this reads as balanced.
BALANCE_MARGIN = Fraction(1, 2)
# self − Others at or beyond ±0.5 is a blind spot / hidden strength.
GAP_MARGIN = Fraction(1, 2)
# Agreement is judged only from this many anonymous raters up (or k, if larger): the
# flag is one bit about their spread, and from fewer raters even one bit says too much.
AGREEMENT_MIN_RATERS = 5
# A population standard deviation of the raters' own dimension scores at or above one
# whole step of the 1–5 scale: a typical rater then sits a full answer away from the
# mean, so the mean hides views that really differ.
DIVIDED_SPREAD = Fraction(1)
DIVIDED = "divided"
CONSISTENT = "consistent"
# How many items are listed as highest and lowest.
ITEMS_LISTED = 5

# Set only by the adversary tests, to prove that their attacks find a leak when there is
# one: "sd" adds the Others standard deviation to each dimension (the old report's
# number), "fold_dropped" counts dropped groups into Others. Never set in the product.
_TEST_ONLY_LEAK: str | None = None


# --- Input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterAnswers:
    """One rater's response: group, {item code: 1..5 or None}, {question: text}."""

    group: str
    ratings: Mapping[str, object]
    comments: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemSpec:
    code: str
    text: str


@dataclass(frozen=True)
class DimensionSpec:
    key: str
    name: str
    side: str
    pair: int
    items: tuple[ItemSpec, ...]


@dataclass(frozen=True)
class Rules:
    k: int
    comment_min: int
    quadrant_cut: Fraction

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError("k must be at least 2")
        if self.comment_min < self.k:
            raise ValueError("the comment minimum must not be below k")

    @property
    def agreement_min(self) -> int:
        return max(self.k, AGREEMENT_MIN_RATERS)


def rating_value(value: object) -> int | None:
    """A stored rating as a number, or None for "can't say" (and anything that is not 1..5)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return value
    return None


def _mean(values: Sequence[Fraction]) -> Fraction:
    return sum(values, Fraction(0)) / len(values)


# --- The anonymity rules, per item ---------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which raters one item may show, and under which label.

    ``labels`` maps a label (self, manager, an anonymous group, ``combined``, ``others``)
    to the raters behind its figure; ``dropped`` names the anonymous groups that answered
    the item but count in none of its figures.
    """

    labels: dict[str, frozenset[int]]
    dropped: tuple[str, ...]


def anonymity_filter(*, groups: Sequence[str], answered: Sequence[bool], k: int) -> Selection:
    """The anonymity rules for one item.

    ``groups[i]`` is rater i's group and ``answered[i]`` whether rater i answered the
    item (a "can't say" does not).

    - Self and manager are identified and shown as such.
    - An anonymous group is shown on its own when at least k of its raters answered.
    - The anonymous groups below k are combined into one figure when together they reach
      k (none of them is then shown on its own); otherwise they are dropped from every
      figure of the item — never folded into Others, where Others minus the shown groups
      would isolate them.
    - Others = manager + every shown anonymous rater (never self), and only when at least
      one anonymous figure stands behind it: with none it would merely repeat the
      manager's answer under a name that promises more people.
    """
    if len(groups) != len(answered):
        raise ValueError("groups and answered must have the same length")
    members: dict[str, set[int]] = {}
    for index, (group, did_answer) in enumerate(zip(groups, answered, strict=True)):
        if did_answer:
            members.setdefault(group, set()).add(index)

    labels: dict[str, frozenset[int]] = {}
    for group in IDENTIFIED_GROUPS:
        if members.get(group):
            labels[group] = frozenset(members[group])
    small: list[str] = []
    for group in ANONYMOUS_GROUPS:
        raters = members.get(group, set())
        if len(raters) >= k:
            labels[group] = frozenset(raters)
        elif raters:
            small.append(group)
    # Answers stored as "smaller groups" came from groups with fewer than k answers in
    # all: small on every item, never shown on their own.
    if members.get(SMALL_GROUPS):
        small.append(SMALL_GROUPS)
    dropped: tuple[str, ...] = ()
    pool = frozenset(index for group in small for index in members[group])
    if len(pool) >= k:
        labels[COMBINED] = pool
    else:
        dropped = tuple(small)
    # Outside raters the subject nominated count in no figure: the subject reads the
    # released report, and k-1 of those addresses could be their own — any figure with one
    # real rater among them, on its own or pooled with anyone, minus the answers the subject
    # knows, would be that rater's answer. They are not "dropped" either: the report says
    # they count nowhere from the invitations (``report_notices``), never from their answers.
    # Every shown anonymous set has at least k raters, so a non-empty union does too.
    anonymous = frozenset(index for label in (*ANONYMOUS_GROUPS, COMBINED) for index in labels.get(label, ()))
    if _TEST_ONLY_LEAK == "fold_dropped":
        anonymous |= pool
    if anonymous:
        labels[OTHERS] = anonymous | labels.get(MANAGER, frozenset())
    return Selection(labels=labels, dropped=dropped)


# --- The safe base -------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFigure:
    """One label's score on one item: the mean of the answers of the raters behind it."""

    code: str
    label: str
    score: Fraction
    raters: frozenset[int]

    @property
    def n(self) -> int:
        return len(self.raters)


@dataclass(frozen=True)
class SafeBase:
    """The item figures that passed the anonymity rules: the only source of every score.

    ``figures`` maps (item code, label) to its figure. ``answers`` keeps, for the raters
    behind an Others item figure, their answer to that item — used for one thing only,
    the agreement flag, which is a flag and never a number. ``dropped`` names, per item,
    the anonymous groups that answered but count nowhere.
    """

    rules: Rules
    figures: Mapping[tuple[str, str], ItemFigure]
    answers: Mapping[tuple[str, int], int]
    dropped: Mapping[str, tuple[str, ...]]
    anonymous: frozenset[int]

    def item(self, code: str, label: str) -> ItemFigure | None:
        return self.figures.get((code, label))


def safe_base_build(*, raters: Sequence[RaterAnswers], dimensions: Sequence[DimensionSpec], rules: Rules) -> SafeBase:
    """Apply the anonymity rules to every item; keep only the figures they allow."""
    groups = [rater.group for rater in raters]
    figures: dict[tuple[str, str], ItemFigure] = {}
    answers: dict[tuple[str, int], int] = {}
    dropped: dict[str, tuple[str, ...]] = {}
    for dimension in dimensions:
        for item in dimension.items:
            values = {
                index: value
                for index, rater in enumerate(raters)
                if (value := rating_value(rater.ratings.get(item.code))) is not None
            }
            selection = anonymity_filter(
                groups=groups, answered=[index in values for index in range(len(raters))], k=rules.k
            )
            for label, behind in selection.labels.items():
                figures[(item.code, label)] = ItemFigure(
                    code=item.code,
                    label=label,
                    score=_mean([Fraction(values[index]) for index in sorted(behind)]),
                    raters=behind,
                )
            for index in selection.labels.get(OTHERS, ()):
                answers[(item.code, index)] = values[index]
            if selection.dropped:
                dropped[item.code] = selection.dropped
    # The raters the agreement flag may rest on: nominated outside raters could be the
    # subject's own addresses, and a flag over them and one real rater would describe that one.
    anonymous = frozenset(index for index, group in enumerate(groups) if group in COUNTED_ANONYMOUS_GROUPS)
    return SafeBase(
        rules=rules,
        figures=figures,
        answers=answers,
        dropped=dropped,
        anonymous=anonymous,
    )


# --- Figures computed from the safe base ---------------------------------------------


@dataclass(frozen=True)
class Score:
    """A score computed from item figures: its exact value and every rater it rests on."""

    value: Fraction
    raters: frozenset[int]

    @property
    def n(self) -> int:
        return len(self.raters)


def _mean_score(scores: Sequence[Score | ItemFigure]) -> Score:
    values = [score.value if isinstance(score, Score) else score.score for score in scores]
    return Score(value=_mean(values), raters=frozenset().union(*(score.raters for score in scores)))


def dimension_score(*, base: SafeBase, dimension: DimensionSpec, label: str) -> Score | None:
    """A label's dimension score: the mean of its item scores over the dimension's items.

    Each shown item weighs equally; an item the label has no figure for (too few answers,
    or only "can't say") is left out of the mean, not counted as anything.
    """
    present = [figure for item in dimension.items if (figure := base.item(item.code, label)) is not None]
    return _mean_score(present) if present else None


def agreement(*, base: SafeBase, dimension: DimensionSpec) -> str | None:
    """``divided`` or ``consistent`` for the anonymous raters behind the dimension's Others
    figures; ``None`` when fewer than max(k, 5) of them stand behind it."""
    own: dict[int, list[int]] = {}
    for item in dimension.items:
        figure = base.item(item.code, OTHERS)
        if figure is None:
            continue
        for index in figure.raters & base.anonymous:
            own.setdefault(index, []).append(base.answers[(item.code, index)])
    if len(own) < base.rules.agreement_min:
        return None
    # Exactly, as every threshold: in floats a spread of exactly one step can come out a
    # hair below it (six raters whose own means are 1, 1, 1, 7/5, 7/5 and 19/5).
    means = [_mean([Fraction(value) for value in values]) for values in own.values()]
    centre = _mean(means)
    variance = _mean([(mean - centre) ** 2 for mean in means])
    return DIVIDED if variance >= DIVIDED_SPREAD**2 else CONSISTENT


@dataclass(frozen=True)
class ItemResult:
    spec: ItemSpec
    dimension: DimensionSpec
    position: int
    others: ItemFigure | None


@dataclass(frozen=True)
class DimensionResult:
    spec: DimensionSpec
    labels: dict[str, Score]
    agreement: str | None
    items: tuple[ItemResult, ...]
    dropped: tuple[str, ...]

    @property
    def others(self) -> Score | None:
        return self.labels.get(OTHERS)

    @property
    def self_score(self) -> Score | None:
        return self.labels.get(SELF)

    @property
    def gap(self) -> Fraction | None:
        """Self − Others: positive when the person rates themself higher."""
        if self.others is None or self.self_score is None:
            return None
        return self.self_score.value - self.others.value


def dimension_result(*, base: SafeBase, dimension: DimensionSpec, first_position: int) -> DimensionResult:
    labels = {
        label: score
        for label in FIGURE_ORDER
        if (score := dimension_score(base=base, dimension=dimension, label=label)) is not None
    }
    items = tuple(
        ItemResult(
            spec=item, dimension=dimension, position=first_position + offset, others=base.item(item.code, OTHERS)
        )
        for offset, item in enumerate(dimension.items)
    )
    dropped = tuple(
        group
        for group in STORED_ANONYMOUS_GROUPS
        if any(group in base.dropped.get(item.code, ()) for item in dimension.items)
    )
    return DimensionResult(
        spec=dimension, labels=labels, agreement=agreement(base=base, dimension=dimension), items=items, dropped=dropped
    )


def side_index(*, dimensions: Sequence[DimensionResult], side: str, label: str) -> Score | None:
    """Management or leadership index: the mean of the side's dimension scores, only when
    the label has a score on every dimension of that side."""
    on_side = [result.labels.get(label) for result in dimensions if result.spec.side == side]
    if not on_side or any(score is None for score in on_side):
        return None
    return _mean_score([score for score in on_side if score is not None])


def quadrant_of(*, management: Fraction, leadership: Fraction, cut: Fraction) -> str:
    if management >= cut and leadership >= cut:
        return STRONG_BOTH
    if leadership >= cut:
        return CHAOS_RISK
    if management >= cut:
        return BUREAUCRACY_RISK
    return DEVELOPING_BOTH


def balance_label(balance: Fraction) -> str:
    if abs(balance) < BALANCE_MARGIN:
        return "balanced"
    return "leans leadership" if balance > 0 else "leans management"


def gap_flag(gap: Fraction) -> str | None:
    if gap >= GAP_MARGIN:
        return "blind_spot"
    if gap <= -GAP_MARGIN:
        return "hidden_strength"
    return None


GAP_LABELS = {"blind_spot": "Blind spot", "hidden_strength": "Hidden strength"}


def items_ranked(*, dimensions: Sequence[DimensionResult]) -> tuple[list[ItemResult], list[ItemResult]]:
    """The highest and the lowest Others item scores, each item listed once.

    Five of each when at least ten items have an Others score; with fewer, the higher
    half (rounded up) is "highest" and the rest "lowest".
    """
    shown = [item for result in dimensions for item in result.items if item.others is not None]

    def score(item: ItemResult) -> Fraction:
        assert item.others is not None
        return item.others.score

    descending = sorted(shown, key=lambda item: (-score(item), item.position))
    listed = min(ITEMS_LISTED, math.ceil(len(shown) / 2))
    highest = descending[:listed]
    rest = [item for item in descending if item not in highest]
    lowest = sorted(rest, key=lambda item: (score(item), item.position))[: min(ITEMS_LISTED, len(rest))]
    return highest, lowest


# --- Comments ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    question: str
    label: str | None
    text: str
    # Kept for the tests only; never stored.
    rater: int


def comments_filter(
    *, raters: Sequence[RaterAnswers], rules: Rules, rng: random.Random | None = None
) -> tuple[Comment, ...]:
    """The comments a report may quote, labelled and ordered so they reveal no one.

    Self and manager comments are identified and labelled. Anonymous comments appear only
    when the anonymous raters who responded reach the comment minimum. An anonymous group
    is named only when it reaches the comment minimum on its own; the rest are unlabelled,
    and if the unlabelled raters would be fewer than the minimum, no group is named at
    all — otherwise an unlabelled comment beside named ones would point at the one or two
    people outside the named groups. Anonymous comments are shuffled within each question
    and each question is shuffled on its own, so nothing (order, label, grouping) ties
    one rater's comments together across questions, or follows submission or storage.
    """
    rng = rng or random.SystemRandom()
    # Outside raters the subject nominated are quoted nowhere (their addresses could be the
    # subject's own, as in ``anonymity_filter``): an unlabelled comment of theirs beside
    # named groups, or among the subject's own, would be the one real rater's.
    responded: dict[str, int] = {}
    for rater in raters:
        if rater.group in COUNTED_ANONYMOUS_GROUPS:
            responded[rater.group] = responded.get(rater.group, 0) + 1
    pool = sum(responded.values())
    named = {group for group, count in responded.items() if count >= rules.comment_min and group in ANONYMOUS_GROUPS}
    unlabelled = pool - sum(responded[group] for group in named)
    if 0 < unlabelled < rules.comment_min:
        named = set()

    result: list[Comment] = []
    for question in COMMENT_QUESTIONS:
        identified: list[Comment] = []
        anonymous: list[Comment] = []
        for index, rater in enumerate(raters):
            text = rater.comments.get(question)
            if not isinstance(text, str) or not text.strip():
                continue
            if rater.group in IDENTIFIED_GROUPS:
                identified.append(Comment(question, FIGURE_LABELS[rater.group], text.strip(), index))
            elif rater.group in responded and pool >= rules.comment_min:
                label = FIGURE_LABELS[rater.group] if rater.group in named else None
                anonymous.append(Comment(question, label, text.strip(), index))
        identified.sort(key=lambda comment: FIGURE_ORDER.index(raters[comment.rater].group))
        rng.shuffle(anonymous)
        result.extend(identified)
        result.extend(anonymous)
    return tuple(result)


# --- The whole report ----------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    base: SafeBase
    dimensions: tuple[DimensionResult, ...]
    indices: dict[str, dict[str, Score]]
    comments: tuple[Comment, ...]
    anonymous_pool: int

    @property
    def rules(self) -> Rules:
        return self.base.rules

    def scores(self) -> Iterator[tuple[str, Score | ItemFigure]]:
        """Every score the report is made of, named, for the checks that guard anonymity."""
        for figure in self.base.figures.values():
            yield f"item:{figure.code}:{figure.label}", figure
        for dimension in self.dimensions:
            for label, score in dimension.labels.items():
                yield f"dimension:{dimension.spec.key}:{label}", score
        for source, by_side in self.indices.items():
            for side, score in by_side.items():
                yield f"index:{side}:{source}", score


def report_compute(
    *,
    raters: Sequence[RaterAnswers],
    dimensions: Sequence[DimensionSpec],
    rules: Rules,
    rng: random.Random | None = None,
) -> ReportResult:
    """One person's report: the safe base, then every figure computed from it alone."""
    base = safe_base_build(raters=raters, dimensions=dimensions, rules=rules)
    results: list[DimensionResult] = []
    position = 1
    for dimension in dimensions:
        results.append(dimension_result(base=base, dimension=dimension, first_position=position))
        position += len(dimension.items)
    indices: dict[str, dict[str, Score]] = {}
    for label in (SELF, OTHERS):
        by_side = {
            side: score
            for side in SIDES
            if (score := side_index(dimensions=results, side=side, label=label)) is not None
        }
        if len(by_side) == len(SIDES):
            indices[label] = by_side
    return ReportResult(
        base=base,
        dimensions=tuple(results),
        indices=indices,
        comments=comments_filter(raters=raters, rules=rules, rng=rng),
        anonymous_pool=sum(1 for rater in raters if rater.group in COUNTED_ANONYMOUS_GROUPS),
    )


def report_notices(*, result: ReportResult, nominated_outside: bool = False) -> list[str]:
    """What the reader must know about figures that are missing, stated truthfully.

    ``nominated_outside``: the subject nominated outside raters. Said from the invitations,
    never from the answers: the answers of those raters are stored only when k of them
    answered, and a notice that followed them would tell a subject who gave k − 1 addresses
    of their own whether the one real person answered.
    """
    rules = result.rules
    notices: list[str] = []
    nominated_notice = (
        "Outside raters this person nominated count in no score, and their comments are not quoted: an "
        "address the person gave could be one of their own."
    )
    if result.anonymous_pool < rules.k:
        notices.append(
            f"Fewer than {rules.k} peers, direct reports and outside raters answered, so this report shows "
            "self and manager scores only: any figure from so few anonymous raters could reveal who said what."
        )
        if nominated_outside:
            notices.append(nominated_notice)
        return notices
    if any(dimension.dropped for dimension in result.dimensions):
        # Never names the dropped group: "answers from direct reports are left out" would
        # tell the reader that the lone direct report answered at all.
        text = (
            f"Some ratings count in no score: on those questions fewer than {rules.k} people of a group "
            "answered, and they could not be combined with other small groups."
        )
        if any(comment.label is None for comment in result.comments):
            text += " Their written comments may still appear, without a group name, among the comments."
        notices.append(text)
    if nominated_outside:
        notices.append(nominated_notice)
    if not result.indices.get(OTHERS):
        notices.append(
            "There is no Others point on the balance plane: on at least one dimension too few anonymous "
            "raters answered for an Others score."
        )
    return notices


# --- The stored JSON -----------------------------------------------------------------


def one_decimal(value: Fraction) -> float:
    """Round half away from zero to one decimal — the only precision any score is stored in."""
    tenths = math.floor(abs(value) * 10 + Fraction(1, 2))
    return (tenths if value >= 0 else -tenths) / 10


def _score_json(score: Score | ItemFigure) -> dict[str, Any]:
    value = score.value if isinstance(score, Score) else score.score
    return {"score": one_decimal(value), "n": score.n}


def _pstdev_leak(base: SafeBase, dimension: DimensionSpec, others: Score) -> float:
    # The number the adversary tests must be able to exploit (see ``_TEST_ONLY_LEAK``):
    # the spread of the Others raters' own dimension scores, manager included.
    own: dict[int, list[int]] = {}
    for item in dimension.items:
        for index in others.raters:
            if (item.code, index) in base.answers:
                own.setdefault(index, []).append(base.answers[(item.code, index)])
    return round(statistics.pstdev(statistics.fmean(values) for values in own.values()), 2)


def _dimension_json(result: DimensionResult, base: SafeBase) -> dict[str, Any]:
    others = result.others
    gap = result.gap
    others_json: dict[str, Any] | None = None
    if others is not None:
        others_json = {**_score_json(others), "agreement": result.agreement}
        if _TEST_ONLY_LEAK == "sd":
            others_json["sd"] = _pstdev_leak(base, result.spec, others)
    return {
        "key": result.spec.key,
        "name": result.spec.name,
        "side": result.spec.side,
        "pair": result.spec.pair,
        "groups": [
            {"group": label, "label": FIGURE_LABELS[label], **_score_json(score)}
            for label, score in result.labels.items()
            if label != OTHERS
        ],
        "others": others_json,
        "self": None if result.self_score is None else _score_json(result.self_score),
        "gap": None
        if gap is None
        else {"value": one_decimal(gap), "flag": gap_flag(gap), "label": GAP_LABELS.get(gap_flag(gap) or "")},
        "items": [
            {
                "code": item.spec.code,
                "text": item.spec.text,
                "others": None if item.others is None else _score_json(item.others),
            }
            for item in result.items
        ],
    }


def _quadrant_json(by_side: Mapping[str, Score] | None, cut: Fraction) -> dict[str, str] | None:
    if not by_side:
        return None
    key = quadrant_of(management=by_side[MANAGEMENT].value, leadership=by_side[LEADERSHIP].value, cut=cut)
    return {"key": key, "label": QUADRANT_LABELS[key]}


def _pairs_json(result: ReportResult, dimensions_json: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    pairs: list[dict[str, Any]] = []
    for pair in sorted({dimension.spec.pair for dimension in result.dimensions}):
        sides = {d.spec.side: d for d in result.dimensions if d.spec.pair == pair}
        management, leadership = sides.get(MANAGEMENT), sides.get(LEADERSHIP)
        if management is None or leadership is None:
            continue
        gap = None
        if management.others is not None and leadership.others is not None:
            gap = one_decimal(leadership.others.value - management.others.value)
        pairs.append(
            {
                "pair": pair,
                "management": {"key": management.spec.key, "name": management.spec.name},
                "leadership": {"key": leadership.spec.key, "name": leadership.spec.name},
                "management_others": dimensions_json[management.spec.key]["others"],
                "leadership_others": dimensions_json[leadership.spec.key]["others"],
                "gap": gap,
            }
        )
    return pairs


def _item_json(item: ItemResult) -> dict[str, Any]:
    assert item.others is not None
    return {
        "code": item.spec.code,
        "text": item.spec.text,
        "dimension": item.dimension.name,
        "side": item.dimension.side,
        **_score_json(item.others),
    }


def report_data(
    *, result: ReportResult, previous: Mapping[str, Any] | None = None, nominated_outside: bool = False
) -> dict[str, Any]:
    """The JSON stored on the report: figures from the safe base only, one decimal, counts
    attached; ``nominated_outside`` as ``report_notices`` takes it."""
    rules = result.rules
    dimensions = [_dimension_json(dimension, result.base) for dimension in result.dimensions]
    by_key = {dimension["key"]: dimension for dimension in dimensions}
    others_index = result.indices.get(OTHERS)
    balance = None
    if others_index is not None:
        value = others_index[LEADERSHIP].value - others_index[MANAGEMENT].value
        balance = {"value": one_decimal(value), "label": balance_label(value)}
    highest, lowest = items_ranked(dimensions=result.dimensions)
    comments = []
    for question in COMMENT_QUESTIONS:
        entries = [{"label": c.label, "text": c.text} for c in result.comments if c.question == question]
        if entries:
            comments.append({"question": question, "title": COMMENT_TITLES[question], "entries": entries})
    data: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "k": rules.k,
        "comment_min": rules.comment_min,
        "agreement_min": rules.agreement_min,
        "quadrant_cut": float(rules.quadrant_cut),
        "anonymous_shown": any(dimension.others is not None for dimension in result.dimensions),
        "notices": report_notices(result=result, nominated_outside=nominated_outside),
        "dimensions": dimensions,
        "indices": {
            label: {side: _score_json(score) for side, score in by_side.items()}
            for label, by_side in result.indices.items()
        },
        "balance": balance,
        "quadrant": _quadrant_json(others_index, rules.quadrant_cut),
        "self_quadrant": _quadrant_json(result.indices.get(SELF), rules.quadrant_cut),
        "pairs": _pairs_json(result, by_key),
        "items": {
            "shown": sum(1 for d in result.dimensions for item in d.items if item.others is not None),
            "highest": [_item_json(item) for item in highest],
            "lowest": [_item_json(item) for item in lowest],
        },
        "comments": comments,
    }
    data["trend"] = trend_compute(current=data, previous=previous) if previous else None
    return data


def _change(before: object, now: object) -> dict[str, float] | None:
    if not isinstance(before, int | float) or not isinstance(now, int | float):
        return None
    return {
        "before": float(before),
        "now": float(now),
        "change": one_decimal(Fraction(str(now)) - Fraction(str(before))),
    }


def trend_compute(*, current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any] | None:
    """Change since the person's previous report, from the figures both reports show.

    Only a report of this format, built under the same or a larger k, is compared with:
    its figures each passed the rules on their own. Both sides are the one-decimal values
    the two reports already show, so the trend adds no precision to either.
    """
    if previous.get("format") != REPORT_FORMAT or int(previous.get("k") or 0) < int(current.get("k") or 0):
        return None

    def index_score(data: Mapping[str, Any], side: str) -> object:
        return ((data.get("indices") or {}).get(OTHERS) or {}).get(side, {}).get("score")

    def balance_value(data: Mapping[str, Any]) -> object:
        return (data.get("balance") or {}).get("value")

    before_dimensions = {
        dimension["key"]: (dimension.get("others") or {}).get("score") for dimension in previous.get("dimensions", [])
    }
    dimensions = []
    for dimension in current.get("dimensions", []):
        change = _change(before_dimensions.get(dimension["key"]), (dimension.get("others") or {}).get("score"))
        if change is not None:
            dimensions.append({"key": dimension["key"], "name": dimension["name"], **change})
    indices = {
        side: change for side in SIDES if (change := _change(index_score(previous, side), index_score(current, side)))
    }
    balance = _change(balance_value(previous), balance_value(current))
    if not dimensions and not indices and balance is None:
        return None
    return {
        "cycle": (previous.get("cycle") or {}).get("name", ""),
        "indices": indices,
        "balance": balance,
        "dimensions": dimensions,
    }
