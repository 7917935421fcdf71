"""Account endpoints shared by every client of the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import JSONParser
from config.schema import FIELD_ERRORS, DetailSerializer
from config.throttling import sign_in_locked_message, sign_in_wait


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    is_staff = serializers.BooleanField()


class MeApi(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user")
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": getattr(user, "email", ""),
            "name": user.get_full_name() if hasattr(user, "get_full_name") else "",
            "is_staff": user.is_staff,
        }
        return Response(MeSerializer(data).data)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for an API token (``Authorization: Token <key>``).

    Throttled like the login page (``config.throttling``): while too many sign-ins have
    failed for the username or from the address, every attempt answers 429.
    """

    renderer_classes = ObtainAuthToken.renderer_classes
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: TokenSerializer,
            400: FIELD_ERRORS,
            413: DetailSerializer,
            429: DetailSerializer,
        },
        summary="Exchange a username and password for an API token",
        auth=[],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = request.data.get("username", "") if hasattr(request.data, "get") else ""
        wait = sign_in_wait(request, username=str(username))
        if wait is not None:
            raise Throttled(wait=wait, detail=sign_in_locked_message(wait))
        return super().post(request, *args, **kwargs)
