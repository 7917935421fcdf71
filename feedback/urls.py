from __future__ import annotations

from django.urls import path

from feedback import apis, views

app_name = "feedback"

urlpatterns = [
    # The emailed link; surveys.links.survey_url builds it and config.logging redacts it.
    path("s/<str:token>/", views.link_open, name="link"),
    path("survey/<str:key>/", views.survey, name="survey"),
    path("survey/<str:key>/decline/", views.survey_decline, name="decline"),
    path("api/survey/<str:token>/", apis.SurveyApi.as_view(), name="api-survey"),
    path("api/survey/<str:token>/responses/", apis.SurveyResponseApi.as_view(), name="api-survey-responses"),
    path("api/survey/<str:token>/decline/", apis.SurveyDeclineApi.as_view(), name="api-survey-decline"),
]
