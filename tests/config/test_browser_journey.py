"""The three journeys end to end in Chromium, against the real stack.

gunicorn (the project's own config) serves the test database from a subprocess, beside
Celery beat; the real Celery worker of the test run sends every email to a local SMTP
server and builds the reports; the people follow the links of the emails they received. Every step is
photographed at 1440 and 375 px (under ``.ci/artifacts/journey`` by
default, which ``.ci/run`` keeps) and checked with axe-core for serious or critical
accessibility violations.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from celery.signals import task_prerun

from config.embedded import free_port
from feedback.models import Response
from reports.models import Release, Report
from surveys.models import Cycle, Invitation, OutboundEmail
from tests.conftest import ARTIFACTS_DIR
from tests.factories import default_questionnaire
from tests.smtp_sink import Inbox
from tests.stack import stack_database_url

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ARTIFACTS_DIR / "journey"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1440, 375)
WAIT_MS = 20_000  # any single wait in a page
MAIL_WAIT_S = 30.0
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory

BAD_CSV = (
    "name,email,reports_to\n"
    "Lena Park,lena@journey.test,\n"
    "Ari Stone,not-an-email,lena@journey.test\n"
    ",bea@journey.test,lena@journey.test\n"
)
GOOD_CSV = (
    "name,email,reports_to\n"
    "Lena Park,lena@journey.test,\n"
    "Ari Stone,ari@journey.test,lena@journey.test\n"
    "Bea Moss,bea@journey.test,lena@journey.test\n"
    "Cal Reyes,cal@journey.test,lena@journey.test\n"
    "Dev Iyer,dev@journey.test,lena@journey.test\n"
    "Eli Hart,eli@journey.test,ari@journey.test\n"
)


# --- The stack -------------------------------------------------------------------------


def _stack_env(**extra: str) -> dict[str, str]:
    """The environment of a process of the stack: the test database and Redis, the test settings."""
    return {
        **os.environ,
        "DATABASE_URL": stack_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **extra,
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def web_server(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """gunicorn with ``config/gunicorn.py``, on the test database, in its own process."""
    port = free_port()
    env = _stack_env(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1", WEB_THREADS="8")
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield base
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def beat(transactional_db: None, tmp_path: Path) -> Iterator[Path]:
    """Celery beat, as the run command starts it; its log, to see what it sent."""
    log_path = tmp_path / "beat.log"
    schedule = tmp_path / "celerybeat-schedule"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
        cwd=ROOT,
        env=_stack_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield log_path
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def report_gate() -> Iterator[threading.Event]:
    """Report jobs wait for this event (set it to let them run), so a page can be seen before they finish."""
    gate = threading.Event()

    def hold(sender: Any = None, **kwargs: Any) -> None:
        if getattr(sender, "name", "") == "reports.build":
            gate.wait(timeout=60)

    task_prerun.connect(hold, weak=False, dispatch_uid="journey-report-gate")
    yield gate
    gate.set()
    task_prerun.disconnect(dispatch_uid="journey-report-gate")


@pytest.fixture
def stack(
    web_server: str,
    smtp_server: Callable[..., Inbox],
    celery_worker: Any,
    beat: Path,
    report_gate: threading.Event,  # after the worker: opened before the worker stops
    settings: Any,
) -> dict[str, Any]:
    inbox = smtp_server()
    # The worker runs in this process: the links in its emails lead to the web server.
    settings.PUBLIC_BASE_URL = web_server
    settings.SURVEYS_EMAIL_RETRY_BACKOFF = 0.2
    default_questionnaire()
    return {"base": web_server, "inbox": inbox, "gate": report_gate, "beat_log": beat}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS

    assert AXE.exists(), "axe-core is missing: run `npm ci` (make test does)"
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- Pictures, accessibility, emails -----------------------------------------------------


class Journey:
    def __init__(self, browser: Any, base: str, inbox: Inbox) -> None:
        self.browser = browser
        self.base = base
        self.inbox = inbox
        self.step = 0
        self.pages: list[str] = []
        self.script_errors: list[str] = []
        self.open_pages: list[Any] = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()

    def failure_pictures(self) -> None:
        """Every open page as it was when a step failed, for the CI artifact."""
        for number, page in enumerate(self.open_pages):
            try:
                page.screenshot(path=str(ARTIFACTS / f"failed-{self.step:02d}-page{number}.png"), full_page=True)
            except Exception:  # noqa: S112 (a closed page has no picture)
                continue

    def person(self) -> Any:
        # axe-core is injected as a script tag, which the site's self-only CSP would refuse;
        # the CSP itself is tested in test_browser_csp.py.
        context = self.browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, bypass_csp=True)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        self.open_pages.append(page)
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))
        return page

    def sign_in(self, page: Any, username: str) -> None:
        page.goto(f"{self.base}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.base}/")

    def check(self, page: Any, name: str, *, phone_fits: bool = True) -> None:
        """A screenshot at each width, the phone layout without sideways scrolling, and axe-core."""
        self.step += 1
        assert not self.script_errors, self.script_errors
        width_before = page.viewport_size["width"]
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900 if width > 400 else 740})
            page.screenshot(path=str(ARTIFACTS / f"{self.step:02d}-{name}-{width}.png"), full_page=True)
            if width < 400 and phone_fits:
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name}: {overflow}px wider than a 375 px phone"
        page.set_viewport_size({"width": width_before, "height": 900})
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations'], runOnly: "
            "{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
        bad = [
            f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:3]}"
            for violation in result["violations"]
            if violation["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name} at {page.url}: {bad}"
        self.pages.append(name)

    def mail(self, address: str, subject_contains: str) -> EmailMessage:
        """The newest email to ``address`` whose subject contains the text, waiting for the worker."""
        deadline = time.monotonic() + MAIL_WAIT_S
        while True:
            found = [m for m in self.inbox.to(address) if subject_contains in str(m["Subject"])]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, f"no email {subject_contains!r} to {address}"
            time.sleep(0.2)

    def open_email(self, page: Any, message: EmailMessage) -> str:
        """Show the email's HTML part in the page; returns its plain-text twin."""
        html = message.get_body(preferencelist=("html",))
        text = message.get_body(preferencelist=("plain",))
        assert html is not None and text is not None
        page.set_content(str(html.get_content()))
        return str(text.get_content())


