"""An attacker of the report's anonymity: reads what a role can see and tries to solve for raters.

Nothing here imports the scoring code. The attacker knows what the product publishes
(PRODUCT.md: the rules, what each figure of a report means) and, to be as strong as an
attacker can be, everything but the anonymous raters' answers: who was invited, who
answered which question (so who said "can't say"), and the identified raters' (self,
manager) answers. With that it:

1. explains every number a surface shows — each must be a figure whose meaning the rules
   publish, and reproduce from the raters' answers — so a number the report should not
   carry cannot hide from the attacks below;
2. attacks linearly: every figure is a linear form in the anonymous answers; with exact
   arithmetic it asks whether any combination of the figures shown isolates fewer than k
   anonymous raters (one rater's answer, or a sum over two of them where k = 3 …);
3. attacks by enumeration: for each group behind a dimension, it lists every set of
   individual scores consistent with the rounded figures, and asks whether the figures
   narrow the group's scores down further than the group's own mean does (a spread, a
   minimum or a maximum would).

The linear attack computes ranks in two large prime fields (numpy, exact integer
arithmetic): a rank over the rationals differs from both only with negligible
probability. Every isolation it reports is then confirmed over the rationals with
fractions, by solving for the combination of figures that isolates.
"""

from __future__ import annotations

import html
import itertools
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

SELF, MANAGER, PEER, DIRECT_REPORT, OUTSIDE = "self", "manager", "peer", "direct_report", "outside"
ANONYMOUS = (PEER, DIRECT_REPORT, OUTSIDE)
COMBINED, OTHERS = "combined", "others"
PRIMES = (2_147_483_647, 2_147_483_629)


# --- What the attacker knows ----------------------------------------------------------


