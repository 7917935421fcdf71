"""Logging helpers."""

from __future__ import annotations

import logging
import re

from config.token_routes import TOKEN_ROUTES

# Survey (page and API), nomination and report-release links carry a secret token in
# their path; access logs and Django's "Not Found: <path>" warnings would otherwise write
# it to stdout, where anyone with log access could answer in somebody else's name. The
# prefixes come from the one registry of token routes, longest first.
_PREFIXES = "|".join(re.escape(route.prefix) for route in sorted(TOKEN_ROUTES, key=lambda r: -len(r.prefix)))
LINK_TOKEN = re.compile(rf"/({_PREFIXES})/[A-Za-z0-9_\-]{{8,}}")


def redact(text: str) -> str:
    return LINK_TOKEN.sub(r"/\1/[redacted]", text)


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if record.args:
            if isinstance(record.args, dict):
                record.args = {key: redact(v) if isinstance(v, str) else v for key, v in record.args.items()}
            else:
                record.args = tuple(redact(v) if isinstance(v, str) else v for v in record.args)
        return True
