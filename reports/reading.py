"""Reading the report: the plain-words summary, development suggestions and debrief questions.

Generated from the report's stored figures (``scoring.report_data``) alone — the safe base
rounded to one decimal — never from a rater's answers, so a sentence can say nothing the
figures beside it do not already show. Every number a sentence quotes is one of those
figures, written as the report writes it; choices between dimensions (the clearest
strengths, the weakest, the widest pair) are made on the shown values, and the flags the
sentences rely on (blind spot, hidden strength, quadrant, balance) were set by the scoring
from the exact values, as every threshold is.

The texts come from a text bank: a JSON file per version in ``reports/texts/``, edited
like the questionnaire and loaded and checked by ``text_bank_load``. The report stores
the bank's name and version with the sentences it wrote.

Translation: the sentence frames below go through ``gettext`` (``makemessages`` finds
them), and so does every bank entry at the moment it is used, under the active language.
A later languages issue therefore adds catalogues only: the bank's English entries are
the message ids, and a report is written in the language active when it is built.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.translation import gettext, ngettext

from surveys.vocabulary import (
    BUREAUCRACY_RISK,
    CHAOS_RISK,
    DEVELOPING_BOTH,
    LEADERSHIP,
    MANAGEMENT,
    MANAGER,
    OTHERS,
    QUADRANT_LABELS,
    SELF,
    STRONG_BOTH,
)

TEXTS_DIR = Path(__file__).resolve().parent / "texts"
TEXT_BANK_NAME = "kotter-balance-texts"
TEXT_BANK_VERSION = 1
QUADRANT_KEYS = (STRONG_BOTH, CHAOS_RISK, BUREAUCRACY_RISK, DEVELOPING_BOTH)
QUADRANT_FIELDS = ("meaning", "suggestion", "question")
DIMENSION_FIELDS = ("strength", "develop", "blind_spot", "question")
PAIR_FIELDS = ("leadership_ahead", "management_ahead", "question")
# Enough to choose from in a debrief, few enough to fit beside the suggestions on one page.
SUGGESTIONS_MAX = 4
QUESTIONS_MAX = 5


class TextBankError(ValueError):
    """A text bank file that is missing a text or holds one of the wrong kind."""


@dataclass(frozen=True)
class TextBank:
    name: str
    version: int
    quadrants: Mapping[str, Mapping[str, str]]
    dimensions: Mapping[str, Mapping[str, str]]
    pairs: Mapping[int, Mapping[str, str]]
    debrief: tuple[str, ...]


def _texts(entry: object, fields: Sequence[str], where: str) -> dict[str, str]:
    if not isinstance(entry, Mapping):
        raise TextBankError(f"{where}: expected an object of texts")
    texts: dict[str, str] = {}
    for name in fields:
        text = entry.get(name)
        if not isinstance(text, str) or not text.strip():
            raise TextBankError(f"{where}.{name}: missing or empty")
        texts[name] = text.strip()
    return texts


def text_bank_parse(*, raw: Mapping[str, Any], dimension_keys: Sequence[str], pairs: Sequence[int]) -> TextBank:
    """Check a text bank against the dimensions and pairs it must cover; every text non-empty."""
    name, version = raw.get("name"), raw.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, int) or isinstance(version, bool):
        raise TextBankError("a text bank needs a name and an integer version")
    quadrants_raw, dimensions_raw, pairs_raw = (raw.get(key) or {} for key in ("quadrants", "dimensions", "pairs"))
    quadrants = {key: _texts(quadrants_raw.get(key), QUADRANT_FIELDS, f"quadrants.{key}") for key in QUADRANT_KEYS}
    dimensions = {key: _texts(dimensions_raw.get(key), DIMENSION_FIELDS, f"dimensions.{key}") for key in dimension_keys}
    pair_texts = {pair: _texts(pairs_raw.get(str(pair)), PAIR_FIELDS, f"pairs.{pair}") for pair in pairs}
    debrief = raw.get("debrief")
    if not isinstance(debrief, list) or not debrief or not all(isinstance(q, str) and q.strip() for q in debrief):
        raise TextBankError("debrief: a list of questions is needed")
    return TextBank(
        name=name,
        version=version,
        quadrants=quadrants,
        dimensions=dimensions,
        pairs=pair_texts,
        debrief=tuple(question.strip() for question in debrief),
    )


@functools.cache
def text_bank_load(*, version: int = TEXT_BANK_VERSION) -> TextBank:
    """The text bank of this version, checked against the default questionnaire's file.

    Cached per process: every report of a cycle reads the same file.
    """
    raw = json.loads((TEXTS_DIR / f"{TEXT_BANK_NAME}-v{version}.json").read_text(encoding="utf-8"))
    questionnaire = json.loads(
        (Path(__file__).resolve().parent.parent / "surveys" / "questionnaires" / "kotter-balance-v1.json").read_text(
            encoding="utf-8"
        )
    )
    keys = [dimension["key"] for dimension in questionnaire["dimensions"]]
    pairs = sorted({int(dimension["pair"]) for dimension in questionnaire["dimensions"]})
    bank = text_bank_parse(raw=raw, dimension_keys=keys, pairs=pairs)
    if bank.version != version:
        raise TextBankError(f"the file of version {version} says it is version {bank.version}")
    return bank


# --- Reading the figures -------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.1f}"


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def _group_score(dimension: Mapping[str, Any], group: str) -> float | None:
    for figure in dimension.get("groups") or []:
        if figure.get("group") == group:
            return float(figure["score"])
    return None


def _others_score(dimension: Mapping[str, Any]) -> float | None:
    others = dimension.get("others")
    return None if not others else float(others["score"])


def _ranked(dimensions: Sequence[Mapping[str, Any]], score: Any, *, highest: bool) -> list[Mapping[str, Any]]:
    """Dimensions that have the score, best (or weakest) first; ties keep the questionnaire's order."""
    scored = [(score(d), position, d) for position, d in enumerate(dimensions) if score(d) is not None]
    scored.sort(key=lambda entry: (-entry[0] if highest else entry[0], entry[1]))
    return [d for _, _, d in scored]


