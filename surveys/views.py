"""The manager's pages: teams, people, review cycles, raters, progress.

Every view loads its team or cycle through the access helpers in ``selectors``, so
another manager's objects answer 404 exactly like missing ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from config.csrf import no_referrer_csrf_protect
from config.pagination import page_get, page_query
from config.token_routes import link_dead
from surveys import selectors, services
from surveys.forms import (
    CycleForm,
    NominationForm,
    PeopleImportForm,
    PersonForm,
    RaterForm,
    TeamForm,
    form_errors_apply,
)
from surveys.models import Cycle, Invitation, Reminder
from surveys.signals import CloseRefused


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


@login_required
@require_http_methods(["GET", "POST"])
def team_list(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(manager=request.user, name=form.cleaned_data["name"])
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(request, f"Team {team.name} created. Now add its people.")
            return redirect("surveys:team-detail", team_id=team.pk)
    return render(request, "surveys/team_list.html", {"teams": selectors.team_list(user=request.user), "form": form})


def _team_page(request: HttpRequest, team: Any, **forms: Any) -> HttpResponse:
    context = {
        "team": team,
        "people": selectors.people_list(team=team),
        "cycles": selectors.cycle_list(user=request.user).filter(team=team),
        "person_form": forms.get("person_form") or PersonForm(team=team),
        "import_form": forms.get("import_form") or PeopleImportForm(),
        "team_form": forms.get("team_form") or TeamForm(initial={"name": team.name}),
        "import_errors": forms.get("import_errors", []),
    }
    status = 400 if any(form.errors for form in forms.values() if hasattr(form, "errors")) else 200
    if forms.get("import_errors"):
        status = 400
    return render(request, "surveys/team_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get_for_user(user=request.user, team_id=team_id)
    if request.method == "POST" and request.POST.get("action") == "rename":
        team_form = TeamForm(request.POST)
        if team_form.is_valid():
            try:
                services.team_update(team=team, name=team_form.cleaned_data["name"])
            except ValidationError as error:
                form_errors_apply(team_form, error)
            else:
                messages.success(request, "Team renamed.")
                return redirect("surveys:team-detail", team_id=team.pk)
        return _team_page(request, team, team_form=team_form)
    if request.method == "POST":
        person_form = PersonForm(request.POST, team=team)
        if person_form.is_valid():
            try:
                person = services.person_create(team=team, **person_form.cleaned_data)
            except ValidationError as error:
                form_errors_apply(person_form, error)
            else:
                messages.success(request, f"{person.name} added.")
                return redirect("surveys:team-detail", team_id=team.pk)
        return _team_page(request, team, person_form=person_form)
    return _team_page(request, team)


@login_required
@require_POST
def people_import(request: HttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get_for_user(user=request.user, team_id=team_id)
    form = PeopleImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _team_page(request, team, import_form=form)
    try:
        people = services.people_import_csv(team=team, data=form.cleaned_data["file"].read())
    except services.CsvImportError as error:
        return _team_page(request, team, import_errors=error.messages())
    messages.success(request, f"Imported {len(people)} people.")
    return redirect("surveys:team-detail", team_id=team.pk)


@login_required
@require_http_methods(["GET", "POST"])
def person_edit(request: HttpRequest, person_id: int) -> HttpResponse:
    person = selectors.person_get_for_user(user=request.user, person_id=person_id)
    initial = {"name": person.name, "email": person.email, "reports_to": person.reports_to}
    form = PersonForm(request.POST or None, team=person.team, person=person, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.person_update(person=person, **form.cleaned_data)
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            messages.success(request, f"{person.name} saved.")
            return redirect("surveys:team-detail", team_id=person.team_id)
    status = 400 if form.errors else 200
    return render(request, "surveys/person_edit.html", {"person": person, "form": form}, status=status)


@login_required
@require_POST
def person_delete(request: HttpRequest, person_id: int) -> HttpResponse:
    person = selectors.person_get_for_user(user=request.user, person_id=person_id)
    try:
        services.person_delete(person=person)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, f"{person.name} removed from the team.")
    return redirect("surveys:team-detail", team_id=person.team_id)


@login_required
def cycle_list(request: HttpRequest) -> HttpResponse:
    context = {"rows": selectors.cycle_rows(user=request.user), "teams": selectors.teams_for_user(user=request.user)}
    return render(request, "surveys/cycle_list.html", context)


CYCLE_FIELD_RENAMES = {"status": "__all__", "raters": "__all__"}


@login_required
@require_http_methods(["GET", "POST"])
def cycle_create(request: HttpRequest, team_id: int) -> HttpResponse:
    team = selectors.team_get_for_user(user=request.user, team_id=team_id)
    initial = {"questionnaire": services.questionnaire_default(), "subjects": list(team.people.all())}
    form = CycleForm(request.POST or None, team=team, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        people = list(values.pop("subjects"))
        try:
            cycle = services.cycle_create(team=team, by=request.user, people=people, **values)
        except ValidationError as error:
            form_errors_apply(form, error, renames=CYCLE_FIELD_RENAMES)
        else:
            messages.success(request, "Draft cycle created with the default raters. Check them, then launch.")
            return redirect("surveys:cycle-detail", cycle_id=cycle.pk)
    status = 400 if form.errors else 200
    return render(request, "surveys/cycle_form.html", {"form": form, "team": team, "cycle": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def cycle_edit(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    if cycle.status == Cycle.Status.CLOSED:
        messages.error(request, "A closed cycle cannot be changed.")
        return redirect("surveys:cycle-detail", cycle_id=cycle.pk)
    initial = {
        field: getattr(cycle, field)
        for field in (
            "name",
            "deadline",
            "questionnaire",
            "anonymity_min",
            "comment_min",
            "nomination_mode",
            "nomination_min",
            "nomination_max",
            "reminder_days_before",
        )
    }
    initial["subjects"] = [subject.person for subject in cycle.subjects.select_related("person")]
    form = CycleForm(request.POST or None, team=cycle.team, cycle=cycle, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {field: value for field, value in form.cleaned_data.items() if field in form.changed_data}
        if "subjects" in changes:
            changes["subjects"] = list(changes["subjects"])
        try:
            services.cycle_update(cycle=cycle, changes=changes)
        except ValidationError as error:
            form_errors_apply(form, error, renames=CYCLE_FIELD_RENAMES)
        else:
            messages.success(request, "Cycle saved.")
            return redirect("surveys:cycle-detail", cycle_id=cycle.pk)
    status = 400 if form.errors else 200
    return render(request, "surveys/cycle_form.html", {"form": form, "team": cycle.team, "cycle": cycle}, status=status)


def _progress_context(request: HttpRequest, cycle: Cycle) -> dict[str, Any]:
    """The progress table's page of subjects and what surrounds it: the live part htmx polls."""
    pager = page_get(request, selectors.progress_rows(cycle=cycle))
    return {
        "cycle": cycle,
        "pager": pager,
        "progress": selectors.cycle_progress(cycle=cycle, rows=pager.rows),
        "emails": selectors.cycle_email_summary(cycle=cycle),
        "reminders": selectors.reminder_rounds(cycle=cycle),
        "live": cycle.status == Cycle.Status.OPEN,
    }


