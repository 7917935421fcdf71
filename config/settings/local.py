"""The run command's settings: one machine, a developer reading emails as files."""

from __future__ import annotations

import os

from config.settings.published_keys import LOCAL_RESPONSE_SEAL_KEY

os.environ.setdefault("SECRET_KEY", "local-only-insecure-key-change-me-in-production-0123456789")
os.environ.setdefault("DEBUG", "true")
# A fixed key for the demo machine only: production requires its own (see README).
os.environ.setdefault("RESPONSE_SEAL_KEY", LOCAL_RESPONSE_SEAL_KEY)
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")

from config.settings.base import *  # noqa: F403
