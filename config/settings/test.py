"""Test settings: the embedded (or given) PostgreSQL and Redis, fast hashing, mail in memory."""

from __future__ import annotations

import os

from config.settings.published_keys import TEST_RESPONSE_SEAL_KEY

os.environ.setdefault("SECRET_KEY", "test-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("RESPONSE_SEAL_KEY", TEST_RESPONSE_SEAL_KEY)

from config.settings.base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PUBLIC_BASE_URL = "http://testserver"
# Static files come straight from the app directories; nothing is collected for tests.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
# Counts move at once in tests; the snapshot period has its own test.
PROGRESS_SNAPSHOT_SECONDS = 0
