"""JSON API for balance reports; mirrors the pages and goes through the same access helper.

Every endpoint that shows a report's content loads it with ``report_get_for_user``: a
report the caller may not read is a 404, exactly like one that does not exist. The cycle's
manager sees report rows (status) in the list and may re-run a failed job, nothing more.
The JSON carries only the stored, already filtered report data.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.pagination import PaginatedListApi
from reports import selectors, services
from reports.models import CoachAssignment, Release, Report
from reports.views import pdf_response, report_filename, signed_in_user


@extend_schema_field(
    {
        "type": "string",
        "description": "One of: "
        + ", ".join(Report.Status.values)
        + " (queued → running → ready, or failed: see `reason`).",
    }
)
class ReportStatusField(serializers.CharField):
    """The report status, documented as text: an enum named "status" would clash with the cycle's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)


MANAGER_FAILURE_REASON = "The build stopped; the person's coach sees why. Re-run it, or ask an administrator."


class ReportSummarySerializer(serializers.ModelSerializer):
    status = ReportStatusField()
    subject_name = serializers.CharField(source="subject.person.name", read_only=True)
    cycle_name = serializers.CharField(source="cycle.name", read_only=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "cycle",
            "cycle_name",
            "subject",
            "subject_name",
            "status",
            "reason",
            "attempts",
            "pdf_size",
            "pdf_sha256",
            "queued_at",
            "finished_at",
        ]
        read_only_fields = fields


class ReportRowSerializer(ReportSummarySerializer):
    """A row of the list: coaches may open the report; the cycle's manager sees its status only."""

    readable = serializers.BooleanField(
        read_only=True, help_text="Whether the caller may read this report's figures and PDF (coach or admin)."
    )
    pdf_size = serializers.IntegerField(read_only=True, allow_null=True, help_text="Empty unless readable.")
    pdf_sha256 = serializers.CharField(read_only=True, allow_null=True, help_text="Empty unless readable.")

    class Meta(ReportSummarySerializer.Meta):
        fields = [*ReportSummarySerializer.Meta.fields, "readable"]
        read_only_fields = fields

    def to_representation(self, instance: Report) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not getattr(instance, "readable", False):
            # The PDF's size and checksum follow its content (how long the comments are,
            # which groups are shown): nothing about it for those who may not read it. Nor
            # the build's exact times: with one worker, the gap between two reports
            # follows how long each took to render, which grows with its comments.
            data["pdf_size"] = None
            data["pdf_sha256"] = None
            # A failure's reason is written by code that works on the figures: whatever it
            # says, it is for the coach (and the log), never for whoever chose the raters.
            if data.get("reason"):
                data["reason"] = MANAGER_FAILURE_REASON
            for field in ("queued_at", "finished_at"):
                if instance_time := getattr(instance, field):
                    data[field] = serializers.DateTimeField().to_representation(
                        instance_time.replace(second=0, microsecond=0)
                    )
        return data


class ReportDetailSerializer(ReportSummarySerializer):
    # Not named ``data``: that would shadow the serializer's own ``.data``.
    figures = serializers.JSONField(
        source="data", read_only=True, help_text="The report's filtered figures (empty until ready)."
    )

    class Meta(ReportSummarySerializer.Meta):
        fields = [*ReportSummarySerializer.Meta.fields, "figures"]
        read_only_fields = fields


class ReleaseSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True,
        help_text="The email's progress, one of: "
        + ", ".join(Release.Status.values)
        + " (queued → sending → sent, or failed: see `last_error`, and retry).",
    )
    last_error = serializers.CharField(read_only=True, help_text="Why the last attempt to email the link failed.")
    expires_at = serializers.DateTimeField(
        read_only=True, help_text="Until when the link works; counted again from the email that carries it."
    )

    class Meta:
        model = Release
        fields = [
            "id",
            "email",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class TeamPointSerializer(serializers.Serializer):
    report_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    management = serializers.FloatField(allow_null=True)
    leadership = serializers.FloatField(allow_null=True)
    shown = serializers.BooleanField()


class ReportListApi(PaginatedListApi):
    @extend_schema(
        operation_id="reports_list",
        parameters=[OpenApiParameter("cycle", int, description="Only reports of this cycle.")],
        responses=ReportRowSerializer(many=True),
        summary="Reports of the caller's coachees (readable) and of the cycles they manage (status only)",
    )
    def get(self, request: Request) -> Response:
        cycle = request.query_params.get("cycle")
        if cycle is not None and not (cycle.isascii() and cycle.isdigit()):
            raise serializers.ValidationError({"cycle": "A cycle id (a whole number)."})
        reports = selectors.report_list_for_user(user=request.user, cycle_id=int(cycle) if cycle else None)
        return self.paginated(request, reports, ReportRowSerializer)


class ReportDetailApi(APIView):
    @extend_schema(operation_id="reports_retrieve", responses=ReportDetailSerializer, summary="One report's data")
    def get(self, request: Request, report_id: int) -> Response:
        report = selectors.report_get_for_user(user=request.user, report_id=report_id)
        return Response(ReportDetailSerializer(report).data)


class ReportPdfApi(APIView):
    @extend_schema(
        operation_id="reports_pdf",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="Not ready")},
        summary="Download the report's PDF",
    )
    def get(self, request: Request, report_id: int) -> HttpResponse:
        report = selectors.report_get_for_user(user=request.user, report_id=report_id)
        if report.status != Report.Status.READY or report.pdf is None:
            raise Http404("This report has no PDF yet.")
        return pdf_response(pdf=bytes(report.pdf), filename=report_filename(report))


class ReportRerunApi(APIView):
    @extend_schema(
        operation_id="reports_rerun",
        request=None,
        responses={202: ReportSummarySerializer},
        summary="Queue a failed report again",
    )
    def post(self, request: Request, report_id: int) -> Response:
        # Re-running touches the job, not the content: the cycle's manager may do it too.
        report = selectors.report_status_get_for_user(user=request.user, report_id=report_id)
        report = services.report_rerun(report=report, by=signed_in_user(request))
        return Response(ReportSummarySerializer(report).data, status=status.HTTP_202_ACCEPTED)


class ReportReleaseApi(APIView):
    @extend_schema(
        operation_id="reports_release",
        request=None,
        responses={201: ReleaseSerializer, 200: ReleaseSerializer},
        summary="Email the person a download link to their ready report (coach only)",
        description="The release is recorded at once (status `queued`, 201); the email follows from a background "
        "job that retries with backoff. Follow its status in the report's releases. While a release is live (its "
        "link works or its email is on the way) that release is returned (200) and nothing is sent again.",
    )
    def post(self, request: Request, report_id: int) -> Response:
        report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="releases a report")
        release, created = services.report_release(report=report, by=signed_in_user(request))
        return Response(
            ReleaseSerializer(release).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ReleaseListApi(APIView):
    @extend_schema(
        operation_id="reports_releases_list",
        responses=ReleaseSerializer(many=True),
        summary="The report's releases and how their emails went (coach only)",
    )
    def get(self, request: Request, report_id: int) -> Response:
        report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="sees the releases")
        return Response(ReleaseSerializer(selectors.releases_for_report(report=report), many=True).data)


class ReleaseRetryApi(APIView):
    @extend_schema(
        operation_id="reports_release_retry",
        request=None,
        responses={202: ReleaseSerializer},
        summary="Email a release whose email failed again, with a new link (coach only)",
    )
    def post(self, request: Request, report_id: int, release_id: int) -> Response:
        report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="releases a report")
        release = report.releases.filter(id=release_id).first()
        if release is None:
            raise Http404("No such release.")
        release = services.release_retry(release=release, by=signed_in_user(request))
        return Response(ReleaseSerializer(release).data, status=status.HTTP_202_ACCEPTED)


