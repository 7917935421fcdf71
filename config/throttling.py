"""Throttles on the two doors that can be knocked on without an account: signing in and secret links.

Counters live in the Redis cache (``CACHES["default"]``), shared by every web process,
and are counted by django-ratelimit with an atomic increment, so parallel requests
cannot slip past a limit. A sign-in lock-out is a key in that cache too; a link lock-out
is a row in PostgreSQL (``surveys.LinkLockout``), because every request to a secret link
reads it: the survey API's submit in the very statement that reads its link, the others
in one statement before their view runs, so that none of them waits on Redis as well.
Only failures count — a wrong password, a link that leads nowhere — so people answering
normally are never slowed down, however many of them share one office address:

* sign-in (the login page, the admin's, ``POST /api/auth/token/``): once
  ``THROTTLE_SIGN_IN_PER_USERNAME`` failures for one username, or
  ``THROTTLE_SIGN_IN_PER_IP`` from one address, fall within one period, every attempt
  is refused for a whole period — the right password included, or guessing would just
  go on.
* secret links (``/s/``, ``/api/survey/``, ``/n/``, ``/r/``): once
  ``THROTTLE_LINK_MISSES_PER_IP`` unknown or dead links come from one address, that
  address gets 429 on every link for a whole period.

When Redis cannot be reached the throttles let requests through (and log it): the
service stays usable, and Redis being down is already reported by ``/healthz``. A link
lock-out already recorded in PostgreSQL still holds.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest
from django_ratelimit.core import get_usage

logger = logging.getLogger(__name__)

SIGN_IN_USERNAME = "sign-in:username"
SIGN_IN_IP = "sign-in:ip"
LINK_MISSES = "link-misses:ip"


def client_ip(request: Any) -> str:
    """The client's address: ``REMOTE_ADDR``, or the entry ``TRUSTED_PROXY_HOPS`` from the
    end of ``X-Forwarded-For`` when the app runs behind that many proxies of ours.

    Only entries added by our own proxies are trusted: anything before them is whatever
    the client chose to send.
    """
    hops = int(settings.TRUSTED_PROXY_HOPS)
    address = str(request.META.get("REMOTE_ADDR") or "unknown")
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    return _bucket(address)


# Parsed once per address while it keeps coming (a submit's own share of its processor time
# was a few per cent for this and the HMAC below). Each process so keeps its last clients'
# addresses beside their HMACs, in memory that also holds SECRET_KEY: at most 1,024 of them,
# each REMOTE_ADDR or the entry our own proxies wrote (TRUSTED_PROXY_HOPS).
@lru_cache(maxsize=1024)
def _bucket(address: str) -> str:
    """An IPv6 client counts as its /64: one connection usually holds a whole /64, and
    counting each address alone would let it walk past every limit."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _period(rate: str) -> int:
    """Seconds of the window of a ``count/period`` rate: ``10/15m`` → 900."""
    period = rate.split("/", 1)[1]
    return int(period[:-1] or 1) * PERIOD_SECONDS[period[-1]]


def _lock_key(group: str, value: str) -> str:
    return f"throttle-lock:{group}:{hashlib.sha256(value.encode()).hexdigest()}"


def _locked_for(group: str, value: str) -> int | None:
    """Seconds left on a lock-out of ``value`` in ``group``, or ``None``."""
    try:
        until = cache.get(_lock_key(group, value))
    except Exception as error:  # the cache is down: fail open, loudly
        logger.warning("throttle %s not checked: %s", group, type(error).__name__)
        return None
    if until is None:
        return None
    return max(1, math.ceil(float(until) - time.time()))


def _limit_reached(request: Any, *, group: str, value: str, rate: str) -> bool:
    """Count one failure of ``value`` in ``group``; whether this one reached the limit.

    The counting is django-ratelimit's (an atomic increment per window). The lock-out that
    follows is recorded apart, so that reaching the limit near the end of a window still
    costs the full period rather than the few seconds left of that window.
    """
    try:
        usage = get_usage(request, group=group, key=lambda group, request: value, rate=rate, increment=True)
    except Exception as error:
        logger.warning("throttle %s not counted: %s", group, type(error).__name__)
        return False
    return usage is not None and usage["count"] >= usage["limit"]


def _failure_record(request: Any, *, group: str, value: str, rate: str) -> None:
    """Count one failure; the one that reaches the limit locks ``value`` out for a whole period."""
    if not _limit_reached(request, group=group, value=value, rate=rate):
        return
    period = _period(rate)
    try:
        cache.add(_lock_key(group, value), time.time() + period, timeout=period)
    except Exception as error:
        logger.warning("throttle %s not locked: %s", group, type(error).__name__)


def _username(username: str) -> str:
    return username.strip().casefold()


def minutes(seconds: int) -> str:
    count = max(1, math.ceil(seconds / 60))
    return f"{count} minute{'s' if count != 1 else ''}"


