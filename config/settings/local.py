"""The run command's settings: one machine, a developer reading emails as files."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "local-only-insecure-key-change-me-in-production-0123456789")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")

from config.settings.base import *  # noqa: F403
