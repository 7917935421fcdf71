"""The rater's pages: the emailed link, the survey form, decline, thank you, and the neutral page.

The emailed link ``/s/<token>/`` is exchanged at once for a key kept in this browser
(``feedback.browser``) and the browser is sent on to ``/survey/<key>/``, where ``key`` is
random and means something only with this browser's cookie — so the token never sits in
the address bar, history, a Referer header or a screenshot of the form.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import escape_leading_slashes
from django.views.decorators.http import require_http_methods, require_POST

from config.csrf import no_referrer_csrf_protect
from config.forms import form_fields_parsed
from config.token_routes import link_dead, unlogged
from feedback.answers import COMMENT_FIELDS, AnswersInvalid
from feedback.browser import survey_browser, survey_browser_kept
from feedback.selectors import (
    SurveyInvitation,
    invitation_answered,
    invitation_get_answerable,
    invitation_get_answerable_by_token,
)
from feedback.services import (
    OpenInvitation,
    SurveyNotOpen,
    invitation_open_mark,
    response_decline,
    response_submit,
)
from feedback.survey_page import CANT_SAY, RADIO_VALUES, SURVEY_TEMPLATE, survey_page_context, survey_page_first_visit

View = Callable[..., HttpResponse]

# The one-time message (a signed cookie, read once) that makes the page after a decline say
# "declined" rather than "thank you for answering": neither the address, which stays in the
# browser's history, nor the survey cookie, which must hold nothing once the answer is stored.
DECLINED_TAG = "survey-declined"


def survey_headers(view: View) -> View:
    """No Referer leaves a survey page, nothing is cached, no search engine indexes it.

    Nothing third-party loads either: the Content-Security-Policy of every page
    (``CONTENT_SECURITY_POLICY`` in the settings) allows our own origin only.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "no-store"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapper


def survey_too_large_keeps_draft(view: View) -> View:
    """A post larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` gets the survey page back (413).

    Django refuses to read such a body, so nothing in it can be shown again; the page
    is rendered as for a first visit, where ``survey.js`` restores every answer from the
    draft this browser kept, and says what happened.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, key: str) -> HttpResponse:
        try:
            return view(request, key)
        except RequestDataTooBig:
            invitation = _browser_invitation(request, key)
            if invitation is None:
                return _not_open()
            context = survey_page_context(invitation, key)
            context.update(too_large=True, limit_kb=settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024)
            return render(request, SURVEY_TEMPLATE, context, status=413)

    return wrapper


def _not_open() -> HttpResponse:
    """One page, byte for byte, for every link that cannot be answered.

    Rendered without the request, so nothing about the visitor, the session or the
    reason (unknown, expired, answered, declined, cycle closed) can change a byte.
    """
    return link_dead(HttpResponse(render_to_string("feedback/link_not_open.html")))


def _survey_url(key: str) -> str:
    return reverse("feedback:survey", kwargs={"key": key})


@survey_headers
@survey_browser_kept
def link_open(request: HttpRequest, token: str) -> HttpResponse:
    """Exchange an emailed link for a key kept in this browser, then redirect to a URL without the token.

    GET and HEAD only, any number of times (mail scanners open links too): besides this
    browser's cookie, the only change is the invitation's first-opened mark.
    """
    if request.method not in ("GET", "HEAD"):
        # Django's request logger would write the path, token and all, for this 405.
        return unlogged(HttpResponseNotAllowed(["GET", "HEAD"]))
    invitation = invitation_get_answerable_by_token(token=token)
    if invitation is None:
        return _not_open()
    invitation_open_mark(invitation_id=invitation.pk)
    key = survey_browser(request).key_open(OpenInvitation.of(invitation))
    return HttpResponseRedirect(_survey_url(key), status=303)


def _rating_from_form(value: str) -> Any:
    """A radio value as the API takes it: "1".."5" → int, "cant_say" → None; anything else is kept, to be refused."""
    if value == CANT_SAY:
        return None
    if value in RADIO_VALUES:
        return int(value)
    return value


def _answers_from_form(request: HttpRequest) -> dict[str, Any]:
    form = request.POST
    prefix = "rating-"
    ratings = {
        name[len(prefix) :]: _rating_from_form(str(form.get(name, ""))) for name in form if name.startswith(prefix)
    }
    comments = {name: form.get(f"comment-{name}", "") for name, _ in COMMENT_FIELDS}
    return {"ratings": ratings, "comments": comments}


def _browser_invitation(request: HttpRequest, key: str) -> SurveyInvitation | None:
    """The invitation behind this browser's key, if it can be answered now."""
    invitation_id = survey_browser(request).invitation_id(key)
    if invitation_id is None:
        return None
    invitation = invitation_get_answerable(invitation_id=invitation_id)
    if invitation is None:
        # Closed, expired or answered elsewhere since the link was opened.
        survey_browser(request).forget(key, done=False)
    return invitation


