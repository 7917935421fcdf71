from __future__ import annotations

from django.urls import path

from config.token_routes import SURVEY, SURVEY_API, token_path
from feedback import apis, views

app_name = "feedback"

urlpatterns = [
    # The emailed link, exchanged at once for a key kept in this browser (config.token_routes).
    token_path(SURVEY, views.link_open, name="link"),
    path("survey/<str:key>/", views.survey, name="survey"),
    path("survey/<str:key>/decline/", views.survey_decline, name="decline"),
    token_path(SURVEY_API, apis.SurveyApi.as_view(), name="api-survey"),
    token_path(
        SURVEY_API,
        apis.SurveyResponseApi.as_view(),
        name="api-survey-responses",
        tail="responses/",
        lockout_read_by_view=["POST"],
    ),
    token_path(SURVEY_API, apis.SurveyDeclineApi.as_view(), name="api-survey-decline", tail="decline/"),
]
