"""Sign-in and secret links are throttled on failures, in Redis; people answering normally never are."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from config.embedded import free_port
from surveys.models import Cycle, Group, Invitation
from surveys.services import invitation_link_create
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed sign-ins for this account or from this network"


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.THROTTLE_SIGN_IN_PER_USERNAME = "5/15m"
    settings.THROTTLE_SIGN_IN_PER_IP = "8/15m"
    settings.THROTTLE_LINK_MISSES_PER_IP = "5/15m"


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def token_for(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_lock_the_account_out_of_the_login_page(client: Client, manager: Any) -> None:
    # given: the default limit of ten failures for one username
    for _ in range(10):
        assert sign_in(client, "alice", "wrong").status_code == 200
    # when: the right password comes next
    response = sign_in(client, "alice", PASSWORD)
    # then: it is refused with the reason and the wait, keeping the username typed
    assert response.status_code == 429
    html = response.content.decode()
    assert LOCKED in html and "try again in 15 minutes" in html
    assert 'value="alice"' in html
    assert int(response["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_the_lock_counts_the_username_however_it_is_typed(client: Client, manager: Any, small_limits: None) -> None:
    for spelling in ["alice", "ALICE", " Alice", "alicE", "alice "]:
        sign_in(client, spelling, "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_wrong_passwords_on_the_token_endpoint_answer_429(client: Client, manager: Any, small_limits: None) -> None:
    for _ in range(5):
        assert token_for(client, "alice", "wrong").status_code == 400
    response = token_for(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert response.json()["detail"].startswith(LOCKED)
    assert int(response["Retry-After"]) > 0


def test_the_page_and_the_token_endpoint_share_one_count(client: Client, manager: Any, small_limits: None) -> None:
    for _ in range(3):
        sign_in(client, "alice", "wrong")
    for _ in range(2):
        token_for(client, "alice", "wrong")
    assert token_for(client, "alice", PASSWORD).status_code == 429
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_the_admin_login_cannot_be_used_to_go_on_guessing(client: Client, small_limits: None) -> None:
    from tests.factories import UserFactory

    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(5):
        client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 200  # the admin's own form, with its generic error
    assert "_auth_user_id" not in client.session


def test_a_locked_username_stays_locked_from_another_address(client: Client, manager: Any, small_limits: None) -> None:
    for _ in range(5):
        sign_in(client, "alice", "wrong", address="10.0.0.1")
    assert sign_in(client, "alice", PASSWORD, address="192.0.2.7").status_code == 429


def test_failures_from_one_address_across_usernames_lock_that_address(
    client: Client, manager: Any, small_limits: None
) -> None:
    for number in range(8):
        sign_in(client, f"guess{number}", "wrong", address="10.0.0.9")
    assert sign_in(client, "alice", PASSWORD, address="10.0.0.9").status_code == 429
    # people signing in from elsewhere are not affected
    assert sign_in(Client(), "alice", PASSWORD, address="10.0.0.10").status_code == 302


def test_people_signing_in_correctly_from_one_office_are_never_locked(client: Client, small_limits: None) -> None:
    from tests.factories import UserFactory

    users = [UserFactory(username=f"colleague{number}") for number in range(20)]
    for user in users:
        assert sign_in(Client(), user.username, PASSWORD, address="10.1.1.1").status_code == 302


def test_the_counts_live_in_redis_not_in_the_process(client: Client, manager: Any) -> None:
    sign_in(client, "alice", "wrong")
    # read with a client of our own, as another web process would
    other_process = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    try:
        keys = other_process.keys("b360:*")
    finally:
        other_process.close()
    assert len(keys) >= 2  # one for the username, one for the address


def test_the_cache_makes_its_redis_client_once_not_for_every_command() -> None:
    from django.core.cache import cache

    # (Django keeps a cache object per thread; within one, every command shares the client.)
    first = cache._cache.get_client()  # type: ignore[attr-defined]
    assert cache._cache.get_client(write=True) is first  # type: ignore[attr-defined]
    cache.set("b360-test-shared-client", "kept", 5)
    assert cache.get("b360-test-shared-client") == "kept"
    assert cache._cache.get_client() is first  # type: ignore[attr-defined]


def test_sign_in_still_works_when_the_cache_is_down(client: Client, manager: Any, settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/1",
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    assert sign_in(client, "alice", PASSWORD).status_code == 302


# --- secret links ----------------------------------------------------------------------------


@pytest.fixture
def open_cycle(db: None) -> Cycle:
    return CycleFactory(status=Cycle.Status.OPEN)


def new_link(cycle: Cycle) -> str:
    invitation = InvitationFactory(subject=SubjectFactory(cycle=cycle), status=Invitation.Status.OPEN, group=Group.PEER)
    return invitation_link_create(invitation=invitation)


LINK_PATHS = ["/s/{}/", "/api/survey/{}/", "/n/{}/", "/r/{}/"]


@pytest.mark.parametrize("path", LINK_PATHS)
def test_guessing_links_from_one_address_gets_429(client: Client, small_limits: None, path: str) -> None:
    for number in range(5):
        assert client.get(path.format(f"guessed-token-{number:04}"), REMOTE_ADDR="10.0.0.5").status_code in (200, 404)
    response = client.get(path.format("guessed-token-9999"), REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many links that lead nowhere" in response.content.decode()
    # another address is not affected
    assert client.get(path.format("guessed-token-9999"), REMOTE_ADDR="10.0.0.6").status_code in (200, 404)


def test_a_blocked_address_gets_429_even_for_a_real_link(client: Client, small_limits: None, open_cycle: Cycle) -> None:
    token = new_link(open_cycle)
    for number in range(5):
        client.get(f"/s/guessed-token-{number:04}/", REMOTE_ADDR="10.0.0.5")
    # checked before the token is looked at: the answer says nothing about it
    assert client.get(f"/s/{token}/", REMOTE_ADDR="10.0.0.5").status_code == 429
    assert client.get(f"/api/survey/{token}/", REMOTE_ADDR="10.0.0.5").json()["detail"].startswith("Too many")


def test_raters_behind_one_office_address_answering_normally_are_never_blocked(
    small_limits: None, open_cycle: Cycle
) -> None:
    from tests.feedback.helpers import form_data, full_answers

    # given: forty raters (eight times the limit) behind one office address
    tokens = [new_link(open_cycle) for _ in range(40)]
    for number, token in enumerate(tokens):
        rater = Client(REMOTE_ADDR="203.0.113.10")
        if number % 2:
            # when: half answer through the page, opening their link twice (as people do)
            assert rater.get(f"/s/{token}/").status_code == 303
            survey = rater.get(f"/s/{token}/")["Location"]
            assert rater.get(survey).status_code == 200
            assert rater.post(survey, form_data(open_cycle)).status_code == 303
            # and look at the page again afterwards
            assert rater.get(survey).status_code == 200
        else:
            # and half through the API
            assert rater.get(f"/api/survey/{token}/").status_code == 200
            response = rater.post(
                f"/api/survey/{token}/responses/", full_answers(open_cycle), content_type="application/json"
            )
            assert response.status_code == 201
        # and every one of them opens their used link again later, as people do
        assert rater.get(f"/s/{token}/").status_code == 200
        assert rater.get(f"/api/survey/{token}/").status_code == 404
    # then: every answer was taken, nobody was blocked, and a new colleague still gets in
    assert Invitation.objects.filter(status=Invitation.Status.COMPLETED).count() == 40
    late = new_link(open_cycle)
    assert Client(REMOTE_ADDR="203.0.113.10").get(f"/s/{late}/").status_code == 303


def test_a_proxy_of_ours_is_seen_through_and_what_clients_send_is_not_trusted(
    client: Client, small_limits: None, settings: Any
) -> None:
    settings.TRUSTED_PROXY_HOPS = 1
    for number in range(5):
        # the attacker varies the part of X-Forwarded-For they control; our proxy appends their address
        client.get(
            f"/s/guessed-token-{number:04}/",
            REMOTE_ADDR="172.18.0.2",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{number}, 10.0.0.5",
        )
    blocked = client.get("/s/guessed-token-9999/", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="10.0.0.5")
    assert blocked.status_code == 429
    # somebody else behind the same proxy is not blocked
    other = client.get("/s/guessed-token-9999/", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="10.0.0.77")
    assert other.status_code == 200


def test_an_ipv6_client_counts_as_its_slash_64(client: Client, small_limits: None) -> None:
    # Walking through the addresses of one /64 gets no further than one address would.
    for number in range(5):
        client.get(f"/s/guessed-token-{number:04}/", REMOTE_ADDR=f"2001:db8:1:2::{number + 1:x}")
    blocked = client.get("/s/guessed-token-9999/", REMOTE_ADDR="2001:db8:1:2:ffff::1")
    assert blocked.status_code == 429
    # another /64 is another client
    assert client.get("/s/guessed-token-9998/", REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


# --- link lock-outs, kept in PostgreSQL ----------------------------------------------------------


def locked_out(client: Client, address: str = "10.0.0.5") -> None:
    for number in range(5):
        client.get(f"/s/guessed-token-{number:04}/", REMOTE_ADDR=address)


def token_route_paths(token: str) -> list[str]:
    from tests.config.test_access_rules import ALL_ROUTES, TOKEN_ROUTE_NAMES

    return ["/" + route.replace("<str:token>", token) for name, route in ALL_ROUTES if name in TOKEN_ROUTE_NAMES]


@pytest.mark.parametrize("method", ["get", "head", "options", "post", "put", "patch", "delete"])
def test_a_blocked_address_gets_429_on_every_token_route_even_with_a_real_link(
    client: Client, small_limits: None, open_cycle: Cycle, method: str
) -> None:
    from feedback.models import SealedAnswer
    from tests.feedback.helpers import full_answers

    # given: a real open link, and an address that guessed five that lead nowhere
    token = new_link(open_cycle)
    locked_out(client)
    paths = token_route_paths(token)
    assert len(paths) >= 6  # every pattern of /s/, /api/survey/ (read, submit, decline), /n/ and /r/
    for path in paths:
        # when: that address calls each with the real token, a valid answer in the body
        response = getattr(client, method)(
            path, full_answers(open_cycle), content_type="application/json", REMOTE_ADDR="10.0.0.5"
        )
        # then: refused, whatever the route or the way its view reads the lock-out
        assert response.status_code == 429, path
        assert int(response["Retry-After"]) > 0, path
    # and nothing was answered, declined or opened with it
    assert not SealedAnswer.objects.exists()
    invitation = Invitation.objects.get()
    assert invitation.status == Invitation.Status.OPEN
    assert invitation.opened_at is None
    # while the same link still works from anywhere else
    answer = client.post(f"/api/survey/{token}/responses/", full_answers(open_cycle), content_type="application/json")
    assert answer.status_code == 201


def test_the_submit_tells_a_blocked_address_nothing_of_the_token(
    client: Client, small_limits: None, open_cycle: Cycle
) -> None:
    locked_out(client)
    answers = {"ratings": "not even an object"}
    real = client.post(
        f"/api/survey/{new_link(open_cycle)}/responses/",
        answers,
        content_type="application/json",
        REMOTE_ADDR="10.0.0.5",
    )
    guessed = client.post(
        "/api/survey/guessed-token-7777/responses/", answers, content_type="application/json", REMOTE_ADDR="10.0.0.5"
    )
    too_long = client.post(
        "/api/survey/" + "x" * 300 + "/responses/", b"{", content_type="application/json", REMOTE_ADDR="10.0.0.5"
    )
    assert real.status_code == guessed.status_code == too_long.status_code == 429
    assert real.content == guessed.content == too_long.content


def address_key(address: str) -> str:
    import hashlib
    import hmac

    return hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256).hexdigest()


def test_a_link_lockout_is_a_row_in_postgresql_that_outlives_redis(
    client: Client, small_limits: None, open_cycle: Cycle
) -> None:
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from surveys.models import LinkLockout

    token = new_link(open_cycle)
    locked_out(client)
    # the row holds a keyed digest of the address, never the address
    (lockout,) = LinkLockout.objects.all()
    assert lockout.address == address_key("10.0.0.5")
    assert "10.0.0.5" not in str(LinkLockout.objects.values_list().get())
    # Redis flushed (a restart without its file): the counts are gone, the lock-out is not
    cache.clear()
    assert client.get(f"/s/{token}/", REMOTE_ADDR="10.0.0.5").status_code == 429
    # run out: the address gets in again (a day back: the test's transaction holds now() still)
    LinkLockout.objects.update(until=timezone.now() - timedelta(days=1))
    assert client.get(f"/s/{token}/", REMOTE_ADDR="10.0.0.5").status_code == 303
    # and a lock-out of another address deletes the one that ran out on its way
    locked_out(client, address="10.0.0.9")
    assert list(LinkLockout.objects.values_list("address", flat=True)) == [address_key("10.0.0.9")]


def test_lock_outs_that_ran_out_are_deleted_on_the_beat_schedule_without_another_lock_out() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from config.celery import app
    from surveys.models import LinkLockout

    # given: two lock-outs that ran out and one under way, and no address locked out since
    now = timezone.now()
    LinkLockout.objects.bulk_create(
        [
            LinkLockout(address=address_key("10.0.0.1"), until=now - timedelta(days=2)),
            LinkLockout(address=address_key("10.0.0.2"), until=now - timedelta(days=1)),
            LinkLockout(address=address_key("10.0.0.3"), until=now + timedelta(minutes=10)),
        ]
    )
    # when: the scheduled task runs, as beat names it
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert schedule["config.link_lockouts_purge"] <= 3600
    app.tasks["config.link_lockouts_purge"].apply().get()
    # then: only the digest that still locks an address out is kept
    assert list(LinkLockout.objects.values_list("address", flat=True)) == [address_key("10.0.0.3")]


def test_more_misses_while_locked_out_do_not_lengthen_the_lock_out(small_limits: None) -> None:
    from datetime import timedelta

    from django.test import RequestFactory
    from django.utils import timezone

    from config.throttling import link_miss_record
    from surveys.models import LinkLockout

    # given: an address locked out until a known time, its count of misses over the limit
    request = RequestFactory().get("/s/guessed-token-0000/", REMOTE_ADDR="10.0.0.5")
    for _ in range(5):
        link_miss_record(request)
    until = timezone.now() + timedelta(minutes=3)
    LinkLockout.objects.update(until=until)
    # when: it misses again, past the limit
    link_miss_record(request)
    # then: the lock-out ends when it did (renewing it would have moved it to now + 15 minutes)
    assert LinkLockout.objects.get().until == until


def test_a_lock_out_is_recorded_under_the_address_keyed_with_the_current_secret_key(settings: Any) -> None:
    # The address's HMAC is kept per process: one made with an earlier key is not used after it changes.
    import hashlib
    import hmac

    from django.test import RequestFactory

    from config.throttling import link_address

    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2:3:4:5:6")
    request.META.pop("HTTP_X_FORWARDED_FOR", None)
    settings.TRUSTED_PROXY_HOPS = 0
    addresses = []
    for key in ("first key " * 8, "second key " * 8, "first key " * 8):
        settings.SECRET_KEY = key
        expected = hmac.new(key.encode(), b"2001:db8:1:2::/64", hashlib.sha256).hexdigest()
        addresses.append(link_address(request))
        assert addresses[-1] == expected
    assert addresses[0] == addresses[2] != addresses[1]


@pytest.mark.django_db(transaction=True)
def test_a_lock_out_that_cannot_be_written_is_logged_and_the_answer_stands(
    client: Client, small_limits: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The database refuses the lock-out's row (as a full disk or a read-only replica would):
    # the link that reached the limit still gets the neutral page, nothing is half written,
    # and the miss is logged. Autocommit, as in production: the failed statement stands alone.
    from django.db import connection

    from surveys.models import LinkLockout

    table = LinkLockout._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION lockout_refused() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER lockout_refused BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lockout_refused()"
        )
    try:
        with caplog.at_level("WARNING", logger="config.throttling"):
            answers = [client.get(f"/s/guessed-token-{n:04}/", REMOTE_ADDR="10.0.0.7").status_code for n in range(6)]
        # The neutral page of a link that leads nowhere, every time: no 500, and no 429 without a row.
        assert answers == [200] * 6
        assert not LinkLockout.objects.exists()
        refused = [record.getMessage() for record in caplog.records if "not locked" in record.getMessage()]
        assert refused == ["throttle link-misses:ip not locked: ProgrammingError"] * 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER lockout_refused ON {table}")
            cursor.execute("DROP FUNCTION lockout_refused()")
