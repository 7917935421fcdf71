"""A urlencoded form read into request.POST (config/forms.py): exactly what Django's QueryDict reads."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.test import RequestFactory
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.forms import FORM_CONTENT_TYPE, form_fields, form_fields_parse

# Pieces a hostile or broken client could put in a body: separators, escapes whole and
# broken, plus signs, odd and invalid UTF-8, a NUL, a key without "=".
PIECES = st.sampled_from(
    [
        b"&",
        b"=",
        b"+",
        b"%",
        b"%2",
        b"%26",
        b"%3D",
        b"%C3%A9",
        b"%FF",
        b"\xff",
        b"\xc3\xa9",
        b"\x00",
        b";",
        b"a",
        b"rating-MGT-1",
        b"4",
        b" ",
    ]
)
BODIES = st.lists(PIECES | st.binary(max_size=6), max_size=40).map(b"".join)


def as_django_reads_it(body: bytes) -> QueryDict:
    return QueryDict(body, encoding="utf-8")


@hypothesis_settings(max_examples=400, deadline=None)
@given(BODIES)
def test_any_body_is_read_as_djangos_querydict_reads_it(body: bytes) -> None:
    expected = as_django_reads_it(body)
    fields = form_fields(body)
    assert list(fields.lists()) == list(expected.lists())
    assert fields.encoding == expected.encoding == "utf-8"
    assert fields.urlencode() == expected.urlencode()


def test_repeated_keys_keep_every_value_in_order_and_the_result_is_immutable() -> None:
    fields = form_fields(b"a=1&b=2&a=3&a=&c")
    assert fields.getlist("a") == ["1", "3", ""] and fields["a"] == ""
    assert fields.getlist("c") == [""]
    assert fields == as_django_reads_it(b"a=1&b=2&a=3&a=&c")
    with pytest.raises(AttributeError):
        fields["a"] = "x"
    copy = fields.copy()
    copy["a"] = "x"
    assert copy.getlist("a") == ["x"] and fields.getlist("a") == ["1", "3", ""]


@pytest.mark.parametrize("count, refused", [(10, False), (11, True)])
def test_more_fields_than_the_setting_allows_are_refused_as_django_refuses_them(
    settings: Any, count: int, refused: bool
) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{number}=x" for number in range(count)).encode()
    if refused:
        with pytest.raises(TooManyFieldsSent):
            as_django_reads_it(body)
        with pytest.raises(TooManyFieldsSent):
            form_fields(body)
    else:
        assert form_fields(body) == as_django_reads_it(body)


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=x", "application/json", f"{FORM_CONTENT_TYPE}; charset=latin-1"],
)
def test_what_it_does_not_read_as_django_does_is_left_to_django(content_type: str) -> None:
    request = RequestFactory().post("/", b"a=1", content_type=content_type)
    form_fields_parse(request)
    assert "_post" not in vars(request)


def test_a_get_and_a_body_already_read_as_a_stream_are_left_to_django() -> None:
    get = RequestFactory().get("/?a=1")
    form_fields_parse(get)
    assert "_post" not in vars(get)
    streamed = RequestFactory().post("/", b"a=1", content_type=FORM_CONTENT_TYPE)
    streamed.read()
    form_fields_parse(streamed)
    assert "_post" not in vars(streamed)


@pytest.mark.parametrize("content_type", [FORM_CONTENT_TYPE, f"{FORM_CONTENT_TYPE}; charset=UTF-8"])
def test_a_form_post_gets_its_fields_and_no_files(content_type: str) -> None:
    request = RequestFactory().post("/", b"a=1&b=%C3%A9", content_type=content_type)
    form_fields_parse(request)
    # Read here, not later by Django.
    assert "_post" in vars(request) and "_files" in vars(request)
    assert as_django_reads_it(b"a=1&b=%C3%A9") == request.POST and request.POST["b"] == "é"
    assert not request.FILES


def test_a_client_gone_mid_body_is_left_to_django_which_refuses_the_form() -> None:
    class GoneAway:
        """The socket under a body whose client dropped the connection, as the WSGI server reads it."""

        def read(self, *args: Any) -> bytes:
            raise ConnectionResetError("the connection closed")

        readline = read

    request = RequestFactory().post("/", b"a=1", content_type=FORM_CONTENT_TYPE, **{"wsgi.input": GoneAway()})
    form_fields_parse(request)
    assert "_post" not in vars(request)
    # What Django makes of it: an empty form (its CSRF check then finds no token: 403).
    assert not request.POST and isinstance(request.POST, QueryDict) and not request.FILES
