"""The report template, the PDF (checked through poppler's tools) and the URL fetcher."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from reports import charts, services
from reports.models import CoachAssignment, Report
from reports.rendering import PDF_BASE_URL, pdf_url_fetcher_class, report_pdf_render, static_file_for
from surveys.models import Group
from tests.factories import ResponseFactory
from tests.reports.helpers import answers_create, ratings_for


def pdf_text(pdf_path: Path, page: int | None = None, *, mode: str = "-layout") -> str:
    """The PDF's text, laid out as printed (``-layout``) or in the order it was written (``-raw``)."""
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        ["pdftotext", mode, *pages, str(pdf_path), "-"], check=True, capture_output=True, text=True
    ).stdout


def page_images(pdf_path: Path, folder: Path, *, dpi: int = 80) -> list[Path]:
    """Every page as a PNG (kept as an artifact) and as a greyscale PGM (measured here)."""
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf_path), str(folder / "page")], check=True)
    subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), str(pdf_path), str(folder / "grey")], check=True)
    return sorted(folder.glob("grey-*.pgm"))


def empty_from_bottom(pgm: Path) -> float:
    """The share of the page's body, from the bottom up, that is nearly white.

    The body is the page between its running head and its footer (the top 5 % and the
    bottom 7 %): an empty half page is a run of white rows above the footer.
    """
    raw = pgm.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", raw)
    assert header, "not a binary PGM"
    width, height = int(header.group(1)), int(header.group(2))
    pixels = raw[header.end() :]
    top, bottom = int(height * 0.05), int(height * 0.93)
    blank = 0
    for row in range(bottom - 1, top - 1, -1):
        if min(pixels[row * width : (row + 1) * width]) < 235:
            break
        blank += 1
    return blank / (bottom - top)


@pytest.mark.django_db
def test_the_pdf_is_four_full_a4_pages_that_each_say_what_they_should(
    ready_report: Report, tmp_path: Path, artifacts: Path
) -> None:
    pdf_path = artifacts / "report.pdf"
    pdf_path.write_bytes(bytes(ready_report.pdf))
    info = subprocess.run(["pdfinfo", str(pdf_path)], check=True, capture_output=True, text=True).stdout
    assert "595.276 x 841.89 pts (A4)" in info
    pages = page_images(pdf_path, artifacts)
    # the PNGs of every page stay in the artifacts folder for a person to look at
    assert len(list(artifacts.glob("page-*.png"))) == len(pages) == 4
    # no page but the last is more than half empty
    for number, page in enumerate(pages[:-1], start=1):
        assert empty_from_bottom(page) < 0.5, (number, empty_from_bottom(page))
    for page in pages:
        page.unlink()

    reading = ready_report.data["reading"]
    texts = [" ".join(pdf_text(pdf_path, number, mode="-raw").split()) for number in range(1, len(pages) + 1)]
    first = texts[0]
    # page 1 is the story: who, which cycle, the plane with its quadrants, the summary
    for expected in (
        "Balance report: Jonas Berg",
        "Review cycle “Spring 2026”",
        "Management and leadership balance",
        "Strong leadership only — chaos risk",
        "Strong management only — bureaucracy risk",
        "Management index",
        "Self 4.1 · 4.6",
        "Others 3.8 · 3.0",
        "Summary",
        " ".join(reading["summary"][0].split()[:12]),
    ):
        assert expected in first, expected
    # every later page carries the running head
    for text in texts[1:]:
        assert "Jonas Berg · Spring 2026" in text
    whole = " ".join(texts)
    for heading in (
        "What to work on",
        "Questions for the debrief",
        "How to read this report",
        "Management: scores by dimension and rater group",
        "Leadership: scores by dimension and rater group",
        "Comments on Management",
        "Self and others",
        "Kotter's pairs",
        "Highest and lowest rated behaviours",
        "Change since the previous review",
    ):
        assert heading in whole, heading
    for suggestion in reading["suggestions"]:
        assert " ".join(suggestion["text"].split()[:8]) in whole
    for dimension in ready_report.data["dimensions"]:
        assert f"{dimension['name']} Others {dimension['others']['score']:.1f}" in whole
    assert "(n=7)" in whole
    # one decimal everywhere
    assert not re.search(r"\d\.\d\d", whole)


@pytest.mark.django_db
def test_every_word_of_the_pdf_is_at_least_8_pt(ready_report: Report, tmp_path: Path) -> None:
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(bytes(ready_report.pdf))
    boxes = subprocess.run(
        ["pdftotext", "-bbox", str(pdf_path), "-"], check=True, capture_output=True, text=True
    ).stdout
    heights = [
        float(y_max) - float(y_min)
        for y_min, y_max in re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', boxes)
    ]
    assert len(heights) > 500
    # poppler's word box spans the font's ascent and descent: about 1.16 × its size for DejaVu Sans
    assert min(heights) >= 8 * 1.16 - 0.05, min(heights)


