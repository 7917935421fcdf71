"""Production settings: HTTPS only, secrets and hosts from the environment."""

from __future__ import annotations

from config.env import env_bool, env_int, key_decode
from config.settings.base import *  # noqa: F403
from config.settings.base import RESPONSE_SEAL_KEYS, SECRET_KEY
from config.settings.published_keys import PUBLISHED

if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ValueError("SECRET_KEY must be at least 50 characters of random text in production.")
if set(RESPONSE_SEAL_KEYS) & {key_decode(key) for key in PUBLISHED}:
    raise ValueError("RESPONSE_SEAL_KEY must be a key of your own in production: the demo and test keys are public.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