class TeamBalanceApi(PaginatedListApi):
    @extend_schema(
        operation_id="reports_team_balance",
        responses=TeamPointSerializer(many=True),
        summary="Each coached subject's Others point (coaches and admins; only where the anonymity rules allow)",
        description="The cycle's manager chooses the raters and sees no scores: for them this is a 404. "
        "In name order, a page at a time.",
    )
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        paginator, rows = self.page(request, selectors.team_balance_rows(cycle=cycle, user=request.user))
        return paginator.get_paginated_response(TeamPointSerializer(selectors.team_points(rows), many=True).data)


class ReleaseRevokeApi(APIView):
    @extend_schema(
        operation_id="reports_release_revoke",
        request=None,
        responses={200: ReleaseSerializer},
        summary="Withdraw a release: its download link stops working (coach only)",
    )
    def post(self, request: Request, report_id: int, release_id: int) -> Response:
        report = selectors.report_get_for_coach(user=request.user, report_id=report_id, action="revokes a release")
        release = report.releases.filter(id=release_id).first()
        if release is None:
            raise Http404("No such release.")
        release = services.release_revoke(release=release)
        return Response(ReleaseSerializer(release).data)


class CoachAssignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    coach = serializers.CharField(source="coach.username", read_only=True)
    subject = serializers.IntegerField(source="subject_id", read_only=True, allow_null=True)
    subject_name = serializers.SerializerMethodField()

    def get_subject_name(self, assignment: CoachAssignment) -> str | None:
        return assignment.subject.person.name if assignment.subject else None


class CoachAssignmentInputSerializer(serializers.Serializer):
    coach = serializers.CharField(max_length=150, help_text="The coach's username.")
    subject = serializers.IntegerField(
        required=False, allow_null=True, help_text="A subject of this cycle; empty for the whole cycle."
    )


class CoachAssignmentListApi(PaginatedListApi):
    @extend_schema(
        operation_id="reports_coaches_list",
        responses=CoachAssignmentSerializer(many=True),
        summary="The cycle's coach assignments (the cycle's manager)",
    )
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
        # One row per coach and subject: a whole cycle's worth, in an order that pages stably.
        assignments = selectors.coach_assignments_for_cycle(cycle=cycle).order_by(
            "coach__username", "subject__person__name", "id"
        )
        return self.paginated(request, assignments, CoachAssignmentSerializer)

    @extend_schema(
        operation_id="reports_coaches_create",
        request=CoachAssignmentInputSerializer,
        responses={201: CoachAssignmentSerializer},
        summary="Assign a coach to one subject or to the whole cycle",
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
        serializer = CoachAssignmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coach = User.objects.filter(username=serializer.validated_data["coach"], is_active=True).first()
        if coach is None:
            raise serializers.ValidationError({"coach": ["No active user has this username."]})
        subject = None
        subject_id = serializer.validated_data.get("subject")
        if subject_id is not None:
            subject = cycle.subjects.filter(id=subject_id).select_related("person").first()
            if subject is None:
                raise serializers.ValidationError({"subject": ["This person is not a subject of the cycle."]})
        assignment = services.coach_assign(cycle=cycle, coach=coach, subject=subject, by=signed_in_user(request))
        return Response(CoachAssignmentSerializer(assignment).data, status=status.HTTP_201_CREATED)


class CoachAssignmentDetailApi(APIView):
    @extend_schema(operation_id="reports_coaches_destroy", responses={204: None}, summary="Remove a coach assignment")
    def delete(self, request: Request, cycle_id: int, assignment_id: int) -> Response:
        cycle = selectors.cycle_get_for_manager(user=request.user, cycle_id=cycle_id)
        assignment = CoachAssignment.objects.filter(id=assignment_id, cycle=cycle).first()
        if assignment is None:
            raise Http404("No such assignment.")
        services.coach_unassign(assignment=assignment)
        return Response(status=status.HTTP_204_NO_CONTENT)
