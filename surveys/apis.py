"""JSON API for teams, people and review cycles (documented in the OpenAPI schema).

Every endpoint loads its object through the access helpers in ``selectors``: another
manager's team or cycle is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.pagination import PaginatedListApi
from config.schema import DetailSerializer
from surveys import selectors, services
from surveys.models import Cycle, Group, Invitation, Person, Questionnaire, Reminder, Team

# --- Teams --------------------------------------------------------------------------------


class TeamSerializer(serializers.ModelSerializer):
    people_count = serializers.IntegerField(read_only=True)
    cycle_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "people_count", "cycle_count", "created_at"]
        read_only_fields = ["id", "created_at"]


class TeamInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)


def _team_data(request: Request, team: Team) -> dict[str, Any]:
    """The team as every endpoint shows it, with its counts."""
    return dict(TeamSerializer(selectors.team_list(user=request.user).get(pk=team.pk)).data)


class TeamListApi(PaginatedListApi):
    @extend_schema(responses=TeamSerializer(many=True), summary="Your teams")
    def get(self, request: Request) -> Response:
        return self.paginated(request, selectors.team_list(user=request.user), TeamSerializer)

    @extend_schema(request=TeamInputSerializer, responses={201: TeamSerializer}, summary="Create a team")
    def post(self, request: Request) -> Response:
        data = TeamInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(manager=request.user, name=data.validated_data["name"])
        return Response(_team_data(request, team), status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    @extend_schema(responses=TeamSerializer, summary="One team")
    def get(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get_for_user(user=request.user, team_id=team_id)
        return Response(_team_data(request, team))

    @extend_schema(request=TeamInputSerializer, responses=TeamSerializer, summary="Rename a team")
    def patch(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get_for_user(user=request.user, team_id=team_id)
        data = TeamInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_update(team=team, name=data.validated_data["name"])
        return Response(_team_data(request, team))


# --- People -------------------------------------------------------------------------------


class PersonSerializer(serializers.ModelSerializer):
    reports_to: serializers.PrimaryKeyRelatedField[Person] = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True
    )

    class Meta:
        model = Person
        fields = ["id", "team", "name", "email", "reports_to"]
        read_only_fields = fields


class PersonInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=services.EMAIL_MAX_LENGTH)
    reports_to = serializers.IntegerField(allow_null=True, required=False, help_text="Id of the person's manager.")


def _reports_to(team: Team, person_id: int | None) -> Person | None:
    if person_id is None:
        return None
    boss = team.people.filter(pk=person_id).first()
    if boss is None:
        raise serializers.ValidationError({"reports_to": ["No such person in this team."]})
    return boss


class PeopleApi(PaginatedListApi):
    @extend_schema(responses=PersonSerializer(many=True), summary="The team's people")
    def get(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get_for_user(user=request.user, team_id=team_id)
        return self.paginated(request, selectors.people_list(team=team), PersonSerializer)

    @extend_schema(request=PersonInputSerializer, responses={201: PersonSerializer}, summary="Add a person")
    def post(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get_for_user(user=request.user, team_id=team_id)
        data = PersonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        person = services.person_create(
            team=team,
            name=data.validated_data["name"],
            email=data.validated_data["email"],
            reports_to=_reports_to(team, data.validated_data.get("reports_to")),
        )
        return Response(PersonSerializer(person).data, status=status.HTTP_201_CREATED)


class PeopleImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, UTF-8, header line: name,email,reports_to (manager's email).")


class PeopleImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    people = PersonSerializer(many=True)


class PeopleImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": PeopleImportInputSerializer},
        responses={
            201: PeopleImportResultSerializer,
            400: OpenApiResponse(description='{"file": ["line 3: missing email", ...]} — nothing is imported.'),
        },
        summary="Import people from a CSV (all or nothing)",
    )
    def post(self, request: Request, team_id: int) -> Response:
        team = selectors.team_get_for_user(user=request.user, team_id=team_id)
        data = PeopleImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        people = services.people_import_csv(team=team, data=data.validated_data["file"].read())
        return Response(
            {"created": len(people), "people": PersonSerializer(people, many=True).data},
            status=status.HTTP_201_CREATED,
        )


class PersonDetailApi(APIView):
    @extend_schema(responses=PersonSerializer, summary="One person")
    def get(self, request: Request, person_id: int) -> Response:
        person = selectors.person_get_for_user(user=request.user, person_id=person_id)
        return Response(PersonSerializer(person).data)

    @extend_schema(request=PersonInputSerializer, responses=PersonSerializer, summary="Change a person")
    def patch(self, request: Request, person_id: int) -> Response:
        person = selectors.person_get_for_user(user=request.user, person_id=person_id)
        data = PersonInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        reports_to = _reports_to(person.team, values["reports_to"]) if "reports_to" in values else person.reports_to
        person = services.person_update(
            person=person,
            name=values.get("name", person.name),
            email=values.get("email", person.email),
            reports_to=reports_to,
        )
        return Response(PersonSerializer(person).data)

    @extend_schema(responses={204: None}, summary="Remove a person (not a subject of any cycle)")
    def delete(self, request: Request, person_id: int) -> Response:
        person = selectors.person_get_for_user(user=request.user, person_id=person_id)
        services.person_delete(person=person)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Cycles -------------------------------------------------------------------------------


class SubjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    person = serializers.IntegerField(source="person_id")
    name = serializers.CharField(source="person.name")


class CycleSerializer(serializers.ModelSerializer):
    subjects = SubjectSerializer(many=True, read_only=True)
    subject_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Cycle
        fields = [
            "id",
            "team",
            "name",
            "status",
            "deadline",
            "questionnaire",
            "anonymity_min",
            "comment_min",
            "nomination_mode",
            "nomination_min",
            "nomination_max",
            "reminder_days_before",
            "launched_at",
            "closed_at",
            "subject_count",
            "subjects",
        ]
        read_only_fields = fields


class CycleListSerializer(CycleSerializer):
    class Meta(CycleSerializer.Meta):
        fields = [field for field in CycleSerializer.Meta.fields if field != "subjects"]
        read_only_fields = fields


class CycleUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    deadline = serializers.DateTimeField()
    subjects = serializers.ListField(
        child=serializers.IntegerField(), allow_empty=False, help_text="Ids of the team members to review."
    )
    questionnaire = serializers.PrimaryKeyRelatedField(
        queryset=Questionnaire.objects.all(), required=False, help_text="Defaults to the newest Kotter questionnaire."
    )
    anonymity_min = serializers.IntegerField(min_value=2, max_value=services.MAX_ANONYMITY, default=3)
    comment_min = serializers.IntegerField(
        min_value=2, max_value=services.MAX_ANONYMITY, allow_null=True, required=False, default=None
    )
    nomination_mode = serializers.ChoiceField(
        choices=Cycle.NominationMode.choices, default=Cycle.NominationMode.MANAGER
    )
    nomination_min = serializers.IntegerField(min_value=0, max_value=services.MAX_NOMINATIONS, default=3)
    nomination_max = serializers.IntegerField(min_value=1, max_value=services.MAX_NOMINATIONS, default=8)
    reminder_days_before = serializers.IntegerField(min_value=0, max_value=services.MAX_REMINDER_DAYS, default=2)


class CycleInputSerializer(CycleUpdateSerializer):
    team = serializers.IntegerField(help_text="Id of one of your teams; a cycle never moves to another team.")


def _cycle_detail(cycle: Cycle) -> dict[str, Any]:
    cycle = (
        Cycle.objects.annotate(subject_count=Count("subjects", distinct=True))
        .prefetch_related("subjects__person")
        .get(pk=cycle.pk)
    )
    return dict(CycleSerializer(cycle).data)


def _people_of_team(team: Team, ids: list[int]) -> list[Person]:
    people = list(team.people.filter(pk__in=ids))
    if len(people) != len(set(ids)):
        raise serializers.ValidationError({"subjects": ["Every subject must be a member of the cycle's team."]})
    return people


class CycleListApi(PaginatedListApi):
    @extend_schema(responses=CycleListSerializer(many=True), summary="Your review cycles")
    def get(self, request: Request) -> Response:
        return self.paginated(request, selectors.cycle_list(user=request.user), CycleListSerializer)

    @extend_schema(request=CycleInputSerializer, responses={201: CycleSerializer}, summary="Create a draft cycle")
    def post(self, request: Request) -> Response:
        data = CycleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        team = selectors.teams_for_user(user=request.user).filter(pk=values.pop("team")).first()
        if team is None:
            raise serializers.ValidationError({"team": ["No such team."]})
        people = _people_of_team(team, values.pop("subjects"))
        cycle = services.cycle_create(team=team, by=request.user, people=people, **values)
        return Response(_cycle_detail(cycle), status=status.HTTP_201_CREATED)


class CycleDetailApi(APIView):
    @extend_schema(responses=CycleSerializer, summary="One cycle")
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        return Response(_cycle_detail(cycle))

    @extend_schema(request=CycleUpdateSerializer, responses=CycleSerializer, summary="Change a cycle")
    def patch(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        data = CycleUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "subjects" in changes:
            changes["subjects"] = _people_of_team(cycle.team, changes["subjects"])
        cycle = services.cycle_update(cycle=cycle, changes=changes)
        return Response(_cycle_detail(cycle))

    @extend_schema(responses={204: None}, summary="Delete a draft cycle")
    def delete(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        services.cycle_delete(cycle=cycle)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RaterSerializer(serializers.ModelSerializer):
    """A rater assigned to a subject — with no status: who has answered is never shown."""

    subject = serializers.IntegerField(source="subject_id", read_only=True)
    subject_name = serializers.CharField(source="subject.person.name", read_only=True)
    email = serializers.EmailField(source="rater_email", read_only=True)
    name = serializers.CharField(source="rater_name", read_only=True)
    manager_added_as = serializers.ChoiceField(
        choices=Group.choices,
        allow_blank=True,
        read_only=True,
        help_text="For a rater the manager had added and the subject then nominated too: the group the manager had "
        "given. Such a rater counts as the subject's nomination while the subject's list names them, and is the "
        'manager\'s again, in this group, if it no longer does. "" for every other rater.',
    )

    class Meta:
        model = Invitation
        fields = ["id", "subject", "subject_name", "group", "source", "manager_added_as", "email", "name"]
        read_only_fields = fields
        extra_kwargs = {
            "source": {
                "help_text": "Who chose the rater. An outside rater the subject nominated counts in no score and "
                "is quoted nowhere (an address the subject gave could be their own); one the manager added "
                "counts as usual."
            },
        }


class RaterInputSerializer(serializers.Serializer):
    subject = serializers.IntegerField(help_text="Id of the subject (see the cycle's `subjects`).")
    email = serializers.EmailField(max_length=services.EMAIL_MAX_LENGTH)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    group = serializers.ChoiceField(choices=Group.choices, default=Group.OUTSIDE)


class RaterListApi(PaginatedListApi):
    @extend_schema(responses=RaterSerializer(many=True), summary="Who is asked to rate whom")
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        return self.paginated(request, selectors.raters_list(cycle=cycle), RaterSerializer)

    @extend_schema(
        request=RaterInputSerializer, responses={201: RaterSerializer}, summary="Add a rater (before launch)"
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        data = RaterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = cycle.subjects.select_related("person").filter(pk=data.validated_data["subject"]).first()
        if subject is None:
            raise serializers.ValidationError({"subject": ["No such subject in this cycle."]})
        invitation = services.rater_add(
            cycle=cycle,
            subject=subject,
            email=data.validated_data["email"],
            name=data.validated_data["name"],
            group=data.validated_data["group"],
        )
        return Response(RaterSerializer(invitation).data, status=status.HTTP_201_CREATED)


class RaterDetailApi(APIView):
    @extend_schema(responses={204: None, 404: DetailSerializer}, summary="Remove a rater (before launch)")
    def delete(self, request: Request, cycle_id: int, rater_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        invitation = selectors.invitation_get_for_cycle(cycle=cycle, invitation_id=rater_id)
        if not services.rater_remove(cycle=cycle, invitation=invitation):
            # The subject sent their list again since this rater was read: it is not there now.
            raise NotFound("No such rater now: the subject's list was sent again. Read the raters again.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActionResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the action had already happened (nothing was done).")
    status = serializers.CharField()


class CycleLaunchApi(APIView):
    @extend_schema(request=None, responses=ActionResultSerializer, summary="Launch: open invitations, email raters")
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        changed = services.cycle_launch(cycle=cycle, by=request.user)
        cycle.refresh_from_db(fields=["status"])
        return Response({"changed": changed, "status": cycle.status})


class CycleCloseApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: ActionResultSerializer,
            503: OpenApiResponse(
                DetailSerializer,
                description="The cycle stays open: its sealed answers cannot be opened (RESPONSE_SEAL_KEY).",
            ),
        },
        summary="Close: links die, answers are unsealed, reports are queued",
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        # By config.exceptions: a cycle never launched is a 400, a refused close (answers no
        # configured key opens) a 503.
        changed = services.cycle_close(cycle=cycle, by=request.user)
        return Response({"changed": changed, "status": Cycle.Status.CLOSED})


class ReminderResultSerializer(serializers.Serializer):
    """That a reminder round was queued, and when. Deliberately no number of recipients:
    set against the progress counts it would tell the manager who has not answered."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Reminder.Kind.choices)
    created_at = serializers.DateTimeField()


