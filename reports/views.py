"""HTML pages: coach list, report page, PDF and zip downloads, team view, releases, coach assignment."""

from __future__ import annotations

import tempfile
import zipfile
from collections import OrderedDict
from typing import IO, Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.pagination import page_get
from config.token_routes import link_dead
from reports import charts, selectors, services
from reports.forms import CoachAssignForm
from reports.models import CoachAssignment, Release, Report
from reports.rendering import WEB_LAYOUT, report_context

# The cycle's zip: PDFs fetched from the database this many at a time (a server-side
# cursor), and the zip kept in memory up to this size, then in a temporary file.
ZIP_PDFS_PER_FETCH = 20
ZIP_MEMORY_BYTES = 4 * 1024 * 1024

# Statuses a report leaves by itself: pages showing one poll until it is ready or failed.
LIVE_STATUSES = (Report.Status.QUEUED, Report.Status.RUNNING)


def signed_in_user(request: HttpRequest | Any) -> User:
    """The signed-in user of a page or API request (both are behind a sign-in check; this narrows the type)."""
    if not isinstance(request.user, User):
        raise PermissionDenied("Sign in first.")
    return request.user


def report_filename(report: Report) -> str:
    person = slugify(report.subject.person.name) or "person"
    cycle = slugify(report.cycle.name) or "cycle"
    return f"balance-report-{person}-{cycle}.pdf"


def pdf_response(*, pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def coach_home(request: HttpRequest) -> HttpResponse:
    """Everyone's own list, grouped by cycle: the reports they coach (to read) and the
    reports of the cycles they manage (status only: see ``selectors.reports_visible_to``).

    A page of rows at a time; each cycle on the page says how the whole cycle stands.
    """
    user = request.user
    pager = page_get(request, selectors.report_list_for_user(user=user))
    cycles: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for report in pager.rows:
        cycles.setdefault(report.cycle_id, {"cycle": report.cycle, "reports": []})["reports"].append(report)
    counts = selectors.report_counts_by_cycle(user=user, cycle_ids=list(cycles)) if cycles else {}
    managed = selectors.manageable_cycle_ids(user=user, cycle_ids=list(cycles)) if cycles else set[int]()
    uncoached = selectors.uncoached_by_cycle(cycle_ids=list(managed)) if managed else {}
    for cycle_id, entry in cycles.items():
        entry["counts"] = counts[cycle_id]
        entry["managed"] = cycle_id in managed
        entry["uncoached"] = uncoached.get(cycle_id)
    # Poll while any report of a cycle on the page is being built: its row may be on
    # another page, but the cycle's "n of m ready" is on this one.
    live = any(entry["counts"].live for entry in cycles.values())
    context = {"cycles": list(cycles.values()), "live": live, "pager": pager}
    if request.headers.get("HX-Request") == "true":
        return render(request, "reports/_coach_reports.html", context)
    return render(request, "reports/coach_home.html", context)


@login_required
@require_GET
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = selectors.report_get_for_user(user=request.user, report_id=report_id)
    can_release = selectors.report_is_coached_by(report=report, user=request.user)
    releases = list(selectors.releases_for_report(report=report)) if can_release else []
    context: dict[str, Any] = {
        "report_row": report,
        "can_release": can_release,
        "releases": releases,
        # Emails given up on are shown up front, not only inside the folded list.
        "releases_failed": [
            release for release in releases if release.status == Release.Status.FAILED and release.revoked_at is None
        ],
        "filename": report_filename(report),
    }
    if report.status != Report.Status.READY:
        context["live"] = report.status in LIVE_STATUSES
        return render(request, "reports/report_status.html", context)
    if request.headers.get("HX-Request") == "true":
        # The status page polled and the report is ready: htmx loads the whole page.
        response = HttpResponse("")
        response["HX-Refresh"] = "true"
        return response
    context.update(report_context(data=report.data))
    context.update(layout=WEB_LAYOUT, for_pdf=False)
    return render(request, "reports/report.html", context)


@login_required
@require_GET
def report_pdf(request: HttpRequest, report_id: int) -> HttpResponse:
    report = selectors.report_get_for_user(user=request.user, report_id=report_id)
    if report.status != Report.Status.READY or report.pdf is None:
        raise Http404("This report has no PDF yet.")
    return pdf_response(pdf=bytes(report.pdf), filename=report_filename(report))


@login_required
@require_POST
def report_rerun(request: HttpRequest, report_id: int) -> HttpResponse:
    # Re-running touches the job, not the content: the cycle's manager may do it too.
    report = selectors.report_status_get_for_user(user=request.user, report_id=report_id)
    try:
        services.report_rerun(report=report, by=signed_in_user(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "The report is queued again.")
    if getattr(report, "readable", False):
        return redirect("reports:detail", report_id=report.id)
    return redirect("reports:coach")


@login_required
@require_http_methods(["GET", "POST"])
def report_release(request: HttpRequest, report_id: int) -> HttpResponse:
    report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="releases a report")
    if request.method == "GET":
        # The confirmation step: a page of its own, so it works without JavaScript.
        return render(request, "reports/release_confirm.html", {"report_row": report})
    try:
        release, created = services.report_release(report=report, by=signed_in_user(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if created:
            messages.success(request, f"The download link will be emailed to {release.email} in a moment.")
        else:
            messages.info(request, f"This report is already released to {release.email}; nothing was sent again.")
    return redirect("reports:detail", report_id=report.id)


@login_required
@require_POST
def release_retry(request: HttpRequest, report_id: int, release_id: int) -> HttpResponse:
    report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="releases a report")
    release = get_object_or_404(Release, id=release_id, report=report)
    try:
        release = services.release_retry(release=release, by=signed_in_user(request))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"The download link will be emailed to {release.email} again in a moment.")
    return redirect("reports:detail", report_id=report.id)


@login_required
@require_POST
def release_revoke(request: HttpRequest, report_id: int, release_id: int) -> HttpResponse:
    report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="revokes a release")
    release = get_object_or_404(Release, id=release_id, report=report)
    services.release_revoke(release=release)
    messages.success(request, "The download link no longer works.")
    return redirect("reports:detail", report_id=report.id)


