from __future__ import annotations

import gc
import logging
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

from config import gunicorn as gunicorn_settings
from config.gunicorn import RedactingLogger
from config.logging import RedactLinkTokens, redact

TOKEN = "Zk3v9Qp2Lr7Xw1Yt5Ua8Sb4Nc6Md0Ef"


def test_redact_hides_survey_and_release_tokens_only() -> None:
    assert redact(f"GET /s/{TOKEN}/ 200") == "GET /s/[redacted]/ 200"
    assert redact(f"/r/{TOKEN}") == "/r/[redacted]"
    assert redact(f"/n/{TOKEN}/") == "/n/[redacted]/"
    assert redact(f"POST /api/survey/{TOKEN}/responses/") == "POST /api/survey/[redacted]/responses/"
    assert redact("/survey/thanks/") == "/survey/thanks/"


def test_django_request_warnings_do_not_carry_tokens() -> None:
    logger = logging.getLogger("django.request")
    record = logger.makeRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", (f"/s/{TOKEN}/",), None)
    RedactLinkTokens().filter(record)
    assert TOKEN not in record.getMessage()
    assert "/s/[redacted]/" in record.getMessage()


def access_atoms(log_format: str) -> tuple[Config, dict[str, Any]]:
    """The access log's atoms for a visit of a survey link that came from a webmail's page."""
    config = Config()
    config.set("access_log_format", log_format)
    logger = RedactingLogger(config)
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/s/{TOKEN}/",
        "PATH_INFO": f"/s/{TOKEN}/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://mail.example/s/{TOKEN}",
    }
    request = SimpleNamespace(headers=[("REFERER", f"https://mail.example/s/{TOKEN}"), ("COOKIE", "a=b")])
    return config, logger.atoms(response, request, environ, SimpleNamespace(seconds=0, microseconds=1000))


def test_gunicorn_access_log_atoms_are_redacted() -> None:
    _, atoms = access_atoms(gunicorn_settings.access_log_format)
    assert not [key for key, value in atoms.items() if isinstance(value, str) and TOKEN in value]
    assert atoms["U"] == "/s/[redacted]/"


def test_an_access_log_format_that_writes_the_referer_gets_it_redacted() -> None:
    config, atoms = access_atoms('%(U)s "%(f)s" "%({Referer}i)s" %(s)s')
    assert atoms["f"] == atoms["{referer}i"] == "https://mail.example/s/[redacted]"
    # What the format does not write is not kept either.
    assert "{cookie}i" not in atoms
    line = config.access_log_format % RedactingLogger.atoms_wrapper_class(atoms)
    assert TOKEN not in line and line.startswith("/s/[redacted]/ ")


def test_gunicorn_error_log_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = RedactingLogger(Config())
    logger.error_log.propagate = True
    with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
        logger.error("Error handling request %s", f"/s/{TOKEN}/")
    assert caplog.records, "the error was logged"
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert "/s/[redacted]/" in caplog.records[-1].getMessage()


def test_a_web_process_freezes_what_it_holds_once_its_views_are_loaded() -> None:
    """Seen to fail with a hook that does nothing: the views not loaded, nothing frozen. Without
    it a full collection walks Django, the apps and their views again: ~55 ms with the
    interpreter lock held, under every thread's requests."""
    config = Config()
    config.set("post_worker_init", gunicorn_settings.post_worker_init)
    gc.unfreeze()
    try:
        # when: gunicorn has loaded the application in a web process
        config.post_worker_init(SimpleNamespace())
        # then: the views are loaded and everything alive is out of the collector's passes
        assert "feedback.apis" in sys.modules and "reports.views" in sys.modules
        assert gc.get_freeze_count() > 10_000
        assert len(gc.get_objects()) < gc.get_freeze_count() / 10
    finally:
        gc.unfreeze()
