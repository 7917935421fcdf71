"""Benchmark-only settings: production's, with ``bench.urls`` as the URLconf.

Only ``bench/bench_web.py`` starts a server with these (``DJANGO_SETTINGS_MODULE=bench.settings``);
nothing in ``config`` points here, so the two reference views are never served in production.
"""

from __future__ import annotations

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# The benchmark fetches no static file: the manifest that ``{% static %}`` reads is what
# matters, not the compressed copies, which would take collectstatic half a minute to write.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
