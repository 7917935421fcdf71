"""Balance report scoring and the anonymity filter: pure functions, no database.

Everything a report can show is computed here from plain data (the raters' answers,
the questionnaire structure, k, the comment minimum and the quadrant cut). Each figure
is built only from the raters that ``anonymity_filter`` selected for its measure, and
``report_data`` turns the figures into the JSON stored on the report. The web page,
the PDF, the JSON API and the team view read only that stored JSON, so none of them can
show anything the filter did not let through.

Internally every figure remembers *which* raters it was computed from (indices into the
list of raters given to ``report_compute``); the property tests use those sets to prove
that no figure rests on fewer than k anonymous raters and that no two figures of the same
measure can be subtracted to isolate fewer than k of them. The sets never leave this
module: the stored JSON carries only scores and rater counts.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SELF = "self"
MANAGER = "manager"
PEER = "peer"
DIRECT_REPORT = "direct_report"
OTHER = "other"
ANONYMOUS_GROUPS: tuple[str, ...] = (PEER, DIRECT_REPORT, OTHER)
IDENTIFIED_GROUPS: tuple[str, ...] = (SELF, MANAGER)
# The label of the figure made by pooling anonymous groups that are each too small.
POOLED = "pooled"
OTHERS = "others"

GROUP_LABELS: dict[str, str] = {
    SELF: "Self",
    MANAGER: "Manager",
    PEER: "Peers",
    DIRECT_REPORT: "Direct reports",
    OTHER: "Other raters",
    POOLED: "Other raters (pooled)",
    OTHERS: "Others",
}
SHOWN_GROUP_ORDER: tuple[str, ...] = (SELF, MANAGER, PEER, DIRECT_REPORT, OTHER, POOLED, OTHERS)

SIDES: tuple[str, ...] = ("management", "leadership")
COMMENT_QUESTIONS: dict[str, str] = {
    "management": "Management",
    "leadership": "Leadership",
    "keep_doing": "Keep doing",
    "start_doing": "Start doing",
}

# |leadership − management| below this reads as balanced.
BALANCE_MARGIN = 0.5
# self − Others at or beyond ±0.5 is a blind spot / hidden strength.
GAP_MARGIN = 0.5
# Population standard deviation of the Others raters' dimension scores at or above 1.0
# (one full step on the 1–5 scale) is flagged as strong disagreement: at that spread a
# typical rater sits a whole answer away from the mean, so the mean hides real views.
DISAGREEMENT_SD = 1.0
# How many items are listed as highest and lowest.
ITEMS_LISTED = 5

QUADRANTS: dict[str, str] = {
    "strong_both": "Strong on both",
    "chaos_risk": "Strong leadership only — chaos risk",
    "bureaucracy_risk": "Strong management only — bureaucracy risk",
    "developing_both": "Developing on both",
}


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
    quadrant_cut: float

    def __post_init__(self) -> None:
        if self.k < 2:
            raise ValueError("k must be at least 2")
        if self.comment_min < self.k:
            raise ValueError("the comment minimum must not be below k")


# --- The anonymity filter ------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which raters may be shown for one measure, and under which group label.

    ``groups`` maps a shown label (self, manager, an anonymous group, or ``pooled``) to
    the raters behind it; ``others`` is the rater set behind the Others figure (empty
    when it may not be shown); ``dropped`` names anonymous groups that answered but count
    nowhere for this measure.
    """

    groups: dict[str, frozenset[int]]
    others: frozenset[int]
    dropped: tuple[str, ...]


