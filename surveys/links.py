"""Secret link tokens: generated from ``secrets``, stored only as SHA-256, URLs from settings."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

# 32 random bytes = 256 bits, well above the 128-bit floor; URL-safe base64 is 43 characters.
TOKEN_BYTES = 32


def token_new() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def public_url(path: str) -> str:
    """An absolute URL from the configured base, never from the request's Host header."""
    return f"{settings.PUBLIC_BASE_URL}{path}"


def survey_url(token: str) -> str:
    # The feedback app serves this path (feedback/urls.py); log redaction relies on it too.
    return public_url(f"/s/{token}/")