class CycleRemindApi(APIView):
    @extend_schema(
        request=None, responses={201: ReminderResultSerializer}, summary="Remind every rater who has not answered"
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        reminder = services.reminder_send(cycle=cycle, kind=Reminder.Kind.MANUAL, by=request.user)
        assert reminder is not None
        return Response(
            ReminderResultSerializer(reminder).data,
            status=status.HTTP_201_CREATED,
        )


class RaterProgressSerializer(serializers.Serializer):
    invited = serializers.BooleanField()
    answered = serializers.BooleanField()


class AnonymousProgressSerializer(serializers.Serializer):
    invited = serializers.IntegerField(help_text="Peers, direct reports and outside raters invited, together.")
    answered = serializers.IntegerField(
        allow_null=True,
        help_text="How many of them answered — null when fewer than k are invited (one answer would then show).",
    )
    enough = serializers.BooleanField(help_text="Whether at least k of them answered: enough for their figures.")


class SubjectProgressSerializer(serializers.Serializer):
    subject = serializers.IntegerField(source="subject_id")
    name = serializers.CharField()
    self = RaterProgressSerializer(source="self_rater", help_text="The subject's self-assessment (identified).")
    manager = RaterProgressSerializer(source="manager_rater", help_text="The subject's manager (identified).")
    anonymous = serializers.SerializerMethodField()

    @extend_schema_field(AnonymousProgressSerializer)
    def get_anonymous(self, progress: selectors.SubjectProgress) -> dict[str, Any]:
        return {
            "invited": progress.anonymous_invited,
            "answered": progress.anonymous_answered,
            "enough": progress.enough,
        }


class ProgressSerializer(serializers.Serializer):
    status = serializers.CharField()
    anonymity_min = serializers.IntegerField(help_text="k: the minimum number of anonymous raters behind a figure.")
    emails = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text=(
            "Email counts by kind (invitation, nomination) and status (queued, sent, failed …), for the whole "
            "cycle. Reminder emails are never counted: how many went out would tell who has not answered."
        ),
    )
    count = serializers.IntegerField(help_text="Subjects in the cycle.")
    next = serializers.URLField(allow_null=True, help_text="The next page of subjects; null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page of subjects; null on the first.")
    results = SubjectProgressSerializer(many=True, help_text="One page of the cycle's subjects, in name order.")


