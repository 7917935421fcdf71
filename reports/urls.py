from __future__ import annotations

from django.urls import path

from config.token_routes import RELEASE, token_path
from reports import apis, views

app_name = "reports"

urlpatterns = [
    # Pages
    path("reports/", views.coach_home, name="coach"),
    path("reports/<int:report_id>/", views.report_detail, name="detail"),
    path("reports/<int:report_id>/pdf/", views.report_pdf, name="pdf"),
    path("reports/<int:report_id>/rerun/", views.report_rerun, name="rerun"),
    path("reports/<int:report_id>/release/", views.report_release, name="release"),
    path("reports/<int:report_id>/releases/<int:release_id>/revoke/", views.release_revoke, name="release-revoke"),
    path("reports/<int:report_id>/releases/<int:release_id>/retry/", views.release_retry, name="release-retry"),
    path("reports/cycles/<int:cycle_id>/pdfs.zip", views.cycle_zip, name="cycle-zip"),
    path("reports/cycles/<int:cycle_id>/team/", views.team_balance, name="team"),
    path("reports/cycles/<int:cycle_id>/coaches/", views.cycle_coaches, name="coaches"),
    path("reports/cycles/<int:cycle_id>/coaches/notice/", views.cycle_coach_notice, name="coaches-notice"),
    path(
        "reports/cycles/<int:cycle_id>/coaches/<int:assignment_id>/remove/",
        views.coach_unassign,
        name="coach-unassign",
    ),
    # The subject's emailed download link (config.token_routes).
    token_path(RELEASE, views.release_download, name="release-download"),
    # API
    path("api/reports/", apis.ReportListApi.as_view(), name="api-list"),
    path("api/reports/<int:report_id>/", apis.ReportDetailApi.as_view(), name="api-detail"),
    path("api/reports/<int:report_id>/pdf/", apis.ReportPdfApi.as_view(), name="api-pdf"),
    path("api/reports/<int:report_id>/rerun/", apis.ReportRerunApi.as_view(), name="api-rerun"),
    path("api/reports/<int:report_id>/release/", apis.ReportReleaseApi.as_view(), name="api-release"),
    path("api/reports/<int:report_id>/releases/", apis.ReleaseListApi.as_view(), name="api-releases"),
    path(
        "api/reports/<int:report_id>/releases/<int:release_id>/retry/",
        apis.ReleaseRetryApi.as_view(),
        name="api-release-retry",
    ),
    path(
        "api/reports/<int:report_id>/releases/<int:release_id>/revoke/",
        apis.ReleaseRevokeApi.as_view(),
        name="api-release-revoke",
    ),
    path("api/reports/cycles/<int:cycle_id>/team/", apis.TeamBalanceApi.as_view(), name="api-team"),
    path("api/reports/cycles/<int:cycle_id>/coaches/", apis.CoachAssignmentListApi.as_view(), name="api-coaches"),
    path(
        "api/reports/cycles/<int:cycle_id>/coaches/<int:assignment_id>/",
        apis.CoachAssignmentDetailApi.as_view(),
        name="api-coach-detail",
    ),
]
