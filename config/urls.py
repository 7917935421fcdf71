from __future__ import annotations

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import apis, views

# JSON under /api/, Django's pages elsewhere (config/exceptions.py).
handler400 = "config.exceptions.bad_request"
handler403 = "config.exceptions.permission_denied"
handler404 = "config.exceptions.page_not_found"
handler500 = "config.exceptions.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # The raters' pages and API first: the most requested, and resolved in the order listed.
    path("", include("feedback.urls")),
    path("", views.home, name="home"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/auth/token/", apis.TokenApi.as_view(), name="api-token"),
    path("api/me/", apis.MeApi.as_view(), name="api-me"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's start-up script is served as a file of its own, so the page runs under the
    # site's Content-Security-Policy (no inline script). Its icons are data: images and it
    # styles elements inline; the page shows only our own schema, never user content.
    path(
        "api/docs/",
        csp_update({"img-src": ["data:"], "style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path("", include("surveys.urls")),
    path("", include("reports.urls")),
]
