"""The JSON parser of every API endpoint: a size limit, a depth limit and the text policy.

DRF's own parser reads the body whatever its size (``DATA_UPLOAD_MAX_MEMORY_SIZE`` guards
form posts only), hands deeply nested JSON to a recursive decoder (a ``RecursionError``
and a 500 at about a thousand levels) and lets strings that PostgreSQL cannot store
reach the database. Here each of these is a 4xx that says what is wrong and where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, serializers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils.json import strict_constant

from config.text import FORBIDDEN_CHARACTER, text_problem

# Our payloads are two levels deep (``{"ratings": {code: 4}}``); twenty is generous.
MAX_JSON_DEPTH = 20


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit // 1024} KB.")


def body_limit() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit`` (one pass, no recursion)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _field_error(path: list[str], message: str) -> dict[str, Any]:
    """``{"comments": {"management": [message]}}`` for path ``["comments", "management"]``."""
    error: Any = [message]
    for key in reversed(path):
        error = {key: error}
    return error if isinstance(error, dict) else {"non_field_errors": error}


# JSON escapes that decode to a character the text policy refuses (backspace, form feed, and
# any \u escape); the others (\n, \t, quotes, slashes) decode to allowed ones.
_REFUSABLE_ESCAPE = re.compile(r"\\[bfu]")


def _text_errors(data: Any, text: str) -> dict[str, Any] | None:
    """The first string (value or key) the text policy refuses, as a DRF field error.

    ``data`` was decoded from ``text``: a body with no refused character and no escape that
    could make one holds no refused string, so the values are walked only otherwise (a
    look at the whole body costs a fraction of visiting each of its values)."""
    if FORBIDDEN_CHARACTER.search(text) is None and _REFUSABLE_ESCAPE.search(text) is None:
        return None
    stack: list[tuple[Any, list[str]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                return _field_error(path, problem)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if problem := text_problem(key):
                    return _field_error(path, f"A field name is not valid: {problem}")
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, str(index)]) for index, item in enumerate(value))
    return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = body_limit()
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and str(declared).isascii() and str(declared).isdigit() and int(declared) > limit:
            raise RequestTooLarge(limit)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(limit)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as error:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from error
        if _nesting_exceeds(text, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep.")
        try:
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        if errors := _text_errors(data, text):
            raise serializers.ValidationError(errors)
        return data
