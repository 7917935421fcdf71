"""gunicorn configuration (``gunicorn -c config/gunicorn.py config.wsgi``); values from the environment."""

from __future__ import annotations

import gc
import os
import re
from functools import lru_cache
from importlib import import_module
from typing import Any

from gunicorn.glogging import Logger

from config.logging import RedactLinkTokens, redact

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"
access_log_format = 'access method=%(m)s path="%(U)s" status=%(s)s bytes=%(b)s duration_ms=%(M)s'


class RedactingLogger(Logger):
    """Access and error logs without link tokens (they sit in the request path)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # "Error handling request /s/<token>/" and friends go through the error log.
        self.error_log.addFilter(RedactLinkTokens())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        # Only the atoms the format writes, each redacted: every request and response header is
        # an atom too, and redacting the cookies of each request cost more than writing the line.
        written = _written_atoms(self.cfg.access_log_format)
        return {
            key: redact(value) if isinstance(value, str) else value for key, value in atoms.items() if key in written
        }


@lru_cache(maxsize=8)
def _written_atoms(log_format: str) -> frozenset[str]:
    """The atoms ``log_format`` writes; header atoms (``{name}i``) are looked up in lower case."""
    names = re.findall(r"%\(([^)]+)\)", log_format)
    return frozenset(name.lower() if name.startswith("{") else name for name in names)


logger_class = RedactingLogger


def post_worker_init(worker: Any) -> None:
    """Load the URL configuration and its views now, then freeze what the process holds.

    Everything alive once the application is loaded (Django, the apps, their URL patterns,
    views and serializers) lives as long as the process. Unfrozen, each of the collector's
    full passes walks it again — about 55 ms with the interpreter lock held, every request
    of the process's threads waiting behind it: the slowest hundredth of the answers.
    """
    from django.conf import settings

    import_module(settings.ROOT_URLCONF)  # and with it every app's URLs and views
    gc.collect()
    gc.freeze()
