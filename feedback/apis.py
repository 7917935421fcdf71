"""The public survey API, keyed by the emailed link token (no account, no session).

No authentication class runs, so no session is ever attached and CSRF does not apply:
the token in the path is the only credential. Every link that cannot be answered —
unknown, expired, answered, declined, cycle closed — gets the same 404 body.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import JSONParser
from config.schema import DetailSerializer
from config.throttling import link_address
from config.token_routes import SURVEY_API, link_dead, link_locked_response, unlogged
from feedback.answers import (
    CANT_SAY_LABEL,
    COMMENT_FIELDS,
    COMMENT_MAX_LENGTH,
    REASON_MAX_LENGTH,
    SCALE,
)
from feedback.selectors import (
    anonymity_promise,
    invitation_answered_by_token,
    invitation_get_answerable_by_token,
    questionnaire_dimensions,
    survey_role,
)
from feedback.services import (
    SurveyClaimLost,
    SurveyNotOpen,
    invitation_open_by_token,
    invitation_open_mark,
    response_decline,
    response_submit,
)
from surveys.models import Invitation

logger = logging.getLogger(__name__)

LINK_NOT_OPEN = "This survey link is not open. If you already answered, thank you."
ALREADY_RECEIVED = "Already received: the answer (or decline) for this link was recorded. Nothing was changed."

TOKEN_PARAMETER = OpenApiParameter(
    "token", str, OpenApiParameter.PATH, description="The secret token from the emailed survey link."
)


# ``label`` is an attribute of every DRF field, so serializers with a field of that name
# are built with inline_serializer rather than declared as classes.
ScaleSerializer = inline_serializer(
    "SurveyScaleStep",
    {
        "value": serializers.IntegerField(allow_null=True, help_text="1–5, or null for “Can't say”."),
        "label": serializers.CharField(),
    },
)


class ItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()


class DimensionSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    side = serializers.CharField()
    pair = serializers.IntegerField()
    description = serializers.CharField()
    items = ItemSerializer(many=True)


class AnonymitySerializer(serializers.Serializer):
    identified = serializers.BooleanField(help_text="True for self and manager: their answers are identified.")
    minimum_group_size = serializers.IntegerField(
        allow_null=True, help_text="k: the group is shown only when at least this many of it answered."
    )
    statement = serializers.CharField()


CommentFieldSerializer = inline_serializer(
    "SurveyCommentField",
    {"name": serializers.CharField(), "label": serializers.CharField(), "max_length": serializers.IntegerField()},
)


class SurveySerializer(serializers.Serializer):
    subject_name = serializers.CharField()
    group = serializers.CharField(help_text="The rater's relationship: self, manager, peer, direct_report, other.")
    role = serializers.CharField()
    anonymity = AnonymitySerializer()
    deadline = serializers.DateTimeField()
    questionnaire = inline_serializer(
        "SurveyQuestionnaire",
        {
            "name": serializers.CharField(),
            "version": serializers.IntegerField(),
            "dimensions": DimensionSerializer(many=True),
        },
    )
    scale = serializers.ListField(child=ScaleSerializer)
    comment_fields = serializers.ListField(child=CommentFieldSerializer)


class SurveyAnswersSerializer(serializers.Serializer):
    """Documents the request; ``feedback.answers.answers_clean`` does the validating."""

    ratings = serializers.DictField(
        child=serializers.IntegerField(min_value=1, max_value=5, allow_null=True),
        help_text="Every item code of the questionnaire → 1–5, or null for “Can't say”.",
    )
    comments = serializers.DictField(
        child=serializers.CharField(max_length=COMMENT_MAX_LENGTH, allow_blank=True),
        required=False,
        help_text=(
            "Optional texts: management, leadership, keep_doing, start_doing. Their length is counted "
            "as a browser counts it for maxlength (UTF-16 code units: an emoji counts as two)."
        ),
    )


class SurveyDeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH,
        allow_blank=True,
        required=False,
        help_text="Counted as a browser counts it for maxlength (UTF-16 code units: an emoji counts as two).",
    )


class PublicSurveyApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # The token is in the URL: no Referer may carry it anywhere, and no cache keep the answer.
        response["Referrer-Policy"] = "no-referrer"
        response["Cache-Control"] = "no-store"
        if response.status_code >= 400:
            # Django's request logger writes "Conflict: <path>" for every 4xx, and the path
            # holds a live token (a 400 is a rater still answering): anyone reading the
            # logs could answer in their name. Log the outcome without the path instead
            # and mark the response as logged so Django does not add its own line.
            logger.info("survey api %s answered %s", request.method, response.status_code)
            unlogged(response)
        return response

    @staticmethod
    def not_open() -> Response:
        return link_dead(Response({"detail": LINK_NOT_OPEN}, status=status.HTTP_404_NOT_FOUND))

    @classmethod
    def not_answerable(cls, token: str) -> Response:
        """409 for a link whose answer (or decline) is already stored, as documented; the
        neutral 404 for everything else."""
        if invitation_answered_by_token(token=token):
            return Response({"detail": ALREADY_RECEIVED}, status=status.HTTP_409_CONFLICT)
        return cls.not_open()


def _survey_data(invitation: Invitation) -> dict[str, Any]:
    cycle = invitation.cycle
    dimensions = questionnaire_dimensions(questionnaire_id=cycle.questionnaire_id)
    return {
        "subject_name": invitation.subject.person.name,
        "group": invitation.group,
        "role": survey_role(group=invitation.group, subject_name=invitation.subject.person.name),
        "anonymity": anonymity_promise(
            group=invitation.group,
            subject_name=invitation.subject.person.name,
            anonymity_min=cycle.anonymity_min,
            comment_threshold=cycle.comment_threshold,
            source=invitation.source,
        ),
        "deadline": cycle.deadline,
        "questionnaire": {
            "name": cycle.questionnaire.name,
            "version": cycle.questionnaire.version,
            "dimensions": [
                {
                    "key": dimension.key,
                    "name": dimension.name,
                    "side": dimension.side,
                    "pair": dimension.pair,
                    "description": dimension.description,
                    "items": [{"code": item.code, "text": item.text} for item in dimension.items.all()],
                }
                for dimension in dimensions
            ],
        },
        "scale": [{"value": value, "label": label} for value, label in SCALE]
        + [{"value": None, "label": CANT_SAY_LABEL}],
        "comment_fields": [
            {"name": name, "label": label, "max_length": COMMENT_MAX_LENGTH} for name, label in COMMENT_FIELDS
        ],
    }


class SurveyApi(PublicSurveyApi):
    @extend_schema(
        operation_id="survey_read",
        summary="The survey behind a link: whom, in which role, the anonymity promise and the questionnaire",
        parameters=[TOKEN_PARAMETER],
        responses={200: SurveySerializer, 404: DetailSerializer},
        auth=[],
        tags=["survey"],
    )
    def get(self, request: Request, token: str) -> Response:
        invitation = invitation_get_answerable_by_token(token=token)
        if invitation is None:
            return self.not_open()
        invitation_open_mark(invitation_id=invitation.pk)
        return Response(SurveySerializer(_survey_data(invitation)).data)


class SurveyResponseApi(PublicSurveyApi):
    @extend_schema(
        operation_id="survey_submit",
        summary="Submit the answers (once)",
        description=(
            "Every item must be answered with 1–5 or null (“Can't say”). 400 names each wrong field; "
            "409 when the link was answered, declined or closed in the meantime."
        ),
        parameters=[TOKEN_PARAMETER],
        request=SurveyAnswersSerializer,
        responses={201: DetailSerializer, 400: dict, 404: DetailSerializer, 409: DetailSerializer},
        auth=[],
        tags=["survey"],
    )
    def post(self, request: Request, token: str) -> Any:
        # The caller's lock-out is read with the link (token_path's lockout_read_by_view) and
        # answered before the body is looked at: a blocked address learns nothing of the token.
        read = invitation_open_by_token(token=token, address=link_address(request))
        if read.locked_for is not None:
            return link_locked_response(SURVEY_API, read.locked_for)
        held = read.invitation
        # Invalid answers (400) are answered by config.exceptions.
        try:
            answers = request.data
        except APIException:
            # A body that does not parse (or is too large) is reported only for a link that
            # is open, so that it cannot tell an issued link from an unknown one.
            if held is not None:
                raise
            return self.not_answerable(token)
        if held is None:
            return self.not_answerable(token)
        try:
            response_submit(invitation_id=held.id, answers=answers, held=held)
        except SurveyClaimLost:
            raise  # answered by config.exceptions: 409, already submitted
        except SurveyNotOpen:
            return self.not_answerable(token)
        # No id comes back: nothing the client could keep would point at the stored row.
        return Response({"detail": "Thank you. Your answers have been recorded."}, status=status.HTTP_201_CREATED)


class SurveyDeclineApi(PublicSurveyApi):
    @extend_schema(
        operation_id="survey_decline",
        summary="Decline to answer, with an optional reason",
        parameters=[TOKEN_PARAMETER],
        request=SurveyDeclineSerializer,
        responses={201: DetailSerializer, 400: dict, 404: DetailSerializer, 409: DetailSerializer},
        auth=[],
        tags=["survey"],
    )
    def post(self, request: Request, token: str) -> Response:
        invitation = invitation_get_answerable_by_token(token=token)
        if invitation is None:
            return self.not_answerable(token)
        if not isinstance(request.data, dict):
            return Response({"non_field_errors": ["Expected an object."]}, status=status.HTTP_400_BAD_REQUEST)
        response_decline(invitation_id=invitation.pk, reason=request.data.get("reason", ""))
        return Response({"detail": "Thank you. Your decline has been recorded."}, status=status.HTTP_201_CREATED)
