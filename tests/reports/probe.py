"""A small questionnaire for the scoring and anonymity tests: Kotter's six dimensions, two items each.

Two questions per dimension keep the attacker's enumeration small while items and
dimensions still get different answer patterns.
"""

from __future__ import annotations

from reports.scoring import DimensionSpec, ItemSpec
from tests.reports.adversary import Dimension

KEYS = (
    ("plan", "management", 1),
    ("organize", "management", 2),
    ("control", "management", 3),
    ("direct", "leadership", 1),
    ("align", "leadership", 2),
    ("motivate", "leadership", 3),
)

# As the questionnaire loader takes it (``surveys.services.questionnaire_load``).
QUESTIONNAIRE = {
    "name": "Anonymity probe",
    "version": 1,
    "dimensions": [
        {"key": key, "side": side, "pair": pair, "name": key.title(), "items": [f"{key} first", f"{key} second"]}
        for key, side, pair in KEYS
    ],
}
# As the scoring takes it.
SPECS = tuple(
    DimensionSpec(
        key=key,
        name=key.title(),
        side=side,
        pair=pair,
        items=(ItemSpec(f"{key}-1", f"{key} first"), ItemSpec(f"{key}-2", f"{key} second")),
    )
    for key, side, pair in KEYS
)
# As the attacker knows it.
DIMENSIONS = tuple(
    Dimension(key=spec.key, side=spec.side, pair=spec.pair, items=tuple(item.code for item in spec.items))
    for spec in SPECS
)
CODES = [code for dimension in DIMENSIONS for code in dimension.items]