def anonymity_filter(*, groups: Sequence[str], answered: Sequence[bool], k: int) -> Selection:
    """The anonymity rules for one measure (a dimension or an item).

    ``groups[i]`` is rater i's group and ``answered[i]`` whether rater i answered the
    measure ("can't say" on everything does not count).

    - Self and manager are identified and shown as such.
    - An anonymous group is shown on its own when at least k of its raters answered.
    - The anonymous groups below k are pooled into one "other raters" figure when
      together they reach k; otherwise they are dropped from every figure of this
      measure — never folded into Others, where Others minus the shown groups would
      isolate them.
    - Others = manager + every shown anonymous rater (never self), and only when at
      least k anonymous raters stand behind it: with none it would merely repeat the
      manager's score under a name that promises more people.

    Why this holds the subtraction rule: the shown anonymous sets (groups and pool) are
    pairwise disjoint and each has at least k raters, and Others is exactly their union
    plus the identified manager, so any two figures differ by zero anonymous raters or by
    at least one whole shown set.
    """
    if len(groups) != len(answered):
        raise ValueError("groups and answered must have the same length")
    members: dict[str, set[int]] = {}
    for index, (group, did_answer) in enumerate(zip(groups, answered, strict=True)):
        if did_answer:
            members.setdefault(group, set()).add(index)

    shown: dict[str, frozenset[int]] = {}
    for group in IDENTIFIED_GROUPS:
        if members.get(group):
            shown[group] = frozenset(members[group])

    small: list[str] = []
    for group in ANONYMOUS_GROUPS:
        raters = members.get(group, set())
        if len(raters) >= k:
            shown[group] = frozenset(raters)
        elif raters:
            small.append(group)

    dropped: tuple[str, ...] = ()
    pool = frozenset(index for group in small for index in members[group])
    if len(pool) >= k:
        shown[POOLED] = pool
    else:
        dropped = tuple(small)

    anonymous = frozenset(
        index for label, raters in shown.items() if label not in IDENTIFIED_GROUPS for index in raters
    )
    others = anonymous | shown.get(MANAGER, frozenset()) if len(anonymous) >= k else frozenset()
    return Selection(groups=shown, others=others, dropped=dropped)


# --- Figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One score that may be shown: its measure, label, value and the raters behind it."""

    measure: str
    label: str
    score: float
    raters: frozenset[int]
    anonymous: frozenset[int]
    spread: float | None = None

    @property
    def n(self) -> int:
        return len(self.raters)


@dataclass(frozen=True)
class DimensionResult:
    spec: DimensionSpec
    groups: tuple[Figure, ...]
    others: Figure | None
    self_figure: Figure | None
    dropped: tuple[str, ...]

    @property
    def gap(self) -> float | None:
        if self.others is None or self.self_figure is None:
            return None
        return self.self_figure.score - self.others.score

    @property
    def disagreement(self) -> bool:
        return self.others is not None and self.others.spread is not None and self.others.spread >= DISAGREEMENT_SD


@dataclass(frozen=True)
class ItemResult:
    spec: ItemSpec
    dimension: DimensionSpec
    position: int
    others: Figure


@dataclass(frozen=True)
class Comment:
    question: str
    label: str | None
    text: str
    # Kept for the property tests only; never stored.
    rater: int


@dataclass(frozen=True)
class ReportResult:
    rules: Rules
    dimensions: tuple[DimensionResult, ...]
    items: tuple[ItemResult, ...]
    indices: dict[str, dict[str, Figure]]
    comments: tuple[Comment, ...]
    notices: tuple[str, ...]
    anonymous_pool: int

    def figures(self) -> Iterator[Figure]:
        """Every figure the report exposes, for the checks that guard anonymity."""
        for dimension in self.dimensions:
            yield from dimension.groups
        for item in self.items:
            yield item.others
        for by_side in self.indices.values():
            yield from by_side.values()


def rating_value(value: object) -> float | None:
    """A stored rating as a number, or None for "can't say" (and anything that is not 1..5)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        return float(value)
    return None


def _rater_dimension_score(rater: RaterAnswers, dimension: DimensionSpec) -> float | None:
    answered = [
        rating for item in dimension.items if (rating := rating_value(rater.ratings.get(item.code))) is not None
    ]
    return statistics.fmean(answered) if answered else None


def _same_answer_count(raters: Sequence[RaterAnswers], dimension: DimensionSpec, behind: frozenset[int]) -> bool:
    """Whether every rater in ``behind`` answered the same number of ``dimension``'s items."""
    counts = {
        sum(1 for item in dimension.items if rating_value(raters[index].ratings.get(item.code)) is not None)
        for index in behind
    }
    return len(counts) <= 1


def _figure(
    *, measure: str, label: str, raters: frozenset[int], scores: Mapping[int, float], anonymous: frozenset[int]
) -> Figure:
    values = [scores[index] for index in sorted(raters)]
    return Figure(
        measure=measure,
        label=label,
        score=statistics.fmean(values),
        raters=raters,
        anonymous=raters & anonymous,
        spread=statistics.pstdev(values) if label == OTHERS else None,
    )


