"""Emails built from the template triplets in ``templates/emails/``, for every app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

# The plain-text template engine (settings.TEMPLATES): subjects and text bodies are never HTML-escaped.
TEXT_ENGINE = "text"


def email_build(*, name: str, context: dict[str, Any], to: str, connection: Any = None) -> EmailMultiAlternatives:
    """One email from ``emails/<name>-subject.txt``, ``-body.txt`` and ``-body.html``.

    The subject and text body come from the plain-text template engine (no HTML
    escaping: "R&D" stays "R&D"); the HTML body from the default one, which escapes.
    """
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context, using=TEXT_ENGINE).split())
    text = render_to_string(f"emails/{name}-body.txt", context, using=TEXT_ENGINE)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to], connection=connection
    )
    message.attach_alternative(html, "text/html")
    return message