@login_required
@require_GET
def cycle_zip(request: HttpRequest, cycle_id: int) -> FileResponse:
    """Every ready PDF of the cycle this user may read, in one zip.

    The zip is written into a spooled temporary file (memory up to ``ZIP_MEMORY_BYTES``,
    disk beyond) from PDFs fetched ``ZIP_PDFS_PER_FETCH`` at a time, and sent from that file
    in blocks: a 1,000-subject cycle never has all its PDFs in the process's memory.
    """
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    spool = tempfile.SpooledTemporaryFile(max_size=ZIP_MEMORY_BYTES)  # noqa: SIM115 - closed by the response
    try:
        count = _cycle_zip_write(spool, reports=selectors.cycle_pdfs_for_user(user=request.user, cycle=cycle))
    except BaseException:
        spool.close()
        raise
    if not count:
        spool.close()
        raise Http404("No ready reports in this cycle yet.")
    spool.seek(0)
    response = FileResponse(
        spool,
        content_type="application/zip",
        as_attachment=True,
        filename=f"balance-reports-{slugify(cycle.name) or 'cycle'}.zip",
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _cycle_zip_write(target: IO[bytes], *, reports: QuerySet[Report]) -> int:
    """Write each report's PDF into a zip in ``target``; returns how many were written."""
    names: set[str] = set()
    count = 0
    # In a transaction: outside one, Django declares the server-side cursor WITH HOLD, and
    # PostgreSQL then copies the whole result (every PDF) aside before the first fetch.
    with transaction.atomic(), zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for report in reports.iterator(chunk_size=ZIP_PDFS_PER_FETCH):
            name = report_filename(report)
            stem, suffix = name.rsplit(".", 1)
            serial = 2
            while name in names:  # two people with the same name keep both files
                name = f"{stem}-{serial}.{suffix}"
                serial += 1
            names.add(name)
            archive.writestr(name, bytes(report.pdf or b""))
            count += 1
    return count


@login_required
@require_GET
def team_balance(request: HttpRequest, cycle_id: int) -> HttpResponse:
    # Coaches and admins only: the manager chooses the raters and sees no scores.
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    # A page of people at a time, plane included: a thousand numbered markers on one plane
    # would cover each other, and the page would weigh hundreds of kilobytes.
    summary = selectors.team_balance_summary(cycle=cycle, user=request.user)
    pager = page_get(request, selectors.team_balance_rows(cycle=cycle, user=request.user), count=summary.people)
    points = selectors.team_points(pager.rows)
    # Numbered markers keyed to the legend: names printed on the plane overlap as soon as
    # two people stand close, and then nobody can tell whose point is whose.
    shown: list[dict[str, Any]] = [
        {"number": number, "point": point, "href": reverse("reports:detail", kwargs={"report_id": point.report_id})}
        for number, point in enumerate((point for point in points if point.shown), start=1)
    ]
    plane = charts.plane_chart(
        points=[
            {
                "label": entry["point"].name,
                "management": entry["point"].management,
                "leadership": entry["point"].leadership,
                "kind": "person",
                "number": entry["number"],
                "href": entry["href"],
            }
            for entry in shown
        ],
        cut=float(selectors.quadrant_cut()),
        title=gettext("Team balance: %(cycle)s") % {"cycle": cycle.name},
        wide=True,
    )
    context = {
        "cycle": cycle,
        "pager": pager,
        "summary": summary,
        "points": points,
        "shown": shown,
        "plane": plane if shown else None,
    }
    return render(request, "reports/team_balance.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def cycle_coaches(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
    form = CoachAssignForm(request.POST or None, cycle=cycle)
    if request.method == "POST" and form.is_valid():
        try:
            services.coach_assign(
                cycle=cycle,
                coach=form.cleaned_data["coach"],
                subject=form.cleaned_data["subject"],
                by=signed_in_user(request),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Coach assigned.")
            return redirect("reports:coaches", cycle_id=cycle.id)
    context = {
        "cycle": cycle,
        "form": form,
        "assignments": selectors.coach_assignments_for_cycle(cycle=cycle),
        "uncoached": selectors.uncoached_by_cycle(cycle_ids=[cycle.pk]).get(cycle.pk),
        "has_candidates": form.fields["coach"].queryset.exists(),  # type: ignore[attr-defined]
    }
    return render(request, "reports/cycle_coaches.html", context)


@login_required
@require_GET
def cycle_coach_notice(request: HttpRequest, cycle_id: int) -> HttpResponse:
    """Who in the cycle has no coach yet: a fragment the manager's cycle page loads (htmx)."""
    cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
    context = {"cycle": cycle, "uncoached": selectors.uncoached_by_cycle(cycle_ids=[cycle.pk]).get(cycle.pk)}
    return render(request, "reports/_coach_notice.html", context)


@login_required
@require_POST
def coach_unassign(request: HttpRequest, cycle_id: int, assignment_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
    assignment = get_object_or_404(CoachAssignment, id=assignment_id, cycle=cycle)
    services.coach_unassign(assignment=assignment)
    messages.success(request, "Coach assignment removed.")
    return redirect("reports:coaches", cycle_id=cycle.id)


def _release_gone() -> HttpResponse:
    """One answer, byte for byte, for a link never issued, expired, revoked or whose report
    is being rebuilt: telling them apart would confirm which guessed tokens were real."""
    return link_dead(HttpResponse(render_to_string("reports/release_gone.html"), status=404))


@require_GET
def release_download(request: HttpRequest, token: str) -> HttpResponse:
    """The subject's emailed link: no account, just a live token."""
    release = selectors.release_get_by_token(token=token)
    if release is None or not release.is_active():
        return _release_gone()
    report = release.report
    if report.status != Report.Status.READY or report.pdf is None:
        return _release_gone()
    return pdf_response(pdf=bytes(report.pdf), filename=report_filename(report))
