from __future__ import annotations

from django.urls import path

from config.token_routes import NOMINATION, token_path
from surveys import apis, views

app_name = "surveys"

urlpatterns = [
    # Pages
    path("teams/", views.team_list, name="team-list"),
    path("teams/<int:team_id>/", views.team_detail, name="team-detail"),
    path("teams/<int:team_id>/import/", views.people_import, name="people-import"),
    path("teams/<int:team_id>/cycles/new/", views.cycle_create, name="cycle-create"),
    path("people/<int:person_id>/edit/", views.person_edit, name="person-edit"),
    path("people/<int:person_id>/delete/", views.person_delete, name="person-delete"),
    path("cycles/", views.cycle_list, name="cycle-list"),
    path("cycles/<int:cycle_id>/", views.cycle_detail, name="cycle-detail"),
    path("cycles/<int:cycle_id>/edit/", views.cycle_edit, name="cycle-edit"),
    path("cycles/<int:cycle_id>/delete/", views.cycle_delete, name="cycle-delete"),
    path("cycles/<int:cycle_id>/raters/", views.cycle_raters, name="cycle-raters"),
    path("cycles/<int:cycle_id>/raters/<int:rater_id>/remove/", views.rater_remove, name="rater-remove"),
    path("cycles/<int:cycle_id>/launch/", views.cycle_launch, name="cycle-launch"),
    path("cycles/<int:cycle_id>/remind/", views.cycle_remind, name="cycle-remind"),
    path("cycles/<int:cycle_id>/close/", views.cycle_close, name="cycle-close"),
    path("cycles/<int:cycle_id>/emails/retry/", views.emails_retry, name="emails-retry"),
    path("cycles/<int:cycle_id>/nominations/open/", views.cycle_nominations_open, name="cycle-nominations-open"),
    path(
        "cycles/<int:cycle_id>/nominations/<int:subject_id>/approve/",
        views.nomination_approve,
        name="nomination-approve",
    ),
    path(
        "cycles/<int:cycle_id>/nominations/approve-rest/",
        views.nominations_approve_rest,
        name="nominations-approve-rest",
    ),
    token_path(NOMINATION, views.nomination, name="nomination"),
    # API
    path("api/teams/", apis.TeamListApi.as_view(), name="api-team-list"),
    path("api/teams/<int:team_id>/", apis.TeamDetailApi.as_view(), name="api-team-detail"),
    path("api/teams/<int:team_id>/people/", apis.PeopleApi.as_view(), name="api-people"),
    path("api/teams/<int:team_id>/people/import/", apis.PeopleImportApi.as_view(), name="api-people-import"),
    path("api/people/<int:person_id>/", apis.PersonDetailApi.as_view(), name="api-person-detail"),
    path("api/cycles/", apis.CycleListApi.as_view(), name="api-cycle-list"),
    path("api/cycles/<int:cycle_id>/", apis.CycleDetailApi.as_view(), name="api-cycle-detail"),
    path("api/cycles/<int:cycle_id>/raters/", apis.RaterListApi.as_view(), name="api-raters"),
    path("api/cycles/<int:cycle_id>/raters/<int:rater_id>/", apis.RaterDetailApi.as_view(), name="api-rater-detail"),
    path("api/cycles/<int:cycle_id>/launch/", apis.CycleLaunchApi.as_view(), name="api-cycle-launch"),
    path("api/cycles/<int:cycle_id>/progress/", apis.CycleProgressApi.as_view(), name="api-cycle-progress"),
    path("api/cycles/<int:cycle_id>/remind/", apis.CycleRemindApi.as_view(), name="api-cycle-remind"),
    path("api/cycles/<int:cycle_id>/close/", apis.CycleCloseApi.as_view(), name="api-cycle-close"),
    path("api/cycles/<int:cycle_id>/nominations/", apis.CycleNominationsApi.as_view(), name="api-cycle-nominations"),
    path(
        "api/cycles/<int:cycle_id>/nominations/<int:subject_id>/approve/",
        apis.CycleNominationApproveApi.as_view(),
        name="api-nomination-approve",
    ),
    path(
        "api/cycles/<int:cycle_id>/nominations/approve-rest/",
        apis.CycleNominationsApproveRestApi.as_view(),
        name="api-nominations-approve-rest",
    ),
]
