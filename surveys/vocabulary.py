"""The product's words, defined once: rater groups, report labels, sides, quadrants, comment questions.

Django-free on purpose: the models build their choices from it and the report scoring
(pure functions, no database) reads it, so a group or a label has one name everywhere —
in the database, the JSON of a report, the API, the emails and the pages.

Three ideas that sound alike are kept apart by their names:

* ``OUTSIDE`` — the rater group of people outside the team (the subject's customers,
  partners, colleagues elsewhere): "Outside raters".
* ``COMBINED`` — the report figure made by pooling anonymous groups that are each too
  small to be shown on their own: "Smaller groups combined".
* ``OTHERS`` — everyone but self whose answers may be shown: the figure the indices, the
  balance and the quadrant come from: "Others".
"""

from __future__ import annotations

# --- Rater groups --------------------------------------------------------------------

SELF = "self"
MANAGER = "manager"
PEER = "peer"
DIRECT_REPORT = "direct_report"
OUTSIDE = "outside"

RATER_GROUPS: tuple[str, ...] = (SELF, MANAGER, PEER, DIRECT_REPORT, OUTSIDE)
GROUP_LABELS: dict[str, str] = {
    SELF: "Self",
    MANAGER: "Manager",
    PEER: "Peers",
    DIRECT_REPORT: "Direct reports",
    OUTSIDE: "Outside raters",
}
# Self and manager answers are identified (the survey says so up front); the three other
# groups are anonymous and fall under the minimum group size k.
IDENTIFIED_GROUPS: tuple[str, ...] = (SELF, MANAGER)
ANONYMOUS_GROUPS: tuple[str, ...] = (PEER, DIRECT_REPORT, OUTSIDE)

# Stored with an answer in place of its anonymous group when that group has fewer than k
# answers in all (decided at close): such a group can never be shown on its own, and a
# stored group of one would name its one member to anyone who reads the database.
SMALL_GROUPS = "small_groups"
# Stored in place of "outside" for a subject who nominated outside raters (decided at
# close): the subject may hold those answers (an address of their own), so they count in
# no figure and are quoted nowhere (reports.scoring).
NOMINATED_OUTSIDE = "nominated_outside"
STORED_ANONYMOUS_GROUPS: tuple[str, ...] = (*ANONYMOUS_GROUPS, SMALL_GROUPS, NOMINATED_OUTSIDE)
# The stored groups whose answers count in a figure: a subject's nominated outside raters
# count in none (they could be addresses of the subject's own).
COUNTED_ANONYMOUS_GROUPS: tuple[str, ...] = (*ANONYMOUS_GROUPS, SMALL_GROUPS)

# How an email names the role a rater answers in, and the survey's opening sentence.
GROUP_ROLES: dict[str, str] = {
    SELF: "yourself (self-assessment)",
    MANAGER: "as their manager",
    PEER: "as a peer",
    DIRECT_REPORT: "as someone who reports to them",
    OUTSIDE: "as someone who works with them from outside the team",
}
SURVEY_ROLES: dict[str, str] = {
    SELF: "You are rating yourself, {name}",
    MANAGER: "You are rating {name} as their manager",
    PEER: "You are rating {name} as a peer",
    DIRECT_REPORT: "You are rating {name} as a direct report",
    OUTSIDE: "You are rating {name} as someone who works with them from outside the team",
}

# --- Report figures ------------------------------------------------------------------

COMBINED = "combined"
OTHERS = "others"
FIGURE_LABELS: dict[str, str] = {
    **GROUP_LABELS,
    SMALL_GROUPS: "Smaller groups",
    NOMINATED_OUTSIDE: GROUP_LABELS[OUTSIDE],
    COMBINED: "Smaller groups combined",
    OTHERS: "Others",
}
# The order in which a report lists the figures of one dimension or item.
FIGURE_ORDER: tuple[str, ...] = (SELF, MANAGER, PEER, DIRECT_REPORT, OUTSIDE, COMBINED, OTHERS)

# --- Kotter's two sides and the quadrants of the balance plane -----------------------

MANAGEMENT = "management"
LEADERSHIP = "leadership"
SIDES: tuple[str, ...] = (MANAGEMENT, LEADERSHIP)
SIDE_LABELS: dict[str, str] = {MANAGEMENT: "Management", LEADERSHIP: "Leadership"}

STRONG_BOTH = "strong_both"
CHAOS_RISK = "chaos_risk"
BUREAUCRACY_RISK = "bureaucracy_risk"
DEVELOPING_BOTH = "developing_both"
QUADRANT_LABELS: dict[str, str] = {
    STRONG_BOTH: "Strong on both",
    CHAOS_RISK: "Strong leadership only — chaos risk",
    BUREAUCRACY_RISK: "Strong management only — bureaucracy risk",
    DEVELOPING_BOTH: "Developing on both",
}

# --- Free-text questions -------------------------------------------------------------

KEEP_DOING = "keep_doing"
START_DOING = "start_doing"
COMMENT_QUESTIONS: tuple[str, ...] = (MANAGEMENT, LEADERSHIP, KEEP_DOING, START_DOING)
# The heading of each question's comments in a report.
COMMENT_TITLES: dict[str, str] = {
    MANAGEMENT: "Management",
    LEADERSHIP: "Leadership",
    KEEP_DOING: "Keep doing",
    START_DOING: "Start doing",
}
# The question as the survey asks it.
COMMENT_PROMPTS: dict[str, str] = {
    MANAGEMENT: "Comments on management (optional)",
    LEADERSHIP: "Comments on leadership (optional)",
    KEEP_DOING: "What should they keep doing? (optional)",
    START_DOING: "What should they start doing? (optional)",
}
