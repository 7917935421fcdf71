"""Secret link tokens: generated from ``secrets``, stored only as SHA-256, URLs from settings.

The paths that carry tokens are registered in ``config.token_routes``.
"""

from __future__ import annotations

import hashlib
import secrets

from config.token_routes import NOMINATION, SURVEY, token_url

# 32 random bytes = 256 bits, well above the 128-bit floor; URL-safe base64 is 43 characters.
TOKEN_BYTES = 32
# Anything longer than a token this module makes is not looked up at all.
TOKEN_MAX_LENGTH = 200


def token_new() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def survey_url(token: str) -> str:
    return token_url(SURVEY, token)


def nomination_url(token: str) -> str:
    return token_url(NOMINATION, token)