def _measure_figures(
    *, measure: str, raters: Sequence[RaterAnswers], scores: Mapping[int, float], k: int, anonymous: frozenset[int]
) -> tuple[tuple[Figure, ...], Figure | None, tuple[str, ...]]:
    selection = anonymity_filter(
        groups=[rater.group for rater in raters], answered=[index in scores for index in range(len(raters))], k=k
    )
    figures = [
        _figure(measure=measure, label=label, raters=selection.groups[label], scores=scores, anonymous=anonymous)
        for label in SHOWN_GROUP_ORDER
        if label in selection.groups
    ]
    others = None
    if selection.others:
        others = _figure(measure=measure, label=OTHERS, raters=selection.others, scores=scores, anonymous=anonymous)
        figures.append(others)
    return tuple(figures), others, selection.dropped


def comments_filter(
    *, raters: Sequence[RaterAnswers], rules: Rules, rng: random.Random | None = None
) -> tuple[Comment, ...]:
    """The comments a report may quote, labelled and ordered so they reveal no one.

    Self and manager comments are identified and labelled. Anonymous comments appear only
    when the anonymous raters who responded reach the comment minimum. An anonymous group
    is named only when at least k of its raters responded; the rest are unlabelled, and if
    the unlabelled raters would be fewer than k, no group is named at all — otherwise an
    unlabelled comment beside named ones would point at the one or two people outside the
    named groups. Anonymous comments are shuffled so their order follows nothing (not
    submission, not storage order).
    """
    rng = rng or random.SystemRandom()
    anonymous_by_group: dict[str, int] = {}
    for rater in raters:
        if rater.group in ANONYMOUS_GROUPS:
            anonymous_by_group[rater.group] = anonymous_by_group.get(rater.group, 0) + 1
    pool = sum(anonymous_by_group.values())
    named = {group for group, count in anonymous_by_group.items() if count >= rules.k}
    if 0 < pool - sum(anonymous_by_group[group] for group in named) < rules.k:
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
                identified.append(Comment(question, GROUP_LABELS[rater.group], text.strip(), index))
            elif rater.group in ANONYMOUS_GROUPS and pool >= rules.comment_min:
                label = GROUP_LABELS[rater.group] if rater.group in named else None
                anonymous.append(Comment(question, label, text.strip(), index))
        identified.sort(key=lambda comment: SHOWN_GROUP_ORDER.index(raters[comment.rater].group))
        rng.shuffle(anonymous)
        result.extend(identified)
        result.extend(anonymous)
    return tuple(result)


def report_compute(
    *,
    raters: Sequence[RaterAnswers],
    dimensions: Sequence[DimensionSpec],
    rules: Rules,
    rng: random.Random | None = None,
) -> ReportResult:
    """Every figure of one person's report, each computed only from filtered raters."""
    anonymous = frozenset(index for index, rater in enumerate(raters) if rater.group in ANONYMOUS_GROUPS)
    pool = len(anonymous)
    notices: list[str] = []
    if pool < rules.k:
        notices.append(
            f"Fewer than {rules.k} peers, direct reports and other raters answered, so this report shows "
            "self and manager scores only: any figure from so few anonymous raters could reveal who said what."
        )

    dimension_results: list[DimensionResult] = []
    dropped_anywhere: set[str] = set()
    for dimension in dimensions:
        scores = {
            index: score
            for index, rater in enumerate(raters)
            if (score := _rater_dimension_score(rater, dimension)) is not None
        }
        figures, others, dropped = _measure_figures(
            measure=f"dimension:{dimension.key}", raters=raters, scores=scores, k=rules.k, anonymous=anonymous
        )
        dropped_anywhere.update(dropped)
        self_figure = next((figure for figure in figures if figure.label == SELF), None)
        dimension_results.append(
            DimensionResult(spec=dimension, groups=figures, others=others, self_figure=self_figure, dropped=dropped)
        )
    if dropped_anywhere and pool >= rules.k:
        # The notice never names the dropped group: "answers from direct reports are left
        # out" would tell the reader that the lone direct report answered at all.
        notices.append(
            f"Some answers are not shown because fewer than {rules.k} people of their group answered; "
            "they are not counted anywhere in this report."
        )

    item_results: list[ItemResult] = []
    position = 0
    for dimension, dimension_result in zip(dimensions, dimension_results, strict=True):
        dimension_others = dimension_result.others
        if dimension_others is not None and not _same_answer_count(raters, dimension, dimension_others.raters):
            # Each rater's dimension score divides by the number of items they answered.
            # When those numbers differ, n·dimension − Σ n·item weighs some raters' answers
            # differently from the rest and singles them out: with two items, where only
            # one rater answered the second, it is exactly half the difference of that
            # rater's two answers; with five, it pins a lone "can't say" rater's score
            # down to a few values. With equal numbers it leaves only a sum over every
            # rater behind the figure, so the dimension's items are listed only then.
            dimension_others = None
        for item in dimension.items:
            position += 1
            item_scores = {
                index: rating
                for index, rater in enumerate(raters)
                if (rating := rating_value(rater.ratings.get(item.code))) is not None
            }
            # Items show Others only; the group figures exist just to select Others.
            _, others, _ = _measure_figures(
                measure=f"item:{item.code}", raters=raters, scores=item_scores, k=rules.k, anonymous=anonymous
            )
            # An item figure stands beside its dimension's Others figure only when both rest on
            # exactly the same raters. The dimension averages each rater's own mean while an
            # item averages its answers, so when one rater said "can't say" on an item the
            # counts differ by one and n·dimension − Σ n·item isolates that rater's score.
            if others is not None and dimension_others is not None and others.raters == dimension_others.raters:
                item_results.append(ItemResult(spec=item, dimension=dimension, position=position, others=others))

    indices: dict[str, dict[str, Figure]] = {}
    for source in (SELF, OTHERS):
        by_side: dict[str, Figure] = {}
        for side in SIDES:
            on_side = [result for result in dimension_results if result.spec.side == side]
            figures_on_side = [result.self_figure if source == SELF else result.others for result in on_side]
            if not on_side or any(figure is None for figure in figures_on_side):
                continue
            present = [figure for figure in figures_on_side if figure is not None]
            raters_behind = frozenset().union(*(figure.raters for figure in present))
            by_side[side] = Figure(
                measure=f"index:{side}",
                label=source,
                score=statistics.fmean(figure.score for figure in present),
                raters=raters_behind,
                anonymous=raters_behind & anonymous,
            )
        if len(by_side) == len(SIDES):
            indices[source] = by_side

    return ReportResult(
        rules=rules,
        dimensions=tuple(dimension_results),
        items=tuple(item_results),
        indices=indices,
        comments=comments_filter(raters=raters, rules=rules, rng=rng),
        notices=tuple(notices),
        anonymous_pool=pool,
    )


