"""What text the service accepts, wherever it enters: forms, JSON, CSV, the survey.

PostgreSQL cannot store a lone UTF-16 surrogate (``"\\ud800"`` in JSON) or a NUL, and
control characters other than tab and line breaks are never typed: they come from
tampered requests or binary pasted by mistake, and would break the CSV export, email
headers or a terminal reading the logs. Each is refused with a message saying which
character and where, so the person can find and remove it.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# C0 controls except tab, line feed and carriage return; DEL and the C1 controls; surrogates.
FORBIDDEN_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as typed, or ``None`` when it can."""
    match = FORBIDDEN_CHARACTER.search(text)
    if match is None:
        return None
    code = ord(match.group())
    where = f"U+{code:04X}, character {match.start() + 1}"
    if 0xD800 <= code <= 0xDFFF:
        return f"Contains half of a character (an unpaired surrogate, {where}); remove it."
    return f"Contains an invisible control character ({where}); remove it."


@deconstructible
class TextValidator:
    """A form field validator applying ``text_problem``."""

    def __call__(self, value: Any) -> None:
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ValidationError(problem, code="forbidden_character")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextValidator)

    def __hash__(self) -> int:
        return hash(TextValidator)


class TextForm(forms.Form):
    """A form whose every text field (names, emails, free text) refuses what ``text_problem`` names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                field.validators.append(TextValidator())
