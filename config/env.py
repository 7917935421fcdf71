"""Typed access to environment variables that fails loudly on a bad value.

A typo in a deployment variable (``DEBUG=ture``, ``CONN_MAX_AGE=sixty``) must stop the
process at start-up rather than silently fall back to a default.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a boolean (use true/false).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"Environment variable {name}={value!r} is not a number.") from None


def env_keys(name: str, *, length: int = 32) -> list[bytes]:
    """A comma-separated list of secret keys, each URL-safe base64 of ``length`` random bytes.

    Required: a missing or malformed key must stop the process, never fall back.
    """
    keys = []
    for position, part in enumerate(env_list(name, []), start=1):
        try:
            key = key_decode(part)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ImproperlyConfigured(f"Key {position} of {name} is not URL-safe base64.") from None
        if len(key) != length:
            raise ImproperlyConfigured(f"Key {position} of {name} must be {length} bytes ({len(key)} given).")
        keys.append(key)
    if not keys:
        raise ImproperlyConfigured(f"Environment variable {name} is required.")
    return keys


def key_decode(text: str) -> bytes:
    """URL-safe base64, with or without its ``=`` padding."""
    return base64.b64decode(text.encode("ascii") + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)


_RATE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)?([smhd])$")


def env_rate(name: str, default: str) -> str:
    """A throttle rate, ``count/period``: ``10/15m`` is ten per fifteen minutes."""
    value = os.environ.get(name, default).strip()
    if not _RATE.match(value):
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not a rate like 10/15m (count / period in s, m, h or d)."
        )
    return value


def redis_database_url(url: str, *, offset: int) -> str:
    """``url`` with its database number moved by ``offset``: ``redis://h:6379/0`` → ``redis://h:6379/1``."""
    match = re.match(r"^(.*?)/([0-9]+)$", url)
    if match is None:
        return f"{url.rstrip('/')}/{offset}"
    return f"{match.group(1)}/{int(match.group(2)) + offset}"