class CycleProgressApi(PaginatedListApi):
    @extend_schema(
        responses=ProgressSerializer,
        parameters=[
            OpenApiParameter("limit", int, description="Number of subjects to return per page (100 by default)."),
            OpenApiParameter("offset", int, description="The initial index from which to return the subjects."),
        ],
        summary="Per subject: whether self and manager answered, and the anonymous raters pooled (from k invited)",
        description="Paged like the lists (`limit`, `offset`; `count`, `next`, `previous`, `results`); "
        "`status`, `anonymity_min` and `emails` are about the whole cycle.",
    )
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        paginator, rows = self.page(request, selectors.progress_rows(cycle=cycle))
        data = {
            "status": cycle.status,
            "anonymity_min": cycle.anonymity_min,
            "emails": selectors.cycle_email_summary(cycle=cycle).counts,
            "count": paginator.count,
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": selectors.cycle_progress(cycle=cycle, rows=rows),
        }
        return Response(ProgressSerializer(data).data)


class NominationStatusSerializer(serializers.Serializer):
    subject = serializers.IntegerField(source="subject_id")
    name = serializers.CharField()
    submitted = serializers.BooleanField(help_text="Whether the subject has sent their list of raters.")
    approved = serializers.BooleanField(help_text="Whether the manager has approved the subject's list.")