@dataclass(frozen=True)
class Rater:
    group: str
    ratings: Mapping[str, int | None]
    comments: Mapping[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.group in ANONYMOUS


@dataclass(frozen=True)
class Dimension:
    key: str
    side: str
    pair: int
    items: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """One subject's raters, their answers and the cycle's k."""

    k: int
    dimensions: tuple[Dimension, ...]
    raters: tuple[Rater, ...]

    def answered(self, code: str) -> dict[int, int]:
        return {
            index: value for index, rater in enumerate(self.raters) if (value := rater.ratings.get(code)) is not None
        }


# --- The published rules, as the attacker reads them ----------------------------------


def published_item_sets(scenario: Scenario, code: str) -> tuple[dict[str, frozenset[int]], frozenset[int]]:
    """PRODUCT.md's rules for one question: {label: raters behind its figure}, and the dropped raters."""
    answered = scenario.answered(code)
    by_group: dict[str, set[int]] = {}
    for index in answered:
        by_group.setdefault(scenario.raters[index].group, set()).add(index)
    sets: dict[str, frozenset[int]] = {
        group: frozenset(by_group[group]) for group in (SELF, MANAGER) if group in by_group
    }
    small = [group for group in ANONYMOUS if 0 < len(by_group.get(group, ())) < scenario.k]
    for group in ANONYMOUS:
        if len(by_group.get(group, ())) >= scenario.k:
            sets[group] = frozenset(by_group[group])
    pool = frozenset(index for group in small for index in by_group[group])
    dropped = frozenset()
    if len(pool) >= scenario.k:
        sets[COMBINED] = pool
    else:
        dropped = pool
    anonymous = frozenset().union(*(sets[label] for label in (*ANONYMOUS, COMBINED) if label in sets))
    if anonymous:
        sets[OTHERS] = anonymous | sets.get(MANAGER, frozenset())
    return sets, dropped


# --- Figures as linear forms ----------------------------------------------------------

Form = dict[tuple[int, str], Fraction]  # (rater, item code) → coefficient


def _mean_form(scenario: Scenario, code: str, raters: Iterable[int]) -> Form:
    members = sorted(raters)
    return {(index, code): Fraction(1, len(members)) for index in members}


def _average(forms: Sequence[Form]) -> Form:
    total: Form = {}
    for form in forms:
        for key, coefficient in form.items():
            total[key] = total.get(key, Fraction(0)) + coefficient / len(forms)
    return total


def _minus(first: Form, second: Form) -> Form:
    result = dict(first)
    for key, coefficient in second.items():
        result[key] = result.get(key, Fraction(0)) - coefficient
    return {key: value for key, value in result.items() if value}


def form_value(scenario: Scenario, form: Form) -> Fraction:
    return sum(
        (
            coefficient * Fraction(scenario.raters[index].ratings[code] or 0)
            for (index, code), coefficient in form.items()
        ),
        Fraction(0),
    )


def one_decimal(value: Fraction) -> float:
    tenths = math.floor(abs(value) * 10 + Fraction(1, 2))
    return (tenths if value >= 0 else -tenths) / 10


@dataclass
class Figure:
    """One number a surface shows, and what the attacker makes of it."""

    path: str
    shown: float
    form: Form | None = None  # a mean-like figure: a linear form in the answers
    raters: frozenset[int] = frozenset()  # everyone its value rests on
    spread_of: frozenset[int] | None = None  # a spread of these raters' own dimension scores
    dimension: str | None = None
    label: str | None = None


class Unexplained(AssertionError):
    """A number on a surface that no published figure explains, or that does not reproduce."""


class Interpreter:
    """Reads a report's JSON the way the product documents it, figure by figure."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.items = {code: published_item_sets(scenario, code) for d in scenario.dimensions for code in d.items}
        self.figures: list[Figure] = []

    # The attacker reads who stands behind a figure off its count n: the rules' set, or —
    # should the product fold a dropped group in — the rules' set plus the dropped raters.
    def _item_set(self, code: str, label: str, n: int | None) -> frozenset[int] | None:
        sets, dropped = self.items[code]
        candidates = [sets[label]] if label in sets else []
        if label == OTHERS and dropped:
            candidates.append(sets.get(OTHERS, frozenset()) | dropped | sets.get(MANAGER, frozenset()))
        for candidate in candidates:
            if n is None or len(candidate) == n:
                return candidate
        return None

    def item_form(self, code: str, label: str, n: int | None) -> tuple[Form, frozenset[int]] | None:
        behind = self._item_set(code, label, n)
        if behind is None:
            return None
        return _mean_form(self.scenario, code, behind), behind

    def dimension_form(self, key: str, label: str, n: int | None) -> tuple[Form, frozenset[int]] | None:
        dimension = next(d for d in self.scenario.dimensions if d.key == key)
        # Folding, if any, is consistent: try the published sets first, then with dropped raters.
        for with_dropped in (False, True):
            forms, behind = [], frozenset[int]()
            for code in dimension.items:
                sets, dropped = self.items[code]
                members = sets.get(label)
                if label == OTHERS and with_dropped and dropped:
                    members = (members or frozenset()) | dropped | sets.get(MANAGER, frozenset())
                if members:
                    forms.append(_mean_form(self.scenario, code, members))
                    behind |= members
            if forms and (n is None or len(behind) == n):
                return _average(forms), behind
        return None

    def add(self, path: str, shown: Any, resolved: tuple[Form, frozenset[int]] | None, **context: Any) -> None:
        if resolved is None:
            raise Unexplained(f"{path}: no figure the rules publish stands behind this number ({shown})")
        form, behind = resolved
        value = form_value(self.scenario, form)
        if one_decimal(value) != shown:
            raise Unexplained(f"{path}: shows {shown}, the published figure is {float(value):.4f}")
        self.figures.append(Figure(path=path, shown=shown, form=form, raters=behind, **context))

    def read(self, data: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> list[Figure]:
        """Every number of a report's JSON, explained; raises ``Unexplained`` otherwise.

        ``previous`` is the person's earlier report the coach can also read: a trend may
        only repeat figures the two reports show, and their difference.
        """
        stray = numeric_paths(data) - EXPLAINED_PATHS - TREND_PATHS
        if stray:
            raise Unexplained(f"numbers no published figure explains: {sorted(stray)}")
        scenario = self.scenario
        known_numbers = {"k": scenario.k}
        for name, expected in known_numbers.items():
            if data.get(name) != expected:
                raise Unexplained(f"{name}: {data.get(name)} is not the cycle's {expected}")
        dimension_forms: dict[tuple[str, str], tuple[Form, frozenset[int]]] = {}
        for d_index, dimension in enumerate(data["dimensions"]):
            key = dimension["key"]
            for g_index, figure in enumerate(dimension["groups"]):
                resolved = self.dimension_form(key, figure["group"], figure["n"])
                self._count(f"dimensions[{d_index}].groups[{g_index}].n", figure["n"], resolved)
                self.add(f"dimensions[{d_index}].groups[{g_index}].score", figure["score"], resolved,
                         dimension=key, label=figure["group"])  # fmt: skip
                if resolved:
                    dimension_forms[(key, figure["group"])] = resolved
            others = dimension.get("others")
            if others is not None:
                resolved = self.dimension_form(key, OTHERS, others["n"])
                self._count(f"dimensions[{d_index}].others.n", others["n"], resolved)
                self.add(f"dimensions[{d_index}].others.score", others["score"], resolved, dimension=key, label=OTHERS)
                assert resolved is not None
                dimension_forms[(key, OTHERS)] = resolved
                self._agreement(f"dimensions[{d_index}].others.agreement", others.get("agreement"), key, resolved[1])
                unknown = set(others) - {"score", "n", "agreement", "sd"}
                if unknown:
                    raise Unexplained(f"dimensions[{d_index}].others: unexplained fields {sorted(unknown)}")
                if "sd" in others:
                    self.figures.append(
                        Figure(
                            path=f"dimensions[{d_index}].others.sd",
                            shown=others["sd"],
                            spread_of=resolved[1],
                            raters=resolved[1],
                            dimension=key,
                            label="spread",
                        )
                    )
            if dimension.get("self") is not None:
                resolved = self.dimension_form(key, SELF, dimension["self"]["n"])
                self.add(f"dimensions[{d_index}].self.score", dimension["self"]["score"], resolved, dimension=key)
            if dimension.get("gap") is not None:
                gap = _minus(dimension_forms[(key, SELF)][0], dimension_forms[(key, OTHERS)][0])
                behind = dimension_forms[(key, SELF)][1] | dimension_forms[(key, OTHERS)][1]
                self.add(f"dimensions[{d_index}].gap.value", dimension["gap"]["value"], (gap, behind))
            for i_index, item in enumerate(dimension["items"]):
                if item["others"] is not None:
                    resolved = self.item_form(item["code"], OTHERS, item["others"]["n"])
                    self._count(f"dimensions[{d_index}].items[{i_index}].n", item["others"]["n"], resolved)
                    self.add(f"dimensions[{d_index}].items[{i_index}].score", item["others"]["score"], resolved)
        index_forms: dict[tuple[str, str], tuple[Form, frozenset[int]]] = {}
        for label, by_side in (data.get("indices") or {}).items():
            for side, figure in by_side.items():
                on_side = [dimension_forms.get((d.key, label)) for d in scenario.dimensions if d.side == side]
                if any(resolved is None for resolved in on_side):
                    raise Unexplained(f"indices.{label}.{side}: an index with a dimension missing")
                present = [resolved for resolved in on_side if resolved is not None]
                resolved = (_average([form for form, _ in present]), frozenset().union(*(b for _, b in present)))
                self._count(f"indices.{label}.{side}.n", figure["n"], resolved)
                self.add(f"indices.{label}.{side}.score", figure["score"], resolved)
                index_forms[(label, side)] = resolved
        if data.get("balance") is not None:
            lead, manage = index_forms[(OTHERS, "leadership")], index_forms[(OTHERS, "management")]
            self.add("balance.value", data["balance"]["value"], (_minus(lead[0], manage[0]), lead[1] | manage[1]))
        for p_index, pair in enumerate(data.get("pairs") or []):
            for side in ("management", "leadership"):
                shown = pair[f"{side}_others"]
                if shown is not None:
                    resolved = dimension_forms[(pair[side]["key"], OTHERS)]
                    self.add(f"pairs[{p_index}].{side}_others.score", shown["score"], resolved)
            if pair["gap"] is not None:
                lead = dimension_forms[(pair["leadership"]["key"], OTHERS)]
                manage = dimension_forms[(pair["management"]["key"], OTHERS)]
                self.add(f"pairs[{p_index}].gap", pair["gap"], (_minus(lead[0], manage[0]), lead[1] | manage[1]))
        for listing in ("highest", "lowest"):
            for position, item in enumerate(data["items"][listing]):
                resolved = self.item_form(item["code"], OTHERS, item["n"])
                self.add(f"items.{listing}[{position}].score", item["score"], resolved)
        if data.get("trend"):
            self._trend(data, previous)
        self._reading(data)
        return self.figures

    def _reading(self, data: Mapping[str, Any]) -> None:
        """The written reading may quote only figures read above (and the quadrant cut): a
        sentence that computed a number of its own would be a figure no rule published."""
        quoted = {f"{abs(figure.shown):.1f}" for figure in self.figures}
        quoted.add(f"{float(data.get('quadrant_cut', 3.5)):.1f}")
        for text in strings_of(data.get("reading") or {}):
            stray = decimals(text) - quoted
            if stray:
                raise Unexplained(f"reading: {sorted(stray)} in {text!r} is no figure the report shows")

    @staticmethod
    def _trend(data: Mapping[str, Any], previous: Mapping[str, Any] | None) -> None:
        if previous is None:
            raise Unexplained("trend: there is no earlier report to compare with")
        if previous.get("k", 0) < data["k"]:
            raise Unexplained("trend: the earlier report was built under a smaller k")
        trend = data["trend"]

        def shown(report: Mapping[str, Any], where: tuple[str, str]) -> Any:
            kind, key = where
            if kind == "index":
                return ((report.get("indices") or {}).get(OTHERS) or {}).get(key, {}).get("score")
            if kind == "balance":
                return (report.get("balance") or {}).get("value")
            dimension = next((d for d in report["dimensions"] if d["key"] == key), None)
            return ((dimension or {}).get("others") or {}).get("score")

        entries = [(f"trend.indices.{side}", ("index", side), change) for side, change in trend["indices"].items()]
        if trend.get("balance"):
            entries.append(("trend.balance", ("balance", ""), trend["balance"]))
        entries += [(f"trend.dimensions.{c['key']}", ("dimension", c["key"]), c) for c in trend["dimensions"]]
        for path, where, change in entries:
            if change["before"] != shown(previous, where) or change["now"] != shown(data, where):
                raise Unexplained(f"{path}: not the figures the two reports show")
            if change["change"] != one_decimal(Fraction(str(change["now"])) - Fraction(str(change["before"]))):
                raise Unexplained(f"{path}: the change is not the difference of what the reports show")

    @staticmethod
    def _count(path: str, shown: int, resolved: tuple[Form, frozenset[int]] | None) -> None:
        if resolved is not None and len(resolved[1]) != shown:
            raise Unexplained(f"{path}: n = {shown}, but {len(resolved[1])} raters stand behind the figure")

    def _agreement(self, path: str, flag: Any, key: str, behind: frozenset[int]) -> None:
        anonymous = [index for index in behind if self.scenario.raters[index].anonymous]
        if flag is None:
            return
        if len(anonymous) < max(self.scenario.k, 5):
            raise Unexplained(f"{path}: an agreement flag from only {len(anonymous)} anonymous raters")
        if flag not in ("divided", "consistent"):
            raise Unexplained(f"{path}: agreement must be a flag, not {flag!r}")


# Every place a number may sit in a report's JSON: the figures read above, their counts,
# and the report's settings and identifiers. A number anywhere else is unexplained.
EXPLAINED_PATHS = {
    "format",
    "k",
    "comment_min",
    "agreement_min",
    "quadrant_cut",
    "subject.person_id",
    "cycle.id",
    "raters.anonymous_invited",
    "raters.added_by_manager",
    "raters.from_reporting_lines",
    "raters.nominated",
    "raters.not_recorded",
    "items.shown",
    "dimensions[].pair",
    "dimensions[].groups[].score",
    "dimensions[].groups[].n",
    "dimensions[].others.score",
    "dimensions[].others.n",
    "dimensions[].others.sd",
    "dimensions[].self.score",
    "dimensions[].self.n",
    "dimensions[].gap.value",
    "dimensions[].items[].others.score",
    "dimensions[].items[].others.n",
    "indices.self.management.score",
    "indices.self.management.n",
    "indices.self.leadership.score",
    "indices.self.leadership.n",
    "indices.others.management.score",
    "indices.others.management.n",
    "indices.others.leadership.score",
    "indices.others.leadership.n",
    "balance.value",
    "pairs[].pair",
    "pairs[].gap",
    "pairs[].management_others.score",
    "pairs[].management_others.n",
    "pairs[].management_others.sd",
    "pairs[].leadership_others.sd",
    "pairs[].leadership_others.score",
    "pairs[].leadership_others.n",
    "items.highest[].score",
    "items.highest[].n",
    "items.lowest[].score",
    "items.lowest[].n",
    "reading.text_bank.version",
}


def strings_of(value: Any) -> list[str]:
    """Every string of a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in strings_of(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_of(item)]
    return []


# A trend repeats the figures of two reports and their difference (checked by ``_trend``).
TREND_PATHS = {
    f"trend.{where}.{field}"
    for where in ("indices.management", "indices.leadership", "balance", "dimensions[]")
    for field in ("before", "now", "change")
}


def numeric_paths(value: Any, path: str = "") -> set[str]:
    """The paths of every number in a JSON document, list positions written as ``[]``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return set()
    if isinstance(value, int | float):
        return {path}
    if isinstance(value, Mapping):
        return set().union(
            set(), *(numeric_paths(item, f"{path}.{key}" if path else key) for key, item in value.items())
        )
    if isinstance(value, list):
        return set().union(set(), *(numeric_paths(item, f"{path}[]") for item in value))
    return {path}


# --- Numbers on a surface -------------------------------------------------------------

DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")


def visible_text(page: str) -> str:
    """What a reader sees of an HTML page: text, no tags, no scripts or styles."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def decimals(text: str) -> set[str]:
    return set(DECIMAL.findall(text))


def json_decimals(value: Any) -> set[str]:
    """Every number of a JSON document as one-decimal text, sign dropped."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        return {f"{abs(float(value)):.1f}", str(abs(float(value)))}
    if isinstance(value, Mapping):
        return set().union(*(json_decimals(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(json_decimals(item) for item in value)) if value else set()
    return set()


# --- The linear attack ----------------------------------------------------------------


@dataclass(frozen=True)
class Isolation:
    """A combination of shown figures that weighs fewer than k anonymous raters."""

    raters: frozenset[int]
    coefficients: dict[str, Fraction]
    value: Fraction


def _mod_rank(matrix: np.ndarray, prime: int) -> int:
    """The rank of an integer matrix over the field of ``prime`` elements (prime < 2**31)."""
    work = matrix.copy() % prime
    rows, columns = work.shape
    rank = 0
    for column in range(columns):
        if rank == rows:
            break
        pivot_rows = np.nonzero(work[rank:, column])[0]
        if not len(pivot_rows):
            continue
        pivot = rank + int(pivot_rows[0])
        if pivot != rank:
            work[[rank, pivot]] = work[[pivot, rank]]
        inverse = pow(int(work[rank, column]), prime - 2, prime)
        work[rank] = (work[rank] * inverse) % prime
        factors = work[:, column].copy()
        factors[rank] = 0
        # Entries stay below 2**31, so each product fits in 64 bits.
        work = (work - (np.outer(factors, work[rank]) % prime)) % prime
        rank += 1
    return rank


def _to_field(value: Fraction, prime: int) -> int:
    return (value.numerator % prime) * pow(value.denominator % prime, prime - 2, prime) % prime


def linear_attack(scenario: Scenario, figures: Sequence[Figure], *, limit: int = 3) -> list[Isolation]:
    """Sets of fewer than k anonymous raters that some combination of the figures isolates.

    The identified raters' answers are known to the attacker: their part of every figure
    is subtracted. A combination of figures is then a linear form in the anonymous
    answers; it isolates a set S when its weight lies on S's answers alone. Stops after
    ``limit`` confirmed isolations.
    """
    named = [
        (figure.path, {v: c for v, c in figure.form.items() if scenario.raters[v[0]].anonymous})
        for figure in figures
        if figure.form is not None
    ]
    rows = [(path, row) for path, row in named if row]
    unknown = sorted({variable for _, row in rows for variable in row})
    if not unknown:
        return []
    column = {variable: position for position, variable in enumerate(unknown)}
    raters = sorted({index for index, _ in unknown})
    size = min(scenario.k - 1, len(raters))
    found: list[Isolation] = []
    suspects: list[frozenset[int]] = []
    for prime in PRIMES:
        matrix = np.zeros((len(rows), len(unknown)), dtype=np.int64)
        for r, (_, row) in enumerate(rows):
            for variable, coefficient in row.items():
                matrix[r, column[variable]] = _to_field(coefficient, prime)
        full = _mod_rank(matrix, prime)
        for subset in itertools.combinations(raters, size):
            keep = [column[v] for v in unknown if v[0] not in subset]
            if _mod_rank(matrix[:, keep], prime) < full and frozenset(subset) not in suspects:
                suspects.append(frozenset(subset))
    for subset in suspects:
        isolation = _confirm(scenario, rows, unknown, subset)
        if isolation is not None:
            found.append(isolation)
            if len(found) >= limit:
                break
    return found


def _confirm(
    scenario: Scenario,
    rows: Sequence[tuple[str, Mapping[tuple[int, str], Fraction]]],
    unknown: Sequence[tuple[int, str]],
    subset: frozenset[int],
) -> Isolation | None:
    """Over the rationals: a combination of the rows that vanishes outside ``subset`` but not on it."""
    outside = [v for v in unknown if v[0] not in subset]
    inside = [v for v in unknown if v[0] in subset]
    system = [[row.get(v, Fraction(0)) for _, row in rows] for v in outside]
    for vector in _null_space(system, len(rows)):
        weights = {
            v: sum((c * row.get(v, Fraction(0)) for c, (_, row) in zip(vector, rows, strict=True)), Fraction(0))
            for v in inside
        }
        if any(weights.values()):
            value = sum(
                (
                    weight * Fraction(scenario.raters[index].ratings[code] or 0)
                    for (index, code), weight in weights.items()
                ),
                Fraction(0),
            )
            coefficients = {path: c for c, (path, _) in zip(vector, rows, strict=True) if c}
            return Isolation(raters=subset, coefficients=coefficients, value=value)
    return None


def _null_space(system: list[list[Fraction]], count: int) -> list[list[Fraction]]:
    """A basis of {c : system · c = 0} over the rationals."""
    matrix = [row[:] for row in system]
    pivots: list[int] = []
    rank = 0
    for column in range(count):
        pivot = next((r for r in range(rank, len(matrix)) if matrix[r][column]), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        lead = matrix[rank][column]
        matrix[rank] = [value / lead for value in matrix[rank]]
        for r in range(len(matrix)):
            if r != rank and matrix[r][column]:
                factor = matrix[r][column]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[rank], strict=True)]
        pivots.append(column)
        rank += 1
    free = [column for column in range(count) if column not in pivots]
    basis = []
    for free_column in free:
        vector = [Fraction(0)] * count
        vector[free_column] = Fraction(1)
        for r, pivot_column in enumerate(pivots):
            vector[pivot_column] = -matrix[r][free_column]
        basis.append(vector)
    return basis


# --- The enumeration attack -----------------------------------------------------------


@dataclass(frozen=True)
class Narrowing:
    """The figures say more about a group's individual scores than its mean does."""

    dimension: str
    label: str
    by_mean: int  # how many sets of individual scores the group's mean allows
    by_all: int  # how many all the figures together allow


def enumeration_attack(scenario: Scenario, figures: Sequence[Figure]) -> list[Narrowing]:
    """For each dimension whose Others raters answered all of its questions: the groups whose
    possible sets of individual scores the figures narrow beyond what their sums allow.

    Each rater's own dimension score is a multiple of 1/q (q questions, answers 1..5). For
    every shown group the attacker lists the multisets of scores of its size whose mean
    rounds to the shown figure, combines the groups (and the manager) into Others, and
    keeps the combinations that every figure of the dimension — means, and any spread —
    allows. If some group then has fewer possible multisets than the sums that remain
    possible for it allow, the figures told the attacker about the spread of individual
    scores inside a group: exactly what a mean cannot do.
    """
    narrowings: list[Narrowing] = []
    for dimension in scenario.dimensions:
        on_dimension = [f for f in figures if f.dimension == dimension.key]
        others = next((f for f in on_dimension if f.label == OTHERS), None)
        if others is None:
            continue
        behind = sorted(others.raters)
        if any(scenario.raters[i].ratings.get(code) is None for i in behind for code in dimension.items):
            continue  # "can't say" answers: each group's figure is then not a mean of raters' scores
        q = len(dimension.items)
        groups = [f for f in on_dimension if f.label in (*ANONYMOUS, COMBINED)]
        manager = next((f for f in on_dimension if f.label == MANAGER), None)
        composed = frozenset().union(*(g.raters for g in groups)) | (manager.raters if manager else frozenset())
        if composed != others.raters:
            continue  # Others is not made of the shown groups: the linear attack's business
        spread = next((f for f in on_dimension if f.spread_of is not None), None)
        values = range(q, 5 * q + 1)  # a rater's dimension score times q
        group_candidates: list[dict[tuple[int, int], list[tuple[int, ...]]]] = []
        for group in groups:
            by_key: dict[tuple[int, int], list[tuple[int, ...]]] = {}
            for multiset in itertools.combinations_with_replacement(values, len(group.raters)):
                if one_decimal(Fraction(sum(multiset), q * len(multiset))) == group.shown:
                    key = (sum(multiset), sum(v * v for v in multiset))
                    by_key.setdefault(key, []).append(multiset)
            group_candidates.append(by_key)
        manager_values = (
            [v for v in values if one_decimal(Fraction(v, q)) == manager.shown]
            if manager is not None and manager.raters <= others.raters
            else [None]
        )
        feasible: list[set[tuple[int, int]]] = [set() for _ in groups]
        for combination in itertools.product(*(list(c) for c in group_candidates)):
            for manager_value in manager_values:
                total = sum(key[0] for key in combination) + (manager_value or 0)
                squares = sum(key[1] for key in combination) + (manager_value or 0) ** 2
                count = len(others.raters)
                if one_decimal(Fraction(total, q * count)) != others.shown:
                    continue
                if spread is not None:
                    mean = Fraction(total, q * count)
                    variance = Fraction(squares, q * q * count) - mean * mean
                    # the spread is shown rounded to two decimals
                    if abs(math.sqrt(variance) - spread.shown) > 0.005 + 1e-9:
                        continue
                for position, key in enumerate(combination):
                    feasible[position].add(key)
        for group, by_key, keys in zip(groups, group_candidates, feasible, strict=True):
            if len(group.raters) < 2:
                continue
            by_all = sum(len(by_key[key]) for key in keys)
            sums = {key[0] for key in keys}
            by_mean = sum(len(multisets) for key, multisets in by_key.items() if key[0] in sums)
            if by_all < by_mean:
                narrowings.append(
                    Narrowing(dimension=dimension.key, label=str(group.label), by_mean=by_mean, by_all=by_all)
                )
    return narrowings


def rater_dimension_scores(scenario: Scenario, dimension: Dimension, raters: Iterable[int]) -> list[float]:
    """The raters' own dimension scores (for checking what a spread would reveal)."""
    scores = []
    for index in raters:
        answers = [scenario.raters[index].ratings[code] for code in dimension.items]
        present = [value for value in answers if value is not None]
        if present:
            scores.append(statistics.fmean(present))
    return scores