@login_required
def cycle_detail(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    context = _progress_context(request, cycle)
    if request.headers.get("HX-Request") == "true":
        # The live progress table alone (htmx polls it, on the page shown, while the cycle is open).
        return render(request, "surveys/_progress.html", context)
    if cycle.status != Cycle.Status.CLOSED:
        # The count covers the whole cycle; the names, the people on this page.
        context["at_risk_count"] = selectors.subjects_at_risk_count(cycle=cycle)
        if context["at_risk_count"]:
            page_ids = [subject_id for subject_id, _, _ in context["pager"].rows]
            context["at_risk"] = selectors.subjects_short_of_k(cycle=cycle, subject_ids=page_ids)
    if cycle.status == Cycle.Status.NOMINATING:
        context["nominations"] = selectors.nomination_summary(cycle=cycle)
    return render(request, "surveys/cycle_detail.html", context)


# The statuses in which each irreversible action can still happen.
CONFIRMABLE = {
    "launch": (Cycle.Status.DRAFT, Cycle.Status.NOMINATING),
    "delete": (Cycle.Status.DRAFT, Cycle.Status.NOMINATING),
    "close": (Cycle.Status.OPEN,),
}


def _confirm(request: HttpRequest, cycle: Cycle, *, action: str) -> HttpResponse:
    """The confirmation page of an irreversible action: a real page, so it works without JavaScript.

    An old link or a second tab finds the action done already: it is sent back to the cycle.
    """
    if cycle.status not in CONFIRMABLE[action]:
        messages.info(request, f"This cycle is {cycle.get_status_display().lower()}: nothing to {action}.")
        return _back(cycle)
    return render(request, "surveys/cycle_confirm.html", {"cycle": cycle, "action": action})


@login_required
@require_http_methods(["GET", "POST"])
def cycle_delete(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    if request.method == "GET":
        return _confirm(request, cycle, action="delete")
    try:
        services.cycle_delete(cycle=cycle)
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return redirect("surveys:cycle-detail", cycle_id=cycle.pk)
    messages.success(request, f"Draft {cycle.name} deleted.")
    return redirect("surveys:cycle-list")


@login_required
@require_http_methods(["GET", "POST"])
def cycle_raters(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    form = RaterForm(request.POST or None, cycle=cycle)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.rater_add(cycle=cycle, **form.cleaned_data)
        except ValidationError as error:
            form_errors_apply(form, error, renames={"status": "__all__"})
        else:
            if invitation.source == Invitation.Source.NOMINATED:
                name = invitation.subject.person.name
                messages.success(request, f"{invitation.rater_email} is on {name}'s own list: added by you too.")
            else:
                messages.success(request, f"{invitation.rater_email} added.")
            return redirect("surveys:cycle-raters", cycle_id=cycle.pk)
    # A page of subjects at a time, each with its raters: a cycle of a thousand people has ten
    # thousand. The approvals still pending and the subjects short of k are the whole cycle's.
    pager = page_get(request, cycle.subjects.order_by("person__name", "id").values_list("id", "person__name"))
    shown = [subject_id for subject_id, _ in pager.rows]
    raters: dict[int, list[Any]] = {}
    for invitation in selectors.raters_list(cycle=cycle).filter(subject_id__in=shown):
        raters.setdefault(invitation.subject_id, []).append(invitation)
    status = 400 if form.errors else 200
    nominating = cycle.status == Cycle.Status.NOMINATING
    nominations = (
        {row.subject_id: row for row in selectors.nomination_rows(cycle=cycle, subject_ids=shown)} if nominating else {}
    )
    open_to_change = cycle.status != Cycle.Status.CLOSED
    at_risk_count = selectors.subjects_at_risk_count(cycle=cycle) if open_to_change else 0
    at_risk = (
        {risk.subject_id: risk for risk in selectors.subjects_short_of_k(cycle=cycle, subject_ids=shown)}
        if at_risk_count
        else {}
    )
    context = {
        "cycle": cycle,
        "form": form,
        "subjects": [
            {
                "id": subject_id,
                "name": name,
                "raters": raters.get(subject_id, []),
                "nomination": nominations.get(subject_id),
                "risk": at_risk.get(subject_id),
            }
            for subject_id, name in pager.rows
        ],
        "pager": pager,
        "at_risk_count": at_risk_count,
        "at_risk_on_page": bool(at_risk),
        "editable": cycle.status in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING),
        "nominating": nominating,
        "pending_approval": selectors.nomination_summary(cycle=cycle).pending if nominating else 0,
    }
    return render(request, "surveys/cycle_raters.html", context, status=status)


@login_required
@require_POST
def rater_remove(request: HttpRequest, cycle_id: int, rater_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    try:
        invitation = selectors.invitation_get_for_cycle(cycle=cycle, invitation_id=rater_id)
        removed = services.rater_remove(cycle=cycle, invitation=invitation)
    except Http404:
        removed = False
    except ValidationError as error:
        messages.error(request, _error_text(error))
        return _raters_page(request, cycle)
    if removed:
        messages.success(request, f"{invitation.rater_email} removed.")
    else:
        # A subject's list sent again since the page was shown replaces their nominations.
        messages.info(request, "That rater was no longer on the list (a list was sent again since): see it below.")
    return _raters_page(request, cycle)


def _raters_page(request: HttpRequest, cycle: Cycle) -> HttpResponseRedirect:
    """Back to the page of the raters list the form was on (``?page=`` of its action)."""
    return HttpResponseRedirect(reverse("surveys:cycle-raters", kwargs={"cycle_id": cycle.pk}) + page_query(request))


def _back(cycle: Cycle) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("surveys:cycle-detail", kwargs={"cycle_id": cycle.pk}))


@login_required
@require_http_methods(["GET", "POST"])
def cycle_launch(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    if request.method == "GET":
        return _confirm(request, cycle, action="launch")
    try:
        launched = services.cycle_launch(cycle=cycle, by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        if launched:
            messages.success(request, "Launched: the invitations are on their way.")
        else:
            messages.info(request, "This cycle was already launched; nothing was sent again.")
    return _back(cycle)


@login_required
@require_POST
def cycle_remind(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    try:
        reminder = services.reminder_send(cycle=cycle, kind=Reminder.Kind.MANUAL, by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        assert reminder is not None
        # No number of recipients: see ``selectors.cycle_email_summary``.
        messages.success(request, "Reminder queued for everyone who has not answered yet.")
    return _back(cycle)


@login_required
@require_http_methods(["GET", "POST"])
def cycle_close(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    if request.method == "GET":
        return _confirm(request, cycle, action="close")
    try:
        closed = services.cycle_close(cycle=cycle, by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    except CloseRefused as error:
        messages.error(request, f"The cycle is still open: {error}")
    else:
        if closed:
            messages.success(request, "Closed: the survey links no longer work and the reports are being prepared.")
        else:
            messages.info(request, "This cycle is already closed.")
    return _back(cycle)


@login_required
@require_POST
def emails_retry(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    retried = services.outbound_emails_retry(cycle=cycle)
    messages.success(request, f"{len(retried)} failed email(s) queued again.")
    return _back(cycle)


# --- Nominations: the subject's public page (no account; the emailed link is the key) ------


@no_referrer_csrf_protect
@require_http_methods(["GET", "POST"])
def nomination(request: HttpRequest, token: str) -> HttpResponse:
    response = _nomination_page(request, token)
    # The page's own URL carries the secret token: no Referer header may repeat it, not
    # even to this site's static files (whose access logs would then hold it).
    response["Referrer-Policy"] = "no-referrer"
    return response


def _nomination_page(request: HttpRequest, token: str) -> HttpResponse:
    found = selectors.nomination_get_by_token(token=token)
    if found is None or found.subject.cycle.status != Cycle.Status.NOMINATING:
        # One neutral page for unknown, replaced and closed links alike.
        return link_dead(render(request, "surveys/nomination_closed.html", status=404))
    subject = found.subject
    # The list as the subject sent it (less the manager's removals), not the invitations it
    # became: a rater both chose is converted to the subject's, but one the manager had in the
    # manager's slot, say, is not, and an invitation read back would show whom the manager chose.
    initial = {
        "peers": found.sent_peer_ids,
        "others": "\n".join(
            f"{rater['name']}, {rater['email']}" if rater["name"] else rater["email"] for rater in found.sent_outside
        ),
    }
    form = NominationForm(
        request.POST or None, peers=selectors.nomination_peer_choices(subject=subject), initial=initial
    )
    if found.approved_at is not None:
        # The manager approved the list: it is shown, no longer changed from here.
        form = NominationForm(peers=selectors.nomination_peer_choices(subject=subject), initial=initial)
        context = {"subject": subject, "cycle": subject.cycle, "form": form, "nomination": found, "approved": True}
        return render(request, "surveys/nomination.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            services.nomination_submit(
                nomination=found,
                peers=list(form.cleaned_data["peers"]),
                others=[services.OutsideRater(name=name, email=email) for name, email in form.cleaned_data["others"]],
            )
        except ValidationError as error:
            form_errors_apply(form, error)
        else:
            return render(request, "surveys/nomination_thanks.html", {"subject": subject, "cycle": subject.cycle})
    context = {"subject": subject, "cycle": subject.cycle, "form": form, "nomination": found}
    return render(request, "surveys/nomination.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def cycle_nominations_open(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    try:
        opened = services.cycle_nominations_open(cycle=cycle, by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        if opened:
            messages.success(request, "Each subject has been emailed a link to choose their raters.")
        else:
            messages.info(request, "Nominations were already open; nothing was sent again.")
    return _back(cycle)


def _seen(request: HttpRequest) -> datetime:
    """When the page that posted showed the lists (its hidden ``seen`` field); a form without
    one is treated as seen never, so any list sent at all must be looked at again."""
    try:
        seen = datetime.fromisoformat(request.POST.get("seen", ""))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return seen if seen.tzinfo else seen.replace(tzinfo=UTC)


@login_required
@require_POST
def nomination_approve(request: HttpRequest, cycle_id: int, subject_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    subject = selectors.subject_get_for_cycle(cycle=cycle, subject_id=subject_id)
    try:
        approved = services.nomination_approve(cycle=cycle, subject=subject, by=request.user, seen=_seen(request))
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        if approved:
            messages.success(
                request, f"{subject.person.name}'s raters approved; {subject.person.name} is told by email."
            )
        else:
            messages.info(request, f"{subject.person.name}'s raters were already approved.")
    return _raters_page(request, cycle)


@login_required
@require_POST
def nominations_approve_rest(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
    try:
        count = services.nominations_approve_rest(cycle=cycle, by=request.user, seen=_seen(request))
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, f"{count} list(s) of raters approved as they are; each subject is told by email.")
    return _back(cycle)