# --- Derived readings ----------------------------------------------------------------


def balance_label(balance: float) -> str:
    if abs(balance) < BALANCE_MARGIN:
        return "balanced"
    return "leans leadership" if balance > 0 else "leans management"


def quadrant_of(*, management: float, leadership: float, cut: float) -> str:
    if management >= cut and leadership >= cut:
        return "strong_both"
    if leadership >= cut:
        return "chaos_risk"
    if management >= cut:
        return "bureaucracy_risk"
    return "developing_both"


def gap_flag(gap: float) -> str | None:
    if gap >= GAP_MARGIN:
        return "blind_spot"
    if gap <= -GAP_MARGIN:
        return "hidden_strength"
    return None


GAP_LABELS = {"blind_spot": "Blind spot", "hidden_strength": "Hidden strength"}


# --- The stored JSON -----------------------------------------------------------------


def _round(value: float) -> float:
    return round(value, 2)


def _figure_json(figure: Figure) -> dict[str, Any]:
    return {"score": _round(figure.score), "n": figure.n}


def report_data(*, result: ReportResult, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON stored on the report: filtered figures only, scores rounded, counts attached."""
    cut = result.rules.quadrant_cut
    dimensions: list[dict[str, Any]] = []
    for dimension in result.dimensions:
        gap = dimension.gap
        dimensions.append(
            {
                "key": dimension.spec.key,
                "name": dimension.spec.name,
                "side": dimension.spec.side,
                "pair": dimension.spec.pair,
                "groups": [
                    {"group": figure.label, "label": GROUP_LABELS[figure.label], **_figure_json(figure)}
                    for figure in dimension.groups
                    if figure.label != OTHERS
                ],
                "others": None
                if dimension.others is None
                else {
                    **_figure_json(dimension.others),
                    "sd": _round(dimension.others.spread or 0.0),
                    "disagreement": dimension.disagreement,
                },
                "self": None if dimension.self_figure is None else _figure_json(dimension.self_figure),
                "gap": None
                if gap is None
                else {"value": _round(gap), "flag": gap_flag(gap), "label": GAP_LABELS.get(gap_flag(gap) or "")},
            }
        )

    indices = {
        source: {side: _figure_json(figure) for side, figure in by_side.items()}
        for source, by_side in result.indices.items()
    }
    balance = None
    quadrant = None
    others_index = result.indices.get(OTHERS)
    if others_index is not None:
        management = others_index["management"].score
        leadership = others_index["leadership"].score
        value = leadership - management
        balance = {"value": _round(value), "label": balance_label(value)}
        key = quadrant_of(management=management, leadership=leadership, cut=cut)
        quadrant = {"key": key, "label": QUADRANTS[key]}
    self_quadrant = None
    self_index = result.indices.get(SELF)
    if self_index is not None:
        key = quadrant_of(management=self_index["management"].score, leadership=self_index["leadership"].score, cut=cut)
        self_quadrant = {"key": key, "label": QUADRANTS[key]}

    by_key = {dimension["key"]: dimension for dimension in dimensions}
    pairs: list[dict[str, Any]] = []
    for pair in sorted({dimension.spec.pair for dimension in result.dimensions}):
        management_dim = next(
            (d for d in result.dimensions if d.spec.pair == pair and d.spec.side == "management"), None
        )
        leadership_dim = next(
            (d for d in result.dimensions if d.spec.pair == pair and d.spec.side == "leadership"), None
        )
        if management_dim is None or leadership_dim is None:
            continue
        gap_value = None
        if management_dim.others is not None and leadership_dim.others is not None:
            gap_value = _round(leadership_dim.others.score - management_dim.others.score)
        pairs.append(
            {
                "pair": pair,
                "management": {"key": management_dim.spec.key, "name": management_dim.spec.name},
                "leadership": {"key": leadership_dim.spec.key, "name": leadership_dim.spec.name},
                "management_others": by_key[management_dim.spec.key]["others"],
                "leadership_others": by_key[leadership_dim.spec.key]["others"],
                "gap": gap_value,
            }
        )

    ranked = sorted(result.items, key=lambda item: (-item.others.score, item.position))
    highest = ranked[:ITEMS_LISTED]
    lowest_pool = [item for item in sorted(result.items, key=lambda item: (item.others.score, item.position))]
    # An item is listed once: with fewer than ten items shown, the lowest list skips the highest.
    lowest = [item for item in lowest_pool if item not in highest][:ITEMS_LISTED]

    def item_json(item: ItemResult) -> dict[str, Any]:
        return {
            "code": item.spec.code,
            "text": item.spec.text,
            "dimension": item.dimension.name,
            "side": item.dimension.side,
            **_figure_json(item.others),
        }

    comments: list[dict[str, Any]] = []
    for question, title in COMMENT_QUESTIONS.items():
        entries = [
            {"label": comment.label, "text": comment.text}
            for comment in result.comments
            if comment.question == question
        ]
        if entries:
            comments.append({"question": question, "title": title, "entries": entries})

    data: dict[str, Any] = {
        "k": result.rules.k,
        "comment_min": result.rules.comment_min,
        "quadrant_cut": cut,
        "disagreement_sd": DISAGREEMENT_SD,
        "anonymous_shown": others_index is not None or any(d.others is not None for d in result.dimensions),
        "notices": list(result.notices),
        "dimensions": dimensions,
        "indices": indices,
        "balance": balance,
        "quadrant": quadrant,
        "self_quadrant": self_quadrant,
        "pairs": pairs,
        "items": {
            "shown": len(result.items),
            "highest": [item_json(item) for item in highest],
            "lowest": [item_json(item) for item in lowest],
        },
        "comments": comments,
    }
    data["trend"] = trend_compute(current=data, previous=previous) if previous else None
    return data


def _change(before: object, now: object) -> dict[str, float] | None:
    if not isinstance(before, int | float) or not isinstance(now, int | float):
        return None
    return {"before": float(before), "now": float(now), "change": _round(float(now) - float(before))}


def trend_compute(*, current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any] | None:
    """Change since the person's previous report, from the two stored (already filtered) reports."""

    def index_score(data: Mapping[str, Any], side: str) -> object:
        return ((data.get("indices") or {}).get(OTHERS) or {}).get(side, {}).get("score")

    def balance_value(data: Mapping[str, Any]) -> object:
        return (data.get("balance") or {}).get("value")

    previous_dimensions = {
        dimension["key"]: ((dimension.get("others") or {}).get("score")) for dimension in previous.get("dimensions", [])
    }
    dimensions = []
    for dimension in current.get("dimensions", []):
        change = _change(previous_dimensions.get(dimension["key"]), (dimension.get("others") or {}).get("score"))
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
