from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from reports.models import CoachAssignment, Release, Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["id", "cycle", "subject", "status", "attempts", "pdf_size", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["cycle", "subject__person"]
    search_fields = ["subject__person__name", "cycle__name"]
    # The data and PDF are the filtered report; nobody edits them by hand.
    exclude = ["pdf"]
    readonly_fields = [
        "cycle",
        "subject",
        "status",
        "reason",
        "attempts",
        "data",
        "pdf_size",
        "pdf_sha256",
        "queued_at",
        "started_at",
        "finished_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Report]:
        return super().get_queryset(request).defer("pdf")


@admin.register(CoachAssignment)
class CoachAssignmentAdmin(admin.ModelAdmin):
    list_display = ["coach", "cycle", "subject", "created_by", "created_at"]
    list_select_related = ["coach", "cycle", "subject__person", "created_by"]
    raw_id_fields = ["coach", "cycle", "subject", "created_by"]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["report", "email", "status", "attempts", "sent_at", "expires_at", "revoked_at", "created_by"]
    list_filter = ["status"]
    list_select_related = ["report", "created_by"]
    # The token itself was never stored; its hash is useless to show.
    exclude = ["token_hash"]
    # The email job owns these; a coach tries a failed email again from the report page.
    readonly_fields = ["report", "email", "created_by", "status", "attempts", "last_error", "claimed_at", "sent_at"]
