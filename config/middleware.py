"""Middleware that must run before anything else."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from config import views


class PermissionsPolicyMiddleware:
    """No page may use the camera, microphone, location or payment APIs (none of ours does)."""

    POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", self.POLICY)
        return response


class HealthCheckMiddleware:
    """Answers ``/healthz`` before host validation and the HTTPS redirect.

    Container and load-balancer probes call the server by its internal address
    (``127.0.0.1:8000``), which is not one of the public ``ALLOWED_HOSTS`` and speaks
    plain HTTP; without this, production settings would answer them 400 or 301.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return views.healthz(request)
        return self.get_response(request)