def sign_in_wait(request: Any, *, username: str) -> int | None:
    """Seconds this sign-in must wait (too many failures for the username or the address), or ``None``."""
    waits = [_locked_for(SIGN_IN_USERNAME, _username(username)), _locked_for(SIGN_IN_IP, client_ip(request))]
    found = [wait for wait in waits if wait is not None]
    return max(found) if found else None


def sign_in_failure_record(request: Any, *, username: str) -> None:
    _failure_record(
        request, group=SIGN_IN_USERNAME, value=_username(username), rate=settings.THROTTLE_SIGN_IN_PER_USERNAME
    )
    _failure_record(request, group=SIGN_IN_IP, value=client_ip(request), rate=settings.THROTTLE_SIGN_IN_PER_IP)


def sign_in_locked_message(seconds: int) -> str:
    return (
        "Too many failed sign-ins for this account or from this network. "
        f"For your security, signing in is paused: try again in {minutes(seconds)}."
    )


class ThrottledModelBackend(ModelBackend):
    """Django's username/password check, refusing while a sign-in is throttled.

    Every way in that checks a password (our login page, the admin's, the token
    endpoint) goes through ``authenticate()`` and so through here: none of them can be
    used to go on guessing once a limit is reached. Calls without a request (the test
    client's ``login``, management commands) are not throttled.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return super().authenticate(request, username=username, password=password, **kwargs)
        name = str(username or "")
        if sign_in_wait(request, username=name) is not None:
            # Stops authenticate() at once: no other backend is asked either.
            raise PermissionDenied("sign-in throttled")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and password is not None:
            sign_in_failure_record(request, username=name)
        return user


def link_address(request: Any) -> str:
    """What a link lock-out is recorded under: an HMAC of the client's address (as counted),
    keyed with the secret key. A plain digest of an IPv4 address is undone by trying all 2³²
    of them; this one, in the table, its WAL or a backup, says nothing without the key."""
    return _address_hmac(settings.SECRET_KEY, client_ip(request))


@lru_cache(maxsize=1024)
def _address_hmac(secret_key: str, address: str) -> str:
    return hmac.new(secret_key.encode(), address.encode(), hashlib.sha256).hexdigest()


def link_wait_sql() -> str:
    """An SQL expression: the whole seconds left on the link lock-out of the address given as
    its one parameter (``link_address``), or NULL: rounded up, so at least 1 while it lasts.
    For a statement to read beside its own."""
    from surveys.models import LinkLockout

    return (
        "(SELECT ceil(extract(epoch FROM until - now()))::integer "  # noqa: S608 — a table name
        f"FROM {LinkLockout._meta.db_table} WHERE address = %s AND until > now())"
    )


def link_wait(request: Any) -> int | None:
    """Seconds this address must wait before opening any secret link again, or ``None``."""
    from config.database import server_binding_cursor

    with server_binding_cursor() as cursor:
        cursor.execute(f"SELECT {link_wait_sql()}", [link_address(request)])
        (wait,) = cursor.fetchone()
    return wait


def link_miss_record(request: Any) -> None:
    """Count a link that leads nowhere; the one that reaches the limit locks the address out."""
    from config.database import server_binding_cursor
    from surveys.models import LinkLockout

    if not _limit_reached(
        request, group=LINK_MISSES, value=client_ip(request), rate=settings.THROTTLE_LINK_MISSES_PER_IP
    ):
        return
    table = LinkLockout._meta.db_table
    address = link_address(request)
    try:
        with server_binding_cursor() as cursor:
            # A lock-out under way is not lengthened (more misses while locked cost no more);
            # one run out is renewed.
            cursor.execute(
                f"INSERT INTO {table} (address, until) VALUES (%s, now() + make_interval(secs => %s)) "  # noqa: S608 — a table name
                f"ON CONFLICT (address) DO UPDATE SET until = EXCLUDED.until WHERE {table}.until <= now()",
                [address, _period(settings.THROTTLE_LINK_MISSES_PER_IP)],
            )
        # Those of other addresses that ran out go on the way.
        link_lockouts_purge(keep=address)
    except DatabaseError as error:  # the answer to the link stands; the lock-out is logged as missed
        logger.warning("throttle %s not locked: %s", LINK_MISSES, type(error).__name__)


def link_lockouts_purge(*, keep: str = "") -> int:
    """Delete the lock-outs that ran out (all but ``keep``'s); how many.

    Each row holds a digest of a client's address, to be kept no longer than it locks
    anything out: this runs whenever another lock-out is recorded, and on the beat schedule
    (``config.link_lockouts_purge``) for a service where none is. The statement waits for no
    lock: two purges at once, or a purge beside a lock-out being renewed, never wait on each
    other; a row skipped goes at the next one.
    """
    from config.database import server_binding_cursor
    from surveys.models import LinkLockout

    table = LinkLockout._meta.db_table
    with server_binding_cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE address IN (SELECT address FROM {table} "  # noqa: S608 — a table name
            "WHERE until <= now() AND address <> %s FOR UPDATE SKIP LOCKED)",
            [keep],
        )
        return cursor.rowcount