class CycleNominationsApi(PaginatedListApi):
    @extend_schema(
        responses=NominationStatusSerializer(many=True), summary="Which subjects have nominated raters, and approved"
    )
    def get(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        # A page of subjects, then their rows: the cycle's other subjects are not read.
        paginator, page = self.page(request, cycle.subjects.order_by("person__name", "id").values_list("id", flat=True))
        rows = selectors.nomination_rows(cycle=cycle, subject_ids=list(page))
        return paginator.get_paginated_response(NominationStatusSerializer(rows, many=True).data)

    @extend_schema(
        request=None,
        responses=ActionResultSerializer,
        summary="Open nominations: email each subject a link to choose their raters",
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        changed = services.cycle_nominations_open(cycle=cycle, by=request.user)
        cycle.refresh_from_db(fields=["status"])
        return Response({"changed": changed, "status": cycle.status})


class ApprovalResultSerializer(serializers.Serializer):
    approved = serializers.IntegerField(help_text="How many lists this request approved (0: nothing left to approve).")


class CycleNominationApproveApi(APIView):
    @extend_schema(
        request=None,
        responses=ApprovalResultSerializer,
        summary="Approve one subject's raters as they stand now; the subject is emailed",
    )
    def post(self, request: Request, cycle_id: int, subject_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        subject = selectors.subject_get_for_cycle(cycle=cycle, subject_id=subject_id)
        approved = services.nomination_approve(cycle=cycle, subject=subject, by=request.user)
        return Response({"approved": int(approved)})


class CycleNominationsApproveRestApi(APIView):
    @extend_schema(
        request=None,
        responses=ApprovalResultSerializer,
        summary="Approve every list not yet approved, as it stands; each subject is emailed",
    )
    def post(self, request: Request, cycle_id: int) -> Response:
        cycle = selectors.cycle_get_for_user(user=request.user, cycle_id=cycle_id)
        return Response({"approved": services.nominations_approve_rest(cycle=cycle, by=request.user)})
