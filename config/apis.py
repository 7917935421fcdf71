"""Account endpoints shared by every client of the API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


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


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for an API token (``Authorization: Token <key>``)."""

    renderer_classes = ObtainAuthToken.renderer_classes