def _links(text: str, prefix: str) -> list[str]:
    return re.findall(rf"(http://127\.0\.0\.1:\d+/{prefix}/[A-Za-z0-9_\-]+/)", text)


def _no_reload_marker(page: Any) -> None:
    page.evaluate("window.__stillTheSamePage = true")


def _was_not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.__stillTheSamePage === true"))


def _answer_everything(page: Any, *, skip_first: bool = False) -> None:
    items = page.locator("fieldset.item")
    for index in range(items.count()):
        if skip_first and index == 0:
            continue
        items.nth(index).locator("label").nth(index % 5).click()


def _answer_with_the_keyboard(page: Any) -> None:
    """Every statement with the keyboard only: Tab into a radio group, Space picks 1, arrows move."""
    page.locator("fieldset.item input[type=radio]").first.focus()
    total = page.locator("fieldset.item").count()
    for index in range(total):
        page.keyboard.press("Space")
        for _ in range(index % 4):
            page.keyboard.press("ArrowRight")
        if index < total - 1:
            page.keyboard.press("Tab")
            while page.evaluate("document.activeElement.tagName") == "TEXTAREA":
                page.keyboard.press("Tab")
    page.locator("#comment-keep_doing").focus()
    page.keyboard.type("Keeps the team informed.")
    page.get_by_role("button", name="Submit my answers").focus()
    page.keyboard.press("Enter")


# --- The journey ---------------------------------------------------------------------------


