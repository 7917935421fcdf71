"""Settings of the processes the fault tests start (gunicorn, Celery worker and beat): the
test settings, with real SMTP delivery to the test's own sink."""

from __future__ import annotations

import os

from config.settings.test import *  # noqa: F403
from config.settings.test import MIDDLEWARE as TEST_MIDDLEWARE

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

# Deliberately broken variants, to show that the fault tests bite: "no_friendly_pages"
# answers a lost database the way Django does by itself (a raw 500 with its traceback
# under DEBUG, as the run command runs); "no_health_check" keeps connections without
# checking them before a request's first statement.
if os.environ.get("STACK_BROKEN") == "no_friendly_pages":
    DEBUG = True
    MIDDLEWARE = [entry for entry in TEST_MIDDLEWARE if entry != "config.exceptions.DatabaseUnavailableMiddleware"]
if os.environ.get("STACK_BROKEN") == "no_health_check":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
