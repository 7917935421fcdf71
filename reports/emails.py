"""The email that releases a report to its subject (template triplet ``emails/report-release-*``)."""

from __future__ import annotations

from django.utils import timezone

from config.emails import email_build
from reports.models import Release


def report_release_email_send(*, release: Release, link: str) -> int:
    """Send the release email now; returns how many messages the backend accepted (1)."""
    report = release.report
    context = {
        "person_name": report.subject.person.name,
        "cycle_name": report.cycle.name,
        "link": link,
        "expires_at": timezone.localtime(release.expires_at),
    }
    return email_build(name="report-release", context=context, to=release.email).send()