def _bank_dimension(bank: TextBank, dimension: Mapping[str, Any]) -> Mapping[str, str] | None:
    return bank.dimensions.get(str(dimension.get("key")))


def _and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return gettext("%(first)s and %(last)s") % {"first": ", ".join(names[:-1]), "last": names[-1]}


@dataclass
class _Reading:
    summary: list[str]
    suggestions: list[dict[str, str]]
    questions: list[str]

    def suggest(self, *, source: str, title: str, because: str, text: str, question: str | None) -> None:
        if len(self.suggestions) >= SUGGESTIONS_MAX or any(s["source"] == source for s in self.suggestions):
            return
        self.suggestions.append({"source": source, "title": title, "because": because, "text": text})
        if question:
            self.ask(question)

    def ask(self, question: str) -> None:
        if question not in self.questions:
            self.questions.append(question)


def _widest_pair(pairs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    shown = [pair for pair in pairs if pair.get("gap") is not None]
    if not shown:
        return None
    widest = max(shown, key=lambda pair: abs(float(pair["gap"])))
    return widest if float(widest["gap"]) != 0 else None


def _read_with_others(data: Mapping[str, Any], bank: TextBank, name: str, reading: _Reading) -> None:
    dimensions: list[Mapping[str, Any]] = list(data.get("dimensions") or [])
    cut = float(data.get("quadrant_cut", 3.5))
    indices = (data.get("indices") or {}).get(OTHERS)
    quadrant = data.get("quadrant")
    if indices and quadrant:
        # Others holds the manager's ratings only where the manager rated: say who it is.
        with_manager = any(_group_score(dimension, MANAGER) is not None for dimension in dimensions)
        reading.summary.append(
            gettext(
                "Others — %(others)s — place %(name)s in the quadrant “%(quadrant)s”, with a management "
                "index of %(management)s and a leadership index of %(leadership)s. %(meaning)s"
            )
            % {
                "name": name,
                "quadrant": gettext(QUADRANT_LABELS[quadrant["key"]]),
                "management": _number(indices[MANAGEMENT]["score"]),
                "leadership": _number(indices[LEADERSHIP]["score"]),
                "meaning": gettext(bank.quadrants[quadrant["key"]]["meaning"]),
                "others": gettext("the manager and the anonymous raters together")
                if with_manager
                else gettext("the anonymous raters together (the manager gave no rating)"),
            }
        )
    else:
        reading.summary.append(
            gettext(
                "There is no Others point on the plane: on at least one dimension too few anonymous raters "
                "gave a rating for an Others score, so no quadrant is named. The dimensions that have one "
                "are read below."
            )
        )
    balance = data.get("balance")
    if balance:
        # The label was set from the exact balance (scoring.balance_label); an unknown one fails
        # loudly rather than be read as balanced.
        key = {"balanced": "balanced", "leans leadership": LEADERSHIP, "leans management": MANAGEMENT}[balance["label"]]
        frames = {
            "balanced": gettext(
                "The balance (leadership index minus management index) is %(balance)s: within half a point, "
                "so neither side runs ahead of the other."
            ),
            LEADERSHIP: gettext(
                "The balance (leadership index minus management index) is %(balance)s: leadership runs ahead "
                "of management."
            ),
            MANAGEMENT: gettext(
                "The balance (leadership index minus management index) is %(balance)s: management runs ahead "
                "of leadership."
            ),
        }
        reading.summary.append(frames[key] % {"balance": _signed(float(balance["value"]))})

    best = _ranked(dimensions, _others_score, highest=True)[:2]
    # A strength is a dimension at or above the cut (on its shown score); below it, the
    # summary names the highest rated without calling them strengths.
    strong = [d for d in best if (_others_score(d) or 0) >= cut]
    if best:
        named = [
            gettext("%(dimension)s (%(score)s)") % {"dimension": d["name"], "score": _number(_others_score(d) or 0)}
            for d in (strong or best)
        ]
        if strong:
            strengths = [gettext(texts["strength"]) for d in strong if (texts := _bank_dimension(bank, d)) is not None]
            if strengths:
                sentence = gettext("The clearest strengths, as others see them: %(dimensions)s — %(strengths)s.") % {
                    "dimensions": _and(named),
                    "strengths": _and(strengths),
                }
            else:
                sentence = gettext("The clearest strengths, as others see them: %(dimensions)s.") % {
                    "dimensions": _and(named)
                }
            reading.summary.append(sentence)
        else:
            reading.summary.append(
                gettext(
                    "No dimension reaches the cut of %(cut)s between developing and strong yet; the highest "
                    "rated by others are %(dimensions)s."
                )
                % {"cut": _number(cut), "dimensions": _and(named)}
            )

    with_gap = [d for d in dimensions if d.get("gap")]
    blind = sorted(
        (d for d in with_gap if d["gap"].get("flag") == "blind_spot"), key=lambda d: -float(d["gap"]["value"])
    )
    hidden = sorted(
        (d for d in with_gap if d["gap"].get("flag") == "hidden_strength"), key=lambda d: float(d["gap"]["value"])
    )

    def gap_words(d: Mapping[str, Any]) -> str:
        return gettext("%(dimension)s (self %(self)s, others %(others)s, gap %(gap)s)") % {
            "dimension": d["name"],
            "self": _number(float(d["self"]["score"])),
            "others": _number(_others_score(d) or 0),
            "gap": _signed(float(d["gap"]["value"])),
        }

    if blind:
        reading.summary.append(
            gettext(
                "Blind spots — where %(name)s rates themself at least half a point higher than others do: "
                "%(dimensions)s."
            )
            % {"name": name, "dimensions": _and([gap_words(d) for d in blind[:2]])}
        )
    if hidden:
        reading.summary.append(
            gettext(
                "Hidden strengths — where others rate %(name)s at least half a point higher than %(name)s "
                "does: %(dimensions)s."
            )
            % {"name": name, "dimensions": _and([gap_words(d) for d in hidden[:2]])}
        )
    if with_gap and not blind and not hidden:
        reading.summary.append(
            gettext("Self and others agree within half a point on every dimension that has both scores.")
        )

    pair = _widest_pair(data.get("pairs") or [])
    if pair:
        reading.summary.append(
            gettext(
                "Of Kotter's pairs, the widest gap is between %(management)s (%(management_score)s) and its "
                "leadership counterpart %(leadership)s (%(leadership_score)s): leadership minus management "
                "is %(gap)s."
            )
            % {
                "management": pair["management"]["name"],
                "management_score": _number(float(pair["management_others"]["score"])),
                "leadership": pair["leadership"]["name"],
                "leadership_score": _number(float(pair["leadership_others"]["score"])),
                "gap": _signed(float(pair["gap"])),
            }
        )
    divided = [d["name"] for d in dimensions if (d.get("others") or {}).get("agreement") == "divided"]
    if divided:
        reading.summary.append(
            gettext("Raters see %(dimensions)s very differently from one another: the mean hides real differences.")
            % {"dimensions": _and(divided)}
        )
    _read_missing(dimensions, reading, others_expected=True)

    # Suggestions: the weakest dimension, the widest pair, the largest blind spot, the quadrant.
    weakest = _ranked(dimensions, _others_score, highest=False)
    for d in weakest[:1]:
        texts = _bank_dimension(bank, d)
        if texts:
            reading.suggest(
                source=f"dimension:{d['key']}",
                title=d["name"],
                because=gettext("The lowest rated dimension by others: %(score)s.")
                % {"score": _number(_others_score(d) or 0)},
                text=gettext(texts["develop"]),
                question=gettext(texts["question"]),
            )
    if pair:
        direction = "leadership_ahead" if float(pair["gap"]) > 0 else "management_ahead"
        texts = bank.pairs.get(int(pair["pair"]))
        if texts:
            reading.suggest(
                source=f"pair:{pair['pair']}",
                title=gettext("%(management)s ↔ %(leadership)s")
                % {"management": pair["management"]["name"], "leadership": pair["leadership"]["name"]},
                because=gettext("The widest of Kotter's pairs: leadership minus management is %(gap)s.")
                % {"gap": _signed(float(pair["gap"]))},
                text=gettext(texts[direction]),
                question=gettext(texts["question"]),
            )
    for d in blind[:1]:
        texts = _bank_dimension(bank, d)
        if texts:
            reading.suggest(
                source=f"blind_spot:{d['key']}",
                title=gettext("%(dimension)s (blind spot)") % {"dimension": d["name"]},
                because=gettext("Self %(self)s against others %(others)s.")
                % {"self": _number(float(d["self"]["score"])), "others": _number(_others_score(d) or 0)},
                text=gettext(texts["blind_spot"]),
                question=None,
            )
    if quadrant:
        texts = bank.quadrants[quadrant["key"]]
        reading.suggest(
            source=f"quadrant:{quadrant['key']}",
            title=gettext(QUADRANT_LABELS[quadrant["key"]]),
            because=gettext("Where others place %(name)s on the plane.") % {"name": name},
            text=gettext(texts["suggestion"]),
            question=gettext(texts["question"]),
        )
    # Fewer than two so far (no quadrant, no pair): the next weakest dimension.
    for d in weakest[1:]:
        if len(reading.suggestions) >= 2:
            break
        texts = _bank_dimension(bank, d)
        if texts:
            reading.suggest(
                source=f"dimension:{d['key']}",
                title=d["name"],
                because=gettext("Among the lowest rated dimensions by others: %(score)s.")
                % {"score": _number(_others_score(d) or 0)},
                text=gettext(texts["develop"]),
                question=gettext(texts["question"]),
            )


def _read_missing(dimensions: Sequence[Mapping[str, Any]], reading: _Reading, *, others_expected: bool) -> None:
    """Say which dimensions have no score, and why, without naming anyone who did or did not answer."""
    nothing = [d["name"] for d in dimensions if not d.get("groups") and not d.get("others")]
    no_others = [d["name"] for d in dimensions if d.get("groups") and not d.get("others")]
    if nothing:
        reading.summary.append(
            ngettext(
                "%(dimensions)s has no score at all: on its questions no one's ratings can be shown — they "
                "were answered “can't say”, or too few raters of a group gave a rating for a figure. Worth "
                "asking in the debrief what makes this part of the work hard to see.",
                "%(dimensions)s have no score at all: on their questions no one's ratings can be shown — they "
                "were answered “can't say”, or too few raters of a group gave a rating for a figure. Worth "
                "asking in the debrief what makes this part of the work hard to see.",
                len(nothing),
            )
            % {"dimensions": _and(nothing)}
        )
    if no_others and others_expected:
        reading.summary.append(
            ngettext(
                "%(dimensions)s has no Others score: on its questions too few anonymous raters gave a rating "
                "other than “can't say”.",
                "%(dimensions)s have no Others score: on their questions too few anonymous raters gave a "
                "rating other than “can't say”.",
                len(no_others),
            )
            % {"dimensions": _and(no_others)}
        )


def _read_identified_only(data: Mapping[str, Any], bank: TextBank, name: str, reading: _Reading) -> None:
    dimensions: list[Mapping[str, Any]] = list(data.get("dimensions") or [])
    reading.summary.append(
        gettext(
            "Too few peers, direct reports and outside raters gave ratings for any anonymous figure — each "
            "needs at least %(k)s of them, because a figure from fewer could show who said what — so this "
            "reading rests on the two identified views only: %(name)s's own rating and the manager's."
        )
        % {"k": data.get("k"), "name": name}
    )
    self_index = (data.get("indices") or {}).get(SELF)
    self_quadrant = data.get("self_quadrant")
    if self_index and self_quadrant:
        reading.summary.append(
            gettext(
                "By their own rating, %(name)s stands in the quadrant “%(quadrant)s” (management index "
                "%(management)s, leadership index %(leadership)s). Without the anonymous raters this cannot "
                "be compared with how the team sees it."
            )
            % {
                "name": name,
                "quadrant": gettext(QUADRANT_LABELS[self_quadrant["key"]]),
                "management": _number(self_index[MANAGEMENT]["score"]),
                "leadership": _number(self_index[LEADERSHIP]["score"]),
            }
        )
    lowest: dict[str, Mapping[str, Any]] = {}
    for group, frame in (
        (
            MANAGER,
            gettext("The manager rates %(best)s highest (%(best_score)s) and %(weakest)s lowest (%(weakest_score)s)."),
        ),
        (
            SELF,
            gettext(
                "%(name)s rates themself highest on %(best)s (%(best_score)s) and lowest on %(weakest)s "
                "(%(weakest_score)s)."
            ),
        ),
    ):
        ranked = _ranked(dimensions, lambda d, g=group: _group_score(d, g), highest=True)
        if len(ranked) < 2:
            continue
        best, weakest = ranked[0], ranked[-1]
        reading.summary.append(
            frame
            % {
                "name": name,
                "best": best["name"],
                "best_score": _number(_group_score(best, group) or 0),
                "weakest": weakest["name"],
                "weakest_score": _number(_group_score(weakest, group) or 0),
            }
        )
        lowest[group] = weakest
    # A suggestion rests on more than one rater (PRODUCT.md, "Reading the report"): only a
    # dimension that the manager and the person both rate lowest is one.
    agreed = lowest.get(MANAGER)
    texts = _bank_dimension(bank, agreed) if agreed and agreed is lowest.get(SELF) else None
    if agreed and texts:
        reading.suggest(
            source=f"dimension:{agreed['key']}",
            title=agreed["name"],
            because=gettext("Both the manager (%(manager)s) and %(name)s (%(self)s) rate it lowest.")
            % {
                "manager": _number(_group_score(agreed, MANAGER) or 0),
                "self": _number(_group_score(agreed, SELF) or 0),
                "name": name,
            },
            text=gettext(texts["develop"]),
            question=gettext(texts["question"]),
        )
    else:
        reading.summary.append(
            gettext(
                "Suggestions rest on more than one rater's view; the manager and %(name)s do not rate the same "
                "dimension lowest, so none is made here — the debrief questions below are the place to start."
            )
            % {"name": name}
        )
    if not any(_group_score(d, MANAGER) is not None for d in dimensions):
        reading.summary.append(gettext("There is no manager rating in this report."))
    _read_missing(dimensions, reading, others_expected=False)


def report_reading(*, data: Mapping[str, Any], bank: TextBank) -> dict[str, Any]:
    """The summary, suggestions and debrief questions for one report, from its stored figures."""
    name = str((data.get("subject") or {}).get("name") or gettext("this person"))
    reading = _Reading(summary=[], suggestions=[], questions=[gettext(bank.debrief[0])])
    if data.get("anonymous_shown"):
        _read_with_others(data, bank, name, reading)
    else:
        _read_identified_only(data, bank, name, reading)
    for question in bank.debrief[1:]:
        reading.ask(gettext(question))
    return {
        "text_bank": {"name": bank.name, "version": bank.version},
        "summary": reading.summary,
        "suggestions": reading.suggestions,
        "questions": reading.questions[:QUESTIONS_MAX],
    }
