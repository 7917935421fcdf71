"""Service-level endpoints: health."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.throttling import sign_in_locked_message, sign_in_wait

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    """Write and read back a key through the broker's Redis."""
    key = f"healthz:{time.monotonic_ns()}"
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.set(key, "ok", ex=10)
        if client.get(key) != b"ok":
            raise RuntimeError("the value written was not read back")
        client.delete(key)
    finally:
        client.close()


def _check_worker() -> None:
    """Ask the workers over the broker's control channel.

    A control ping is answered by each worker's consumer even while its pool is busy
    building reports, so a long queue does not make a healthy worker look dead.
    """
    from config.celery import app

    # The first answer is enough (``limit=1``): waiting out the whole timeout on every
    # probe would let a few unauthenticated requests a second occupy the web server's
    # threads. A worker seen alive moments ago is not asked again.
    if time.monotonic() - _worker_seen_at[0] < WORKER_SEEN_FOR_SECONDS:
        return
    if not app.control.ping(timeout=3, limit=1):
        raise RuntimeError("no worker answered within 3 seconds")
    _worker_seen_at[0] = time.monotonic()


WORKER_SEEN_FOR_SECONDS = 10
_worker_seen_at = [float("-inf")]


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and the broker answer; 503 naming what failed ("database: unavailable").

    ``?worker=1`` also asks the Celery workers, through the broker, whether one is alive.
    The answer is public (probes call it unauthenticated), so it names the component
    and nothing more; the reason — an address, a database name, the error — goes to
    the log for the operator.
    """
    checks = {"database": _check_database, "broker": _check_broker}
    if request.GET.get("worker") == "1":
        checks["worker"] = _check_worker
    failures = []
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # any failure means "unhealthy", whatever its class
            logger.warning("healthz: %s unavailable: %s: %s", name, type(error).__name__, error)
            failures.append(f"{name}: unavailable")
    if failures:
        return JsonResponse({"status": "unavailable", "failures": failures}, status=503)
    return JsonResponse({"status": "ok", "checked": list(checks)})


class SignInView(LoginView):
    """Django's login page, refusing (429) while sign-in is throttled, with the reason and the wait.

    The check comes before the password is looked at, so a throttled attacker learns
    nothing from the answer, not even when the password was right.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", ""))
        wait = sign_in_wait(request, username=username)
        if wait is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(request, initial={"username": username[:150]})
        context = self.get_context_data(form=form, locked_out=sign_in_locked_message(wait))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The signed-in landing page: what this user can do, by role."""
    return render(request, "home.html")
