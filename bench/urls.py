"""The project's URLs plus two bare reference views, for ``bench/bench_web.py`` only (see ``bench/settings.py``).

``/bench/hello/`` answers a short text and ``/bench/insert/`` stores the request body with
one INSERT (one commit): what the same gunicorn, middleware and PostgreSQL can do at most
for a page and for a write, to measure the product's pages against. ``/bench/insert-sealed/``
seals the body as a submit seals an answer to the survey's questionnaire (one fixed-size blob
of about 34 KB) and stores that with one INSERT: the part of a submit's cost that the
fixed-size sealed answer sets.
"""

from __future__ import annotations

from functools import lru_cache

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.database import server_binding_cursor
from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as project_urlpatterns
from feedback.sealing import answer_seal
from feedback.selectors import questionnaire_item_codes
from surveys.models import Questionnaire

# The table exists only in the benchmark's throw-away database (bench_web.py creates it).
INSERT_TABLE = "bench_insert"

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


@require_GET
def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello", content_type="text/plain")


@csrf_exempt
@require_POST
def insert(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {INSERT_TABLE} (body) VALUES (%s)", [request.body])  # noqa: S608 — a constant
    return HttpResponse("stored", content_type="text/plain", status=201)


@lru_cache(maxsize=1)
def _default_item_codes() -> tuple[str, ...]:
    """The item codes of the questionnaire the benchmark's survey asks: its blobs' size."""
    questionnaire = Questionnaire.objects.get(name="Kotter balance", version=1)
    return questionnaire_item_codes(questionnaire_id=questionnaire.pk)


@csrf_exempt
@require_POST
def insert_sealed(request: HttpRequest) -> HttpResponse:
    blob = answer_seal(
        cycle_id=0,
        payload={"kind": "bench"},
        texts={"keep_doing": request.body.decode()[:200]},
        item_codes=_default_item_codes(),
    )
    # Sent as a submit sends it: bound on the server, in binary.
    with server_binding_cursor() as cursor:
        cursor.execute(f"INSERT INTO {INSERT_TABLE} (body) VALUES (%b)", [blob])  # noqa: S608 — a constant
    return HttpResponse("stored", content_type="text/plain", status=201)


urlpatterns = [
    path("bench/hello/", hello),
    path("bench/insert/", insert),
    path("bench/insert-sealed/", insert_sealed),
    *project_urlpatterns,
]
