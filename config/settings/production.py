"""Production settings: HTTPS only, secrets and hosts from the environment."""

from __future__ import annotations

from config.env import env_bool, env_int
from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY

if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ValueError("SECRET_KEY must be at least 50 characters of random text in production.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