def _not_answerable(request: HttpRequest, key: str, invitation_id: int | None) -> HttpResponse:
    """The page for a key whose invitation cannot take an answer (any more)."""
    browser = survey_browser(request)
    if invitation_id is not None and invitation_answered(invitation_id=invitation_id):
        # Stored by an earlier submit whose answer never reached this browser (the
        # connection or the database dropped after the commit): already received.
        browser.forget(key, done=True)
        return render(request, "feedback/thanks.html", {"key": key})
    if invitation_id is not None:
        browser.forget(key, done=False)
    return _not_open()


@survey_headers
@survey_browser_kept
@survey_too_large_keeps_draft
@form_fields_parsed
@no_referrer_csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def survey(request: HttpRequest, key: str) -> HttpResponse:
    """The survey form (GET) and its submission (POST), bound to this browser's cookie."""
    browser = survey_browser(request)
    if browser.is_done(key):
        declined = any(message.extra_tags == DECLINED_TAG for message in messages.get_messages(request))
        # The page says it in its own words; the message is not listed again above it.
        return render(request, "feedback/thanks.html", {"key": key, "declined": declined, "messages": ()})
    invitation_id = browser.invitation_id(key)
    if request.method != "POST":
        invitation = _browser_invitation(request, key)
        if invitation is None:
            return _not_answerable(request, key, invitation_id)
        return survey_page_first_visit(request, invitation, key)
    if invitation_id is None:
        return _not_open()
    # The service stores the answer in one statement that says whether the invitation was
    # still open (from what this browser holds of it); the page's own read is needed only
    # to show errors.
    try:
        response_submit(
            invitation_id=invitation_id, answers=_answers_from_form(request), held=browser.invitation_held(key)
        )
    except AnswersInvalid as invalid:
        invitation = _browser_invitation(request, key)
        if invitation is None:
            return _not_answerable(request, key, invitation_id)
        context = survey_page_context(invitation, key, values=request.POST.dict(), errors=invalid.errors)
        # The page now shows what was posted; the browser keeps it as the new draft.
        context["from_post"] = True
        return render(request, SURVEY_TEMPLATE, context, status=400)
    except SurveyNotOpen:
        return _not_answerable(request, key, invitation_id)
    browser.forget(key, done=True)
    # Back to this very address (its own URL, as reverse() would write it for a key this
    # browser holds: letters, digits, - and _), without building it again; a path that starts
    # with // (a prefix a proxy sent) is escaped as reverse() escapes it, to stay on this site.
    return HttpResponseRedirect(escape_leading_slashes(request.path), status=303)


@survey_headers
@survey_browser_kept
@survey_too_large_keeps_draft
@form_fields_parsed
@no_referrer_csrf_protect
@require_POST
def survey_decline(request: HttpRequest, key: str) -> HttpResponse:
    """Decline to answer, with an optional reason."""
    browser = survey_browser(request)
    if browser.is_done(key):
        return HttpResponseRedirect(_survey_url(key), status=303)
    invitation = _browser_invitation(request, key)
    if invitation is None:
        return _not_open()
    try:
        response_decline(invitation_id=invitation.id, reason=request.POST.get("reason", ""))
    except AnswersInvalid as invalid:
        context = survey_page_context(
            invitation, key, values={"reason": request.POST.get("reason", "")}, errors=invalid.errors
        )
        context["decline_open"] = True
        return render(request, SURVEY_TEMPLATE, context, status=400)
    except SurveyNotOpen:
        browser.forget(key, done=False)
        return _not_open()
    browser.forget(key, done=True)
    messages.info(request, "You declined this survey.", extra_tags=DECLINED_TAG)
    return HttpResponseRedirect(_survey_url(key), status=303)