def test_manager_raters_and_coach_go_through_every_step(
    browser: Any, stack: dict[str, Any], manager: Any, coach: Any
) -> None:
    journey = Journey(browser, stack["base"], stack["inbox"])
    base = stack["base"]
    try:
        _journey(journey, stack, base)
    except BaseException:
        journey.failure_pictures()
        raise


def _journey(journey: Journey, stack: dict[str, Any], base: str) -> None:

    # The manager builds the team: a CSV with bad lines first, then a good one.
    alice = journey.person()
    journey.sign_in(alice, "alice")
    alice.get_by_role("link", name="Teams").first.click()
    alice.get_by_label("Team name").fill("Journey team")
    alice.get_by_role("button", name="Create team").click()
    csv_input = alice.get_by_label("CSV file")
    csv_input.set_input_files({"name": "people.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()})
    alice.get_by_role("button", name="Import").click()
    errors = alice.get_by_role("alert")
    errors.wait_for()
    assert "line 3" in errors.inner_text().lower() and "line 4" in errors.inner_text().lower()
    journey.check(alice, "import-refused")
    alice.get_by_label("CSV file").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}
    )
    alice.get_by_role("button", name="Import").click()
    alice.get_by_text("Imported 6 people.").wait_for()
    journey.check(alice, "team")

    # A cycle for Ari, whose peers he nominates himself.
    alice.get_by_role("link", name="New review cycle").click()
    alice.get_by_label("Name", exact=True).fill("Journey 360")
    alice.get_by_label("Deadline", exact=True).fill("2099-06-30T17:00")
    range_field = alice.get_by_label("Minimum raters per group")
    assert not range_field.is_visible()  # the manager assigns raters: no range to set
    for name in ("Lena Park", "Bea Moss", "Cal Reyes", "Dev Iyer", "Eli Hart"):
        alice.get_by_label(name, exact=True).uncheck()
    alice.get_by_label("Nomination mode").select_option("subjects")
    assert range_field.is_visible()
    range_field.fill("2")
    alice.get_by_label("Maximum raters per group").fill("4")
    journey.check(alice, "cycle-form")
    alice.get_by_role("button", name="Create draft").click()
    alice.get_by_text("Draft cycle created").wait_for()
    cycle = Cycle.objects.get(name="Journey 360")
    # Ari has no anonymous rater yet: the draft says so before launch.
    warning = alice.locator("#short-of-k")
    assert "Ari Stone: direct reports 1 invited; only 1 anonymous rater in all" in warning.inner_text()  # Eli
    journey.check(alice, "cycle-draft")

    # The manager adjusts the raters: one outside rater by hand.
    alice.get_by_role("link", name="Check and change raters").click()
    alice.get_by_label("Person rated").select_option(label="Ari Stone")
    alice.get_by_label("Rater's email").fill("olga@outside.test")
    alice.get_by_label("Rater's name").fill("Olga Ruiz")
    alice.get_by_label("Role").select_option("outside")
    alice.get_by_role("button", name="Add rater").click()
    alice.get_by_text("olga@outside.test added.").wait_for()
    journey.check(alice, "raters-adjusted")

    # Nominations open; Ari chooses his peers from the emailed link, in his own browser.
    alice.get_by_role("link", name=f"← {cycle.name}").click()
    alice.get_by_role("button", name="Email the subjects to choose their raters").click()
    alice.get_by_text("emailed a link to choose their raters").wait_for()
    ari = journey.person()
    nomination_mail = journey.mail("ari@journey.test", "Choose who gives you feedback")
    text = journey.open_email(ari, nomination_mail)
    journey.check(ari, "email-nomination")
    (nomination_link,) = _links(text, "n")
    ari.get_by_role("link", name="Choose your raters").click()
    ari.wait_for_url(nomination_link)
    # Not Lena (his manager) nor Eli (his report): they are asked already.
    assert ari.get_by_label("Lena Park").count() == 0 and ari.get_by_label("Eli Hart").count() == 0
    for name in ("Bea Moss", "Cal Reyes", "Dev Iyer"):
        ari.get_by_label(name).check()
    journey.check(ari, "nomination")
    ari.get_by_role("button", name="Send my list").click()  # Origin: null, under no-referrer
    ari.get_by_role("heading", name="Thank you").wait_for()
    assert "CSRF" not in ari.content()
    journey.check(ari, "nomination-sent")

    # The manager approves the list; Ari is told.
    alice.get_by_role("link", name="Review and approve the lists").click()
    alice.get_by_text("list sent").wait_for()
    alice.get_by_role("button", name="Approve Ari Stone's raters").click()
    alice.get_by_text("Ari Stone's raters approved").wait_for()
    journey.check(alice, "nomination-approved")
    approved = journey.mail("ari@journey.test", "Your raters are approved")
    assert "approved the list of people asked to give you feedback" in journey.open_email(ari, approved)
    journey.check(ari, "email-approved")

    # Launch, through its confirmation page.
    alice.get_by_role("link", name="Launch the cycle").click()
    journey.check(alice, "launch-confirm")
    alice.get_by_role("button", name="Yes, launch and email the raters").click()
    alice.get_by_text("Launched").wait_for()
    assert Cycle.objects.get(pk=cycle.pk).status == Cycle.Status.OPEN
    sources = dict(Invitation.objects.filter(cycle=cycle, group="outside").values_list("rater_email", "source"))
    assert sources == {"olga@outside.test": Invitation.Source.MANAGER}  # still the manager's pick
    journey.check(alice, "progress-launched")
    _no_reload_marker(alice)

    # The raters answer from their emails.
    def survey_from_email(address: str) -> Any:
        page = journey.person()
        message = journey.mail(address, "Your feedback on")
        text = journey.open_email(page, message)
        assert "The survey takes about 10 minutes." in text
        page.get_by_role("link", name=re.compile("Answer the survey about")).first.click()
        page.wait_for_url(re.compile(r"/survey/"))
        return page

    ari_survey = survey_from_email("ari@journey.test")
    journey.check(ari_survey, "survey")
    _answer_with_the_keyboard(ari_survey)  # Ari, about himself, with the keyboard only
    ari_survey.get_by_role("heading", name="Thank you — your answers are in").wait_for()
    journey.check(ari_survey, "survey-submitted")

    bea = survey_from_email("bea@journey.test")
    _answer_everything(bea, skip_first=True)
    bea.get_by_role("button", name="Submit my answers").click()
    bea.get_by_role("alert").wait_for()
    assert "Please check 1 answer" in bea.get_by_role("alert").inner_text()
    journey.check(bea, "survey-error")
    bea.goto(bea.url)  # a reload: the answers come back from the draft in this browser
    assert bea.locator("#survey-progress-text").inner_text() == "29 of 30 statements answered"
    bea.locator("fieldset.item").first.locator("label").nth(2).click()
    bea.get_by_role("button", name="Submit my answers").click()
    bea.get_by_role("heading", name="Thank you — your answers are in").wait_for()

    cal = survey_from_email("cal@journey.test")
    cal.locator("details.decline summary").click()
    cal.get_by_label("Reason (optional)").fill("I joined last week.")
    cal.get_by_role("button", name="Decline this survey").click()
    cal.get_by_role("heading", name="You declined this survey").wait_for()
    journey.check(cal, "survey-declined")

    for address in ("dev@journey.test", "olga@outside.test", "lena@journey.test"):
        page = survey_from_email(address)
        _answer_everything(page)
        page.get_by_role("button", name="Submit my answers").click()
        page.get_by_role("heading", name="Thank you — your answers are in").wait_for()
        page.context.close()

    # The manager's progress moved without a reload: 3 of Ari's 5 anonymous raters answered.
    alice.get_by_text("3 of 5 answered").wait_for()
    alice.locator('#progress td[data-label="Manager"]', has_text="✓").wait_for()
    alice.locator("#emails + ul", has_text="7 sent or no longer needed").wait_for()
    assert _was_not_reloaded(alice)
    row = alice.locator("#progress tbody tr").first.inner_text()
    assert "Peers" not in row and "declined" not in row.lower()
    journey.check(alice, "progress-live")

    # Coaches: the manager picks Charlie, then closes the cycle through its confirmation page.
    alice.goto(f"{base}/reports/cycles/{cycle.pk}/coaches/")
    alice.get_by_label("Coach", exact=True).select_option("charlie")
    alice.get_by_role("button", name="Assign", exact=True).click()
    alice.get_by_text("Coach assigned.").wait_for()
    journey.check(alice, "coaches")
    alice.goto(f"{base}/cycles/{cycle.pk}/")
    alice.get_by_role("link", name="Close the cycle").click()
    journey.check(alice, "close-confirm")
    alice.get_by_role("button", name="Yes, close the cycle").click()
    alice.get_by_text("Closed:").wait_for()
    alice.get_by_text("Every person in this cycle has a coach.").wait_for()
    journey.check(alice, "closed")

    # The coach sees the report turn ready without reloading.
    charlie = journey.person()
    journey.sign_in(charlie, "charlie")
    charlie.get_by_role("link", name="Reports", exact=True).click()
    charlie.get_by_text("Queued").or_(charlie.get_by_text("Running")).first.wait_for()
    journey.check(charlie, "reports-building")
    _no_reload_marker(charlie)
    stack["gate"].set()
    charlie.get_by_role("link", name="View the report for Ari Stone").wait_for(timeout=90_000)
    assert _was_not_reloaded(charlie)
    assert Report.objects.get(cycle=cycle).status == Report.Status.READY
    journey.check(charlie, "reports-ready")

    charlie.get_by_role("link", name="View the report for Ari Stone").click()
    charlie.get_by_role("heading", name=re.compile("Ari Stone")).first.wait_for()
    assert "the manager added 1 by hand" in charlie.locator("main").inner_text()
    journey.check(charlie, "report")
    with charlie.expect_download() as pdf:
        charlie.get_by_role("link", name="Download PDF").click()
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
    charlie.get_by_role("link", name="All reports").first.click()
    with charlie.expect_download() as archive:
        charlie.get_by_role("link", name="Download all ready PDFs (zip)").click()
    names = zipfile.ZipFile(BytesIO(Path(archive.value.path()).read_bytes())).namelist()
    assert names == ["balance-report-ari-stone-journey-360.pdf"]

    # Release, through its confirmation page; Ari opens the emailed /r/ link.
    charlie.get_by_role("link", name="View the report for Ari Stone").click()
    charlie.get_by_role("link", name="Release to Ari Stone by email").click()
    journey.check(charlie, "release-confirm")
    charlie.get_by_role("button", name="Yes, email the link to Ari Stone").click()
    charlie.get_by_text("will be emailed to ari@journey.test").wait_for()
    released = journey.mail("ari@journey.test", "Your balance report")
    text = journey.open_email(ari, released)
    journey.check(ari, "email-release")
    assert len(_links(text, "r")) == 1
    with ari.expect_download() as download:
        ari.get_by_role("link", name="Download your balance report (PDF)").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    assert Release.objects.filter(report__cycle=cycle).count() == 1

    # What the journey left behind: each rater answered or declined once, every email sent.
    assert Response.objects.filter(cycle=cycle).count() >= 5  # five answered (a decline may be stored too)
    assert not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exclude(kind="reminder").exists()
    assert not Invitation.objects.filter(cycle=cycle).exclude(status=Invitation.Status.CLOSED).exists()
    assert len(journey.pages) >= 20
    # Beat ran beside them the whole time (its first job sweep falls due 30 s after it starts,
    # often after this journey; what the sweep does is tested in tests/config/test_durability.py).
    assert "beat: Starting..." in stack["beat_log"].read_text()
    assert "Traceback" not in stack["beat_log"].read_text()