@pytest.mark.django_db
def test_pdf_uses_dejavu_sans(ready_report: Report, tmp_path: Path) -> None:
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(bytes(ready_report.pdf))
    fonts = subprocess.run(["pdffonts", str(pdf_path)], check=True, capture_output=True, text=True).stdout
    assert "DejaVu-Sans" in fonts
    # every font is embedded (subset), so the PDF looks the same on any reader
    assert all(" yes " in line for line in fonts.splitlines()[2:])


class CountingServer:
    """A TCP listener that only counts connection attempts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.mark.django_db
def test_markup_in_a_comment_stays_text_and_fetches_nothing(subject: Any, tmp_path: Path) -> None:
    server = CountingServer()
    try:
        evil = f'<img src="http://127.0.0.1:{server.port}/pixel.png"> <link rel=stylesheet href=http://127.0.0.1:{server.port}/x.css>'
        for seed in range(3):
            ResponseFactory(
                subject=subject,
                group=Group.PEER,
                ratings=ratings_for(subject.cycle, management=3, leadership=3, seed=seed),
                comments={"management": evil},
            )
        report = Report.objects.create(cycle=subject.cycle, subject=subject)
        assert services.report_build(report_id=report.id) == Report.Status.READY
        report.refresh_from_db()
    finally:
        server.close()
    assert server.connections == 0
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(bytes(report.pdf))
    assert f'<img src="http://127.0.0.1:{server.port}/pixel.png">' in pdf_text(pdf_path).replace("\n", " ")


def test_url_fetcher_serves_only_our_static_files() -> None:
    fetcher = pdf_url_fetcher_class()()
    css = fetcher.fetch(f"{PDF_BASE_URL}static/reports/report.css")
    assert b"string-set" in css.read()
    for url in (
        "http://example.com/logo.png",
        "https://report.invalid/static/reports/report.css",
        "file:///etc/passwd",
        f"{PDF_BASE_URL}static/../../etc/passwd",
        f"{PDF_BASE_URL}media/secret.pdf",
        "data:text/plain,hello",
    ):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    assert static_file_for(f"{PDF_BASE_URL}static/reports/missing.css") is None


@pytest.mark.django_db
def test_identified_only_report_renders_and_says_why(closed_cycle: Any, tmp_path: Path) -> None:
    from tests.factories import SubjectFactory

    subject = SubjectFactory(cycle=closed_cycle)
    ResponseFactory(subject=subject, group=Group.SELF)
    ResponseFactory(subject=subject, group=Group.PEER)
    report = Report.objects.create(cycle=closed_cycle, subject=subject)
    services.report_build(report_id=report.id)
    report.refresh_from_db()
    assert report.status == Report.Status.READY
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(bytes(report.pdf))
    text = " ".join(pdf_text(pdf_path).split())
    assert "self and manager scores only" in text
    assert "No Others point" in text
    assert "Too few peers, direct reports and outside raters gave ratings for any anonymous figure" in text
    # a report with fewer figures is shorter, and still leaves no page but the last half empty
    pages = page_images(pdf_path, tmp_path, dpi=40)
    assert 1 < len(pages) < 4
    for page in pages[:-1]:
        assert empty_from_bottom(page) < 0.5


@pytest.mark.django_db
def test_a_dropped_group_is_never_named_in_data_page_or_pdf(
    client: Client, closed_cycle: Any, coach: Any, tmp_path: Path
) -> None:
    # given: three peers (shown) and one direct report (dropped everywhere, k=3). Naming
    # the dropped group ("answers from direct reports are left out") would tell the
    # reader that the lone direct report answered.
    from tests.factories import PersonFactory, SubjectFactory

    subject = SubjectFactory(cycle=closed_cycle, person=PersonFactory(team=closed_cycle.team, name="Jonas Berg"))
    answers_create(subject, peers=3, direct_reports=1)
    report = Report.objects.create(cycle=closed_cycle, subject=subject)

    # when
    services.report_build(report_id=report.id)

    # then
    report.refresh_from_db()
    assert report.status == Report.Status.READY
    assert any("Some ratings count in no score" in notice for notice in report.data["notices"])
    CoachAssignment.objects.create(coach=coach, cycle=closed_cycle)
    client.force_login(coach)
    page = client.get(f"/reports/{report.id}/").content.decode()
    assert "Some ratings count in no score" in page
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(bytes(report.pdf))
    pdf = " ".join(pdf_text(pdf_path).split())
    assert "Some ratings count in no score" in pdf
    for where, text in (("data", json.dumps(report.data)), ("page", page), ("pdf", pdf)):
        lowered = text.lower()
        for name in ("direct report", "direct_report"):
            assert name not in lowered, (where, name)


@pytest.mark.django_db
def test_web_page_renders_the_same_report_template(
    client: Client, coach: Any, ready_report: Report, django_assert_num_queries: Any
) -> None:
    CoachAssignment.objects.create(coach=coach, cycle=ready_report.cycle)
    client.force_login(coach)
    # session, user, report, coach check, releases: the summary, suggestions and charts
    # come from the stored JSON, with no query of their own
    with django_assert_num_queries(5):
        response = client.get(f"/reports/{ready_report.id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "reports/report.html" in [template.name for template in response.templates]
    assert "Balance report: Jonas Berg" in html
    # the plane's shapes are the one SVG, and it holds no text: every label is HTML
    assert html.count("<svg") == 1
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "<text" not in svg
    assert html.count('class="bars"') == 6  # one bar chart per dimension
    assert 'class="bars stacked gaps-chart"' in html and 'class="bars stacked pairs-chart"' in html
    for sentence in ready_report.data["reading"]["summary"]:
        assert escape(sentence) in html
    assert "Strong management only — bureaucracy risk" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_rendering_is_deterministic_enough_to_reuse_fonts() -> None:
    data = {
        "subject": {"name": "A"},
        "cycle": {"name": "B"},
        "k": 3,
        "comment_min": 3,
        "quadrant_cut": 3.5,
        "notices": [],
        "dimensions": [],
        "indices": {},
        "pairs": [],
        "items": {"shown": 0, "highest": [], "lowest": []},
        "comments": [],
        "trend": None,
    }
    first = report_pdf_render(data=data)
    second = report_pdf_render(data=data)
    assert first.startswith(b"%PDF") and second.startswith(b"%PDF")


def test_the_chart_positions_stylesheet_is_the_generated_one() -> None:
    # the site's CSP allows no inline style: every place a chart uses is a class of this file
    path = Path(__file__).resolve().parents[2] / "reports" / "static" / "reports" / "report-positions.css"
    assert path.read_text(encoding="utf-8") == charts.positions_css()


def test_a_trend_draws_the_earlier_point_and_an_arrow_to_this_one() -> None:
    plane = charts.plane_chart(
        points=[
            {"label": "Self", "management": 4.1, "leadership": 4.6, "kind": "self"},
            {"label": "Others", "management": 3.8, "leadership": 3.0, "kind": "others"},
        ],
        cut=3.5,
        title="Plane",
        earlier={"label": "Spring 2025", "management": 3.2, "leadership": 2.6},
    )
    assert '<span class="plane-mark earlier at-x-22 at-y-24">' in plane
    assert "Spring 2025" in plane and "<polygon" in plane
    assert "style=" not in plane


def test_a_worker_pool_process_starts_with_the_renderer_loaded_and_its_objects_frozen() -> None:
    import gc

    from config.celery import pool_process_ready
    from reports import rendering

    rendering._stylesheets.cache_clear()
    # an in-process worker started by another test may have frozen this process already
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        pool_process_ready()
        assert rendering._stylesheets.cache_info().currsize == 1
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


# A pool process forked after the worker's main process loaded the renderer's libraries:
# does rendering its first PDF start any program (ctypes asks gcc where a library is)?
_FORKED_POOL_PROCESS = """
import os, subprocess, sys
import django
django.setup()
from config.celery import renderer_libraries_load
if sys.argv[1] == "loaded":
    renderer_libraries_load()
started = []
class Counted(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        started.append(args[0])
        super().__init__(*args, **kwargs)
subprocess.Popen = Counted
pid = os.fork()
if pid == 0:
    from reports.rendering import renderer_warm
    renderer_warm()
    os._exit(3 if started else 0)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.parametrize(("main_process", "programs_run"), [("loaded", False), ("not loaded", True)])
def test_a_pool_process_finds_the_renderers_libraries_loaded_by_the_main_process(
    main_process: str, programs_run: bool
) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": "postgres://renderer/none",
        "REDIS_URL": "redis://renderer:6379/0",
    }
    finished = subprocess.run(
        [sys.executable, "-c", _FORKED_POOL_PROCESS, main_process],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 3: the forked process started a program; 0: it did not (the other case shows the check bites)
    assert finished.returncode == (3 if programs_run else 0), finished.stderr[-2000:]
